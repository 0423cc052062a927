package dynamo

import (
	"encoding/json"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Primary keys. Every key that belongs to an app carries the app id, so a
// read with another app's id finds nothing by construction.

func appKey(id string) key { return key{"APP#" + id, "APP"} }

func appUIDKey(uid string) key { return key{"APPUID#" + uid, "UID"} }

func eventTypeKey(name string) key { return key{"ET#" + name, "ET"} }

func endpointKey(appID, id string) key { return key{"APP#" + appID, "EP#" + id} }

func endpointUIDKey(appID, uid string) key { return key{"APP#" + appID, "EPUID#" + uid} }

// messagePartition holds a message, its deliveries and its attempts.
func messagePartition(appID, msgID string) string { return "MSG#" + appID + "#" + msgID }

func messageKey(appID, id string) key { return key{messagePartition(appID, id), "M"} }

func deliveryKey(appID, msgID, endpointID string) key {
	return key{messagePartition(appID, msgID), "D#" + endpointID}
}

func attemptKey(appID, msgID, id string) key { return key{messagePartition(appID, msgID), "A#" + id} }

func eventIDKey(appID, eventID string) key { return key{"EVT#" + appID + "#" + eventID, "EVT"} }

func idempotencyKey(k string) key { return key{"IDEM#" + k, "IDEM"} }

// playPartition holds what a Play URL received: its endpoint link and its
// newest requests.
func playPartition(token string) string { return "PLAY#" + token }

func playLinkKey(token string) key { return key{playPartition(token), "LINK"} }

// playRequestPrefix begins the sort key of every Play request.
const playRequestPrefix = "R#"

// playRequestSortKey orders a Play URL's requests by arrival: the store
// clock's milliseconds, then a KSUID, which is unique across Lambda
// instances and increases within one, so that requests of the same
// millisecond keep their order.
func playRequestSortKey(now time.Time) string {
	return playRequestPrefix + sortTime(now) + "#" + webhook.NewID("")
}

// Index partitions.

const (
	appsPartition       = "APP"     // IndexList: every app
	eventTypesPartition = "ET"      // IndexList: every event type
	failingPartition    = "FAILING" // IndexSweep: enabled endpoints (failing when they have a sort key)
)

// appMessages names an app's IndexList partitions: shard (shards.go)
// spreads its messages over MessageShards of them.
func appMessages(appID string) string { return "MSG#" + appID }

// endpointPartition names an endpoint's IndexEndpoint partitions: shard
// spreads its deliveries and attempts over EndpointShards of them.
func endpointPartition(appID, endpointID string) string { return "EP#" + appID + "#" + endpointID }

// sweepShard is the IndexSweep partition of a delivery while its run is
// unfinished.
func sweepShard(msgID, endpointID string) string {
	h := fnv.New32a()
	h.Write([]byte(msgID + "/" + endpointID))
	return "U#" + strconv.Itoa(int(h.Sum32()%SweepShards))
}

// sweepSortKey orders unfinished deliveries by when the sweeper should
// look at them (checkAt, see deliveryItem), then message and endpoint id.
// Deliveries carry it always (it costs no index write while the item is
// out of the index).
func sweepSortKey(checkAt time.Time, msgID, endpointID string) string {
	return sortTime(checkAt) + "#" + msgID + "#" + endpointID
}

// failingSortKey orders failing endpoints by failingSince.
func failingSortKey(ep *webhook.Endpoint) string {
	return sortTime(ep.FailingSince) + "#" + ep.AppID + "#" + ep.ID
}

// Items. Times are unix milliseconds (absent = zero time); expMs is an
// expiry in milliseconds for reads, TTLAttribute the same in seconds for
// DynamoDB's TTL.

type appItem struct {
	PK           string            `dynamodbav:"pk"`
	SK           string            `dynamodbav:"sk"`
	ListPK       string            `dynamodbav:"listPk"`
	ListSK       string            `dynamodbav:"listSk"`
	ID           string            `dynamodbav:"id"`
	UID          string            `dynamodbav:"uid,omitempty"`
	Name         string            `dynamodbav:"name,omitempty"`
	Metadata     map[string]string `dynamodbav:"metadata,omitempty"`
	ThrottleRate *int              `dynamodbav:"throttleRate,omitempty"`
	CreatedAt    int64             `dynamodbav:"createdAt,omitempty"`
	UpdatedAt    int64             `dynamodbav:"updatedAt,omitempty"`
}

func encodeApp(app *webhook.App) (item, error) {
	k := appKey(app.ID)
	return attributevalue.MarshalMap(appItem{
		PK: k.pk, SK: k.sk, ListPK: appsPartition, ListSK: app.ID,
		ID: app.ID, UID: app.UID, Name: app.Name, Metadata: app.Metadata, ThrottleRate: app.ThrottleRate,
		CreatedAt: millis(app.CreatedAt), UpdatedAt: millis(app.UpdatedAt),
	})
}

func decodeApp(it item) (webhook.App, error) {
	var r appItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.App{}, err
	}
	return webhook.App{
		ID: r.ID, UID: r.UID, Name: r.Name, Metadata: r.Metadata, ThrottleRate: r.ThrottleRate,
		CreatedAt: fromMillis(r.CreatedAt), UpdatedAt: fromMillis(r.UpdatedAt),
	}, nil
}

type eventTypeItem struct {
	PK           string   `dynamodbav:"pk"`
	SK           string   `dynamodbav:"sk"`
	ListPK       string   `dynamodbav:"listPk"`
	ListSK       string   `dynamodbav:"listSk"`
	Name         string   `dynamodbav:"name"`
	Description  string   `dynamodbav:"description,omitempty"`
	Archived     bool     `dynamodbav:"archived"` // always stored: list filters on it
	Deprecated   bool     `dynamodbav:"deprecated,omitempty"`
	Schemas      []byte   `dynamodbav:"schemas,omitempty"` // the JSON as given
	GroupName    string   `dynamodbav:"groupName,omitempty"`
	FeatureFlags []string `dynamodbav:"featureFlags,omitempty"`
	CreatedAt    int64    `dynamodbav:"createdAt,omitempty"`
	UpdatedAt    int64    `dynamodbav:"updatedAt,omitempty"`
}

func encodeEventType(et *webhook.EventType) (item, error) {
	k := eventTypeKey(et.Name)
	return attributevalue.MarshalMap(eventTypeItem{
		PK: k.pk, SK: k.sk, ListPK: eventTypesPartition, ListSK: et.Name,
		Name: et.Name, Description: et.Description, Archived: et.Archived, Deprecated: et.Deprecated,
		Schemas: et.Schemas, GroupName: et.GroupName, FeatureFlags: et.FeatureFlags,
		CreatedAt: millis(et.CreatedAt), UpdatedAt: millis(et.UpdatedAt),
	})
}

func decodeEventType(it item) (webhook.EventType, error) {
	var r eventTypeItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.EventType{}, err
	}
	et := webhook.EventType{
		Name: r.Name, Description: r.Description, Archived: r.Archived, Deprecated: r.Deprecated,
		GroupName: r.GroupName, FeatureFlags: r.FeatureFlags,
		CreatedAt: fromMillis(r.CreatedAt), UpdatedAt: fromMillis(r.UpdatedAt),
	}
	if r.Schemas != nil {
		et.Schemas = json.RawMessage(r.Schemas)
	}
	return et, nil
}

type signingKeyItem struct {
	Key       []byte `dynamodbav:"key"`
	ExpiresAt int64  `dynamodbav:"exp,omitempty"`
}

type endpointItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
	// SweepPK is set while the endpoint is enabled, SweepSK while it is
	// failing: it is in IndexSweep when both hold. The two are written
	// by different operations (enable/disable, health), so neither needs
	// to know the other's state.
	SweepPK      string            `dynamodbav:"sweepPk,omitempty"`
	SweepSK      string            `dynamodbav:"sweepSk,omitempty"`
	ID           string            `dynamodbav:"id"`
	AppID        string            `dynamodbav:"appId"`
	UID          string            `dynamodbav:"uid,omitempty"`
	URL          string            `dynamodbav:"url,omitempty"`
	Description  string            `dynamodbav:"description,omitempty"`
	Disabled     bool              `dynamodbav:"disabled"` // always stored: conditions test it
	DisabledAt   int64             `dynamodbav:"disabledAt,omitempty"`
	DisabledWhy  string            `dynamodbav:"disabledWhy,omitempty"`
	FilterTypes  []string          `dynamodbav:"filterTypes,omitempty"`
	Channels     []string          `dynamodbav:"channels,omitempty"`
	Keys         []signingKeyItem  `dynamodbav:"keys,omitempty"`
	Headers      map[string]string `dynamodbav:"headers,omitempty"`
	Metadata     map[string]string `dynamodbav:"metadata,omitempty"`
	ThrottleRate *int              `dynamodbav:"throttleRate,omitempty"`
	Version      int               `dynamodbav:"version"`
	FailingSince int64             `dynamodbav:"failingSince,omitempty"`
	CreatedAt    int64             `dynamodbav:"createdAt,omitempty"`
	UpdatedAt    int64             `dynamodbav:"updatedAt,omitempty"`
}

func encodeEndpoint(ep *webhook.Endpoint) (item, error) {
	k := endpointKey(ep.AppID, ep.ID)
	r := endpointItem{
		PK: k.pk, SK: k.sk,
		ID: ep.ID, AppID: ep.AppID, UID: ep.UID, URL: ep.URL, Description: ep.Description,
		Disabled: ep.Disabled, DisabledAt: millis(ep.DisabledAt), DisabledWhy: ep.DisabledWhy,
		FilterTypes: ep.FilterTypes, Channels: ep.Channels, Headers: ep.Headers, Metadata: ep.Metadata,
		ThrottleRate: ep.ThrottleRate, Version: ep.Version, FailingSince: millis(ep.FailingSince),
		CreatedAt: millis(ep.CreatedAt), UpdatedAt: millis(ep.UpdatedAt),
	}
	for _, sk := range ep.Keys {
		r.Keys = append(r.Keys, signingKeyItem{Key: sk.Key, ExpiresAt: millis(sk.ExpiresAt)})
	}
	if !ep.Disabled {
		r.SweepPK = failingPartition
	}
	if !ep.FailingSince.IsZero() {
		r.SweepSK = failingSortKey(ep)
	}
	return attributevalue.MarshalMap(r)
}

func decodeEndpoint(it item) (webhook.Endpoint, error) {
	var r endpointItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.Endpoint{}, err
	}
	ep := webhook.Endpoint{
		ID: r.ID, AppID: r.AppID, UID: r.UID, URL: r.URL, Description: r.Description,
		Disabled: r.Disabled, DisabledAt: fromMillis(r.DisabledAt), DisabledWhy: r.DisabledWhy,
		FilterTypes: r.FilterTypes, Channels: r.Channels, Headers: r.Headers, Metadata: r.Metadata,
		ThrottleRate: r.ThrottleRate, Version: r.Version, FailingSince: fromMillis(r.FailingSince),
		CreatedAt: fromMillis(r.CreatedAt), UpdatedAt: fromMillis(r.UpdatedAt),
	}
	for _, sk := range r.Keys {
		ep.Keys = append(ep.Keys, webhook.SigningKey{Key: sk.Key, ExpiresAt: fromMillis(sk.ExpiresAt)})
	}
	return ep, nil
}

type messageItem struct {
	PK        string   `dynamodbav:"pk"`
	SK        string   `dynamodbav:"sk"`
	ListPK    string   `dynamodbav:"listPk"`
	ListSK    string   `dynamodbav:"listSk"`
	ID        string   `dynamodbav:"id"`
	AppID     string   `dynamodbav:"appId"`
	EventType string   `dynamodbav:"eventType"`
	EventID   string   `dynamodbav:"eventId,omitempty"`
	Payload   []byte   `dynamodbav:"payload,omitempty"` // the exact bytes that are signed
	Channels  []string `dynamodbav:"channels,omitempty"`
	Tags      []string `dynamodbav:"tags,omitempty"`
	Timestamp int64    `dynamodbav:"ts,omitempty"`
	ExpMs     int64    `dynamodbav:"expMs,omitempty"`
	ExpiresAt int64    `dynamodbav:"expiresAt,omitempty"`
	// Deferred are the endpoints whose first run was dispatched before
	// the message was stored and whose delivery item is not written
	// until something changes it (see deferred.go).
	Deferred []string `dynamodbav:"deferred,stringset,omitempty"`
}

// encodeMessage returns the item of a message whose deliveries to the
// deferred endpoints are not written (see deferred.go).
func encodeMessage(m *webhook.Message, deferred []string) (item, error) {
	k := messageKey(m.AppID, m.ID)
	return attributevalue.MarshalMap(messageItem{
		PK: k.pk, SK: k.sk, ListPK: shard(appMessages(m.AppID), m.ID, MessageShards), ListSK: m.ID,
		ID: m.ID, AppID: m.AppID, EventType: m.EventType, EventID: m.EventID, Payload: m.Payload,
		Channels: m.Channels, Tags: m.Tags, Timestamp: millis(m.Timestamp),
		ExpMs: millis(m.ExpiresAt), ExpiresAt: ttl(m.ExpiresAt), Deferred: deferred,
	})
}

func decodeMessage(it item) (webhook.Message, error) {
	var r messageItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.Message{}, err
	}
	return webhook.Message{
		ID: r.ID, AppID: r.AppID, EventType: r.EventType, EventID: r.EventID, Payload: json.RawMessage(r.Payload),
		Channels: r.Channels, Tags: r.Tags, Timestamp: fromMillis(r.Timestamp), ExpiresAt: fromMillis(r.ExpMs),
	}, nil
}

type deliveryItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	EndpointPK string `dynamodbav:"epPk"`
	EndpointSK string `dynamodbav:"epSk"`
	// SweepPK is set while the run is unfinished: only then is the
	// delivery in IndexSweep. SweepSK orders it by checkAt, the time by
	// which the run should have moved on, so that the sweeper finds runs
	// that did not: for an undispatched run the time it became so (it is
	// dispatched within seconds), for a dispatched one the time its next
	// attempt is due (its execution records an attempt by then), or the
	// time the sweeper postponed its next look to (Postpone).
	SweepPK       string   `dynamodbav:"sweepPk,omitempty"`
	SweepSK       string   `dynamodbav:"sweepSk"`
	AppID         string   `dynamodbav:"appId"`
	MsgID         string   `dynamodbav:"msgId"`
	EndpointID    string   `dynamodbav:"endpointId"`
	EventType     string   `dynamodbav:"eventType"`
	Channels      []string `dynamodbav:"channels,omitempty"`
	Status        int      `dynamodbav:"status"`
	Run           int      `dynamodbav:"run"`
	Trigger       int      `dynamodbav:"trigger"`
	Attempts      int      `dynamodbav:"attempts"`
	NextAttemptAt int64    `dynamodbav:"nextAttemptAt,omitempty"`
	Dispatched    bool     `dynamodbav:"dispatched"`
	CreatedAt     int64    `dynamodbav:"createdAt,omitempty"`
	UpdatedAt     int64    `dynamodbav:"updatedAt,omitempty"`
	ExpMs         int64    `dynamodbav:"expMs,omitempty"`     // the message's: a delivery is read with its message
	ExpiresAt     int64    `dynamodbav:"expiresAt,omitempty"` // the message's
}

// encodeDelivery returns the item of a delivery of a message that expires
// at msgExpiresAt.
func encodeDelivery(d *webhook.Delivery, msgExpiresAt time.Time) (item, error) {
	k := deliveryKey(d.AppID, d.MsgID, d.EndpointID)
	r := deliveryItem{
		PK: k.pk, SK: k.sk,
		EndpointPK: shard(endpointPartition(d.AppID, d.EndpointID), d.MsgID, EndpointShards), EndpointSK: "D#" + d.MsgID,
		SweepSK: sweepSortKey(checkAt(d), d.MsgID, d.EndpointID),
		AppID:   d.AppID, MsgID: d.MsgID, EndpointID: d.EndpointID, EventType: d.EventType, Channels: d.Channels,
		Status: int(d.Status), Run: d.Run, Trigger: int(d.Trigger), Attempts: d.Attempts,
		NextAttemptAt: millis(d.NextAttemptAt), Dispatched: d.Dispatched,
		CreatedAt: millis(d.CreatedAt), UpdatedAt: millis(d.UpdatedAt),
		ExpMs: millis(msgExpiresAt), ExpiresAt: ttl(msgExpiresAt),
	}
	if !d.Status.Final() {
		r.SweepPK = sweepShard(d.MsgID, d.EndpointID)
	}
	return attributevalue.MarshalMap(r)
}

// checkAt is when the sweeper should look at an unfinished delivery that
// has not moved on (see deliveryItem.SweepPK): when its next attempt is
// due, or when it was last updated if it has none.
func checkAt(d *webhook.Delivery) time.Time {
	if d.NextAttemptAt.IsZero() {
		return d.UpdatedAt
	}
	return d.NextAttemptAt
}

func decodeDelivery(it item) (webhook.Delivery, error) {
	var r deliveryItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.Delivery{}, err
	}
	return webhook.Delivery{
		AppID: r.AppID, MsgID: r.MsgID, EndpointID: r.EndpointID, EventType: r.EventType, Channels: r.Channels,
		Status: webhook.Status(r.Status), Run: r.Run, Trigger: webhook.Trigger(r.Trigger), Attempts: r.Attempts,
		NextAttemptAt: fromMillis(r.NextAttemptAt), Dispatched: r.Dispatched,
		CreatedAt: fromMillis(r.CreatedAt), UpdatedAt: fromMillis(r.UpdatedAt),
	}, nil
}

type attemptItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	EndpointPK string `dynamodbav:"epPk"`
	EndpointSK string `dynamodbav:"epSk"`
	ID         string `dynamodbav:"id"`
	AppID      string `dynamodbav:"appId"`
	MsgID      string `dynamodbav:"msgId"`
	EndpointID string `dynamodbav:"endpointId"`
	EventType  string `dynamodbav:"eventType"`
	URL        string `dynamodbav:"url,omitempty"`
	Response   string `dynamodbav:"response,omitempty"`
	Code       int    `dynamodbav:"code"`
	DurationMs int64  `dynamodbav:"durationMs,omitempty"`
	Status     int    `dynamodbav:"status"`
	Trigger    int    `dynamodbav:"trigger"`
	Timestamp  int64  `dynamodbav:"ts,omitempty"`
	ExpMs      int64  `dynamodbav:"expMs,omitempty"`
	ExpiresAt  int64  `dynamodbav:"expiresAt,omitempty"`
}

func encodeAttempt(a *webhook.Attempt) (item, error) {
	k := attemptKey(a.AppID, a.MsgID, a.ID)
	return attributevalue.MarshalMap(attemptItem{
		PK: k.pk, SK: k.sk,
		EndpointPK: shard(endpointPartition(a.AppID, a.EndpointID), a.MsgID, EndpointShards), EndpointSK: "A#" + a.ID,
		ID: a.ID, AppID: a.AppID, MsgID: a.MsgID, EndpointID: a.EndpointID, EventType: a.EventType,
		URL: a.URL, Response: a.Response, Code: a.ResponseStatusCode, DurationMs: a.ResponseDurationMs,
		Status: int(a.Status), Trigger: int(a.Trigger), Timestamp: millis(a.Timestamp),
		ExpMs: millis(a.ExpiresAt), ExpiresAt: ttl(a.ExpiresAt),
	})
}

func decodeAttempt(it item) (webhook.Attempt, error) {
	var r attemptItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.Attempt{}, err
	}
	return webhook.Attempt{
		ID: r.ID, AppID: r.AppID, MsgID: r.MsgID, EndpointID: r.EndpointID, EventType: r.EventType,
		URL: r.URL, Response: r.Response, ResponseStatusCode: r.Code, ResponseDurationMs: r.DurationMs,
		Status: webhook.Status(r.Status), Trigger: webhook.Trigger(r.Trigger),
		Timestamp: fromMillis(r.Timestamp), ExpiresAt: fromMillis(r.ExpMs),
	}, nil
}

// claimItem is a uniqueness item: an app uid (appUIDKey), an endpoint uid
// within its app (endpointUIDKey), or an event id within its app
// (eventIDKey). Owner is the id of the app, endpoint or message that
// holds it; ClaimedAt (store clock) tells a claim whose owner never
// appeared because its writer died from one still being written.
type claimItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Owner     string `dynamodbav:"owner"`
	ClaimedAt int64  `dynamodbav:"claimedAt"`
	// Event ids only: the owning message's timestamp and expiry.
	Timestamp int64 `dynamodbav:"ts,omitempty"`
	ExpMs     int64 `dynamodbav:"expMs,omitempty"`
	ExpiresAt int64 `dynamodbav:"expiresAt,omitempty"`
}

type idempotencyItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Done      bool   `dynamodbav:"done"`
	Code      int    `dynamodbav:"code"`
	Body      []byte `dynamodbav:"body,omitempty"`
	ClaimedAt int64  `dynamodbav:"claimedAt,omitempty"` // store clock; absent in records written before it existed
	ExpMs     int64  `dynamodbav:"expMs"`
	ExpiresAt int64  `dynamodbav:"expiresAt"`
	Resource  string `dynamodbav:"resource,omitempty"`
}
