package webhook

import (
	"encoding/json"
	"time"
)

// App is an application: one customer of the platform, owning endpoints and
// messages. UID is the caller's own optional key for it ("" = none).
type App struct {
	ID           string
	UID          string
	Name         string
	Metadata     map[string]string
	ThrottleRate *int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// EventType is an entry of the event catalog, shared by all apps.
// Deleting one archives it; archived types cannot be subscribed to.
type EventType struct {
	Name         string
	Description  string
	Archived     bool
	Deprecated   bool
	Schemas      json.RawMessage // JSON Schema by version, e.g. {"1": {...}}; nil = none
	GroupName    string
	FeatureFlags []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// SigningKey is one endpoint secret. The current key has a zero ExpiresAt;
// keys replaced by a rotation keep signing until ExpiresAt.
type SigningKey struct {
	Key       []byte
	ExpiresAt time.Time
}

// Endpoint is a URL an app's owner subscribed. FilterTypes and Channels
// empty mean "everything". FailingSince is the time of the first failed
// attempt after the last success (zero when healthy); the sweeper disables
// endpoints failing for a week.
type Endpoint struct {
	ID           string
	AppID        string
	UID          string
	URL          string
	Description  string
	Disabled     bool
	DisabledAt   time.Time // zero unless Disabled
	DisabledWhy  string    // "manual" or "failing"; "" unless Disabled
	FilterTypes  []string
	Channels     []string
	Keys         []SigningKey // Keys[0] is the current secret
	Headers      map[string]string
	Metadata     map[string]string
	ThrottleRate *int
	Version      int
	FailingSince time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Disable reasons recorded in Endpoint.DisabledWhy.
const (
	DisabledManual  = "manual"
	DisabledFailing = "failing"
)

// Message is one event sent by the platform for an app. Payload is the JSON
// object exactly as it is signed and sent, and empty once the payload was
// expunged (Store.ExpungeContent). ExpiresAt ends its retention.
type Message struct {
	ID        string
	AppID     string
	EventType string
	EventID   string
	Payload   json.RawMessage
	Channels  []string
	Tags      []string
	Timestamp time.Time
	ExpiresAt time.Time
}

// Expunged reports whether the message's payload was deleted
// (Store.ExpungeContent): it can no longer be sent, resent or shown.
func (m *Message) Expunged() bool { return len(m.Payload) == 0 }

// Status is the state of a delivery or an attempt, numbered as in Svix.
type Status int

// The statuses. Canceled is shown as such only to callers that ask for
// expanded statuses; others see it as Fail.
const (
	StatusSuccess  Status = 0
	StatusPending  Status = 1
	StatusFail     Status = 2
	StatusSending  Status = 3
	StatusCanceled Status = 4
)

// String returns the Svix statusText.
func (s Status) String() string {
	switch s {
	case StatusSuccess:
		return "success"
	case StatusPending:
		return "pending"
	case StatusFail:
		return "fail"
	case StatusSending:
		return "sending"
	case StatusCanceled:
		return "canceled"
	}
	return "unknown"
}

// Final reports whether no more attempts will be made in this state.
func (s Status) Final() bool {
	return s == StatusSuccess || s == StatusFail || s == StatusCanceled
}

// Trigger says why an attempt was made, numbered as in Svix.
type Trigger int

// The triggers.
const (
	TriggerScheduled Trigger = 0
	TriggerManual    Trigger = 1
)

// Delivery is the state of one message towards one endpoint. A resend or a
// recover starts a new Run of it (Run 0 is the original fan-out); Attempts
// counts the attempts of the current run. NextAttemptAt is when the next
// attempt is due while Status is Pending. Dispatched is false until the
// run's scheduler (the local queue or a Step Functions execution) has taken
// it; the sweeper re-drives runs that stay undispatched.
type Delivery struct {
	AppID         string
	MsgID         string
	EndpointID    string
	EventType     string
	Channels      []string
	Status        Status
	Run           int
	Trigger       Trigger
	Attempts      int
	NextAttemptAt time.Time
	Dispatched    bool
	// Claimed marks a delivery that a worker of the local queue holds:
	// its NextAttemptAt is then when the claim ends, not when an attempt
	// is due, so that a restart can tell the two apart and make the claim
	// due at once. Only local mode's store keeps it; others ignore it.
	Claimed bool
	// Deferred marks a delivery read before the store wrote a record of
	// its own (see Store.CreateMessage): its first write creates it.
	// Only a store that defers sets it.
	Deferred  bool
	CreatedAt time.Time // the message's timestamp
	UpdatedAt time.Time
}

// Ref names one run of one delivery: what a dispatcher schedules and what a
// Step Functions execution carries as input (ids only, never payloads).
type Ref struct {
	AppID      string `json:"appId"`
	MsgID      string `json:"msgId"`
	EndpointID string `json:"endpointId"`
	Run        int    `json:"run"`
}

// Ref returns the reference to the delivery's current run.
func (d *Delivery) Ref() Ref {
	return Ref{AppID: d.AppID, MsgID: d.MsgID, EndpointID: d.EndpointID, Run: d.Run}
}

// Loaded is a run's delivery with its endpoint and its message, as read at
// At: what an attempt reads before it sends. The local queue carries it
// for a new message's first attempts (delivery.Holder), so that they need
// not read back what Publish has just read and written.
type Loaded struct {
	Delivery *Delivery
	Endpoint *Endpoint
	Message  *Message
	At       time.Time
	// Changes is the store's ChangeCounter before the read, when it has
	// one.
	Changes uint64
}

// ExpungedResponse is what an attempt's Response reads once it was
// expunged (Store.ExpungeAttemptContent), as in Svix.
const ExpungedResponse = "EXPUNGED"

// Attempt is the record of one HTTP request made for a delivery.
// ResponseStatusCode is 0 when no response arrived.
type Attempt struct {
	ID                 string
	AppID              string
	MsgID              string
	EndpointID         string
	EventType          string
	URL                string
	Response           string
	ResponseStatusCode int
	ResponseDurationMs int64
	Status             Status
	Trigger            Trigger
	Timestamp          time.Time
	ExpiresAt          time.Time
}
