package webhook

import (
	"context"
	"slices"
	"time"
)

// MaxLimit is the largest page a list returns; DefaultLimit the page
// size when ListOptions.Limit is 0.
const (
	MaxLimit     = 250
	DefaultLimit = 50
)

// ListOptions selects one page of a list ordered by key (ids are KSUIDs, so
// id order is creation order; event types are ordered by name).
//
// Without Cursor the page starts at the beginning of the list in the given
// order. With Cursor (a key, exclusive) the page holds the items after it,
// or — when Backward — the Limit items closest before it, still returned in
// list order.
type ListOptions struct {
	Limit     int // 1..MaxLimit; 0 means 50
	Cursor    string
	Backward  bool
	Ascending bool
}

// Page is one page of a list. More reports whether items exist beyond the
// page in its direction of travel (after its last item, or before its first
// item for a Backward page).
type Page[T any] struct {
	Items []T
	More  bool
}

// EventTypeFilter selects event types.
type EventTypeFilter struct {
	ListOptions
	IncludeArchived bool
}

// MessageFilter selects an app's messages. Zero fields do not filter.
// Before and After bound Timestamp exclusively.
type MessageFilter struct {
	ListOptions
	AppID      string
	EventTypes []string
	Channel    string
	Before     time.Time
	After      time.Time
}

// DeliveryFilter selects deliveries of one message (MsgID set: ordered by
// endpoint id, cursor = endpoint id) or of one endpoint (EndpointID set:
// ordered by message id, cursor = message id). Zero fields do not filter;
// Since (inclusive) and Until (exclusive) bound the delivery's CreatedAt,
// i.e. the message's timestamp.
type DeliveryFilter struct {
	ListOptions
	AppID      string
	MsgID      string
	EndpointID string
	Statuses   []Status
	EventTypes []string
	Channel    string
	Since      time.Time
	Until      time.Time
}

// AttemptFilter selects attempts by endpoint and/or message, ordered by
// attempt id. Zero fields do not filter; StatusCodeClass is 0 (no
// response), 100, 200, 300, 400 or 500 when set. Before and After bound the
// attempt Timestamp exclusively.
type AttemptFilter struct {
	ListOptions
	AppID           string
	EndpointID      string
	MsgID           string
	Status          *Status
	StatusCodeClass *int
	EventTypes      []string
	Before          time.Time
	After           time.Time
}

// AttemptResult is what one attempt changes, applied by
// Store.RecordAttempt: the attempt itself, the delivery's next state, and
// the endpoint's health.
type AttemptResult struct {
	Attempt Attempt
	// Run and Attempts identify the delivery state the attempt was made
	// from: the delivery is updated only if it is still in that run, has
	// exactly Attempts-1 recorded attempts and is not final.
	Run      int
	Attempts int
	// Status is the delivery's new status: Success, Sending (another
	// attempt at NextAttemptAt) or Fail.
	Status        Status
	NextAttemptAt time.Time
	// From is the delivery as the attempt read it. A store that has not
	// written a deferred delivery yet (see CreateMessage) creates it from
	// From and the result; a store may also build the delivery it returns
	// from it (SQLite), rather than read it back.
	From *Delivery
	// Endpoint is the endpoint as the attempt read it, when it did: a
	// store may apply the health change to it without reading it again.
	Endpoint *Endpoint
}

// ChangeCounter is a Store that counts the writes that could change what
// was read for a delivery's attempt or for a message's fan-out: every
// write but those of new messages, attempts, claims, dispatch records and
// idempotency keys. What was read while the count stayed the same is
// still what the store holds, however old (SQLite, whose one process
// makes every write: local mode holds the data dir's lock).
type ChangeCounter interface {
	// Changes returns the count. It moves once such a write can be
	// read, and before the write returns: a read of the store made after
	// reading the count sees every write the count has counted.
	Changes() uint64
}

// KeyClaim is an idempotency key to claim, naming a new message, in the
// write that stores the message (KeyedMessageCreator).
type KeyClaim struct {
	Key       string
	ExpiresAt time.Time
}

// KeyedMessageCreator is a Store that can claim an idempotency key in the
// same write that stores a message. The API then writes once per message
// that carries a key (every Svix SDK sends one) instead of claiming the
// key first and storing the message second: one commit per message, and
// no claim left behind by a request that dies in between.
type KeyedMessageCreator interface {
	// CreateMessageKeyed is CreateMessage that also claims claim.Key
	// for msg.ID (as BeginIdempotent with resource msg.ID would), in one
	// transaction. If the key holds a live record, nothing is written
	// and the error is a *KeyTakenError carrying it.
	CreateMessageKeyed(ctx context.Context, msg *Message, deliveries []Delivery, claim KeyClaim) error
}

// KeyTakenError is CreateMessageKeyed's answer when the key is held.
type KeyTakenError struct {
	Record IdempotencyRecord
}

func (e *KeyTakenError) Error() string { return "idempotency key already claimed" }

// IdempotencyRecord is a stored response for an idempotency key. Done is
// false while the first request with the key is still being served.
// ClaimedAt is when that request claimed the key (the store's clock): a
// claim that stays unfinished for long belongs to a request whose process
// died, and BeginIdempotent takes it over.
type IdempotencyRecord struct {
	Key        string
	Done       bool
	StatusCode int
	Body       []byte
	ClaimedAt  time.Time
	ExpiresAt  time.Time
	// Resource names what the request that claimed the key creates (a
	// message id), when it said: a repeat answers from it.
	Resource string
}

// ErrStale is the Conflict of an optimistic update (UpdateApp,
// UpdateEventType, UpdateEndpoint, UpdateTask) whose ifUpdatedAt is no
// longer the stored UpdatedAt: something else changed the item since the
// caller read it. Stores return it or wrap it, so callers tell it from other conflicts
// (a taken uid) with errors.Is, re-read and apply their change again.
var ErrStale error = &Error{Kind: KindConflict, Msg: "changed since it was read"}

// NextUpdatedAt returns the UpdatedAt that a write made at now stores over
// a stored UpdatedAt of prev: now, or prev plus one millisecond when now is
// not after prev at millisecond precision (what the stores keep). Every
// write thus changes UpdatedAt, even within one millisecond or when clocks
// disagree, and an optimistic update that read prev cannot miss it.
func NextUpdatedAt(prev, now time.Time) time.Time {
	if prev.IsZero() || now.UnixMilli() > prev.UnixMilli() {
		return now
	}
	return time.UnixMilli(prev.UnixMilli() + 1).UTC()
}

// Store keeps hookstep's state. Every implementation passes the contract
// suite in internal/webhook/storetest; a behaviour not in the suite is not
// guaranteed. Methods return errors of KindNotFound and KindConflict as
// documented and wrap anything else. The text of those errors is for logs:
// it names ids and keys, and the API never shows it to clients.
//
// Reads ignore messages, attempts and tasks whose ExpiresAt has passed.
//
// Apps, event types and endpoints are updated optimistically: the caller
// reads the item, changes it and passes the UpdatedAt it read as
// ifUpdatedAt; the update is refused with ErrStale if the stored UpdatedAt
// differs. Every write of such an item that a caller could overwrite
// (updates, DisableEndpoint) moves UpdatedAt on (see NextUpdatedAt);
// RecordAttempt's health changes do not, as UpdateEndpoint never
// overwrites FailingSince. Tasks are updated optimistically too, so that
// of two workers that resumed the same task only one goes on.
type Store interface {
	// CreateApp stores a new app; Conflict if its UID is taken.
	CreateApp(ctx context.Context, app *App) error
	// GetApp finds an app by id or uid; NotFound if neither matches.
	GetApp(ctx context.Context, idOrUID string) (*App, error)
	// UpdateApp replaces a stored app whose UpdatedAt is ifUpdatedAt;
	// NotFound if absent, ErrStale if its UpdatedAt differs, Conflict if
	// the new UID belongs to another app. It stores
	// NextUpdatedAt(ifUpdatedAt, app.UpdatedAt) and sets app.UpdatedAt to
	// it.
	UpdateApp(ctx context.Context, app *App, ifUpdatedAt time.Time) error
	// DeleteApp removes an app; afterwards none of its endpoints,
	// messages, deliveries or attempts can be read. NotFound if absent.
	DeleteApp(ctx context.Context, id string) error
	// ListApps lists apps by id.
	ListApps(ctx context.Context, opts ListOptions) (Page[App], error)

	// CreateEventType stores a new event type; Conflict if the name exists
	// (archived or not).
	CreateEventType(ctx context.Context, et *EventType) error
	// GetEventType finds an event type by name, archived ones included.
	GetEventType(ctx context.Context, name string) (*EventType, error)
	// UpdateEventType replaces a stored event type whose UpdatedAt is
	// ifUpdatedAt; NotFound if absent, ErrStale if its UpdatedAt differs.
	// It stores NextUpdatedAt(ifUpdatedAt, et.UpdatedAt) and sets
	// et.UpdatedAt to it.
	UpdateEventType(ctx context.Context, et *EventType, ifUpdatedAt time.Time) error
	// DeleteEventType removes an event type for good (expunge).
	DeleteEventType(ctx context.Context, name string) error
	// ListEventTypes lists event types by name.
	ListEventTypes(ctx context.Context, f EventTypeFilter) (Page[EventType], error)

	// CreateEndpoint stores a new endpoint; Conflict if its UID is taken
	// within the app.
	CreateEndpoint(ctx context.Context, ep *Endpoint) error
	// GetEndpoint finds an app's endpoint by id or uid.
	GetEndpoint(ctx context.Context, appID, idOrUID string) (*Endpoint, error)
	// UpdateEndpoint replaces a stored endpoint whose UpdatedAt is
	// ifUpdatedAt; NotFound if absent, ErrStale if its UpdatedAt differs
	// (a concurrent update, or DisableEndpoint), Conflict if the new UID
	// belongs to another endpoint of the app. It leaves FailingSince as
	// stored unless the update re-enables the endpoint (Disabled true →
	// false), which clears it; a concurrent RecordAttempt is therefore not
	// a reason for ErrStale. It stores NextUpdatedAt(ifUpdatedAt,
	// ep.UpdatedAt) and sets ep.UpdatedAt and ep.FailingSince to what it
	// stored.
	UpdateEndpoint(ctx context.Context, ep *Endpoint, ifUpdatedAt time.Time) error
	// DeleteEndpoint removes an endpoint and its deliveries.
	DeleteEndpoint(ctx context.Context, appID, id string) error
	// ListEndpoints lists an app's endpoints by id.
	ListEndpoints(ctx context.Context, appID string, opts ListOptions) (Page[Endpoint], error)

	// CreateMessage stores a message and its deliveries (each Pending;
	// dispatched only if the caller says so: its Dispatcher took them in
	// memory, see delivery.Holder, or took them before the message was
	// stored, see delivery.Early). A store may defer writing a delivery
	// that is dispatched and not Claimed until something changes it (its
	// first attempt, a new run, a finish): until then every read returns
	// it as stored here (run 0, pending, dispatched, no attempts, due at
	// the message's timestamp), except lists by endpoint and
	// EndpointStats, which see it from its first change on (internal/dynamo
	// defers; internal/sqlite does not). Readers never see the message without its deliveries:
	// the message is the commit point (SQLite: one transaction; DynamoDB:
	// deliveries first, the message last, see internal/dynamo). Conflict if the message has an EventID
	// already used by a message of the app in the 24 hours before it;
	// NotFound if the app does not exist. The deliveries were chosen from
	// a list of the app's endpoints read before the call, so an endpoint
	// may have been deleted since: that is not an error. A store either
	// drops the deliveries to endpoints that no longer exist or keeps them
	// (the delivery engine cancels a delivery whose endpoint is gone).
	CreateMessage(ctx context.Context, msg *Message, deliveries []Delivery) error
	// GetMessage finds an app's message by id or by EventID (the newest
	// message with it).
	GetMessage(ctx context.Context, appID, idOrEventID string) (*Message, error)
	// ListMessages lists an app's messages by id.
	ListMessages(ctx context.Context, f MessageFilter) (Page[Message], error)
	// ExpungeContent deletes the payload of an app's message (by id)
	// for good; the message, its deliveries and attempts stay, and reads
	// return it with an empty Payload (see Message.Expunged). Expunging
	// twice is not an error. NotFound if the message does not exist or
	// has expired.
	ExpungeContent(ctx context.Context, appID, msgID string) error
	// ExpungeAttemptContent replaces the response body of an attempt of
	// an app's message with ExpungedResponse, for good. NotFound if the
	// attempt does not exist or has expired.
	ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error

	// GetDelivery returns the delivery of a message to an endpoint.
	GetDelivery(ctx context.Context, appID, msgID, endpointID string) (*Delivery, error)
	// LoadRun reads what an attempt of the run ref needs: its delivery,
	// the endpoint and the message, as GetDelivery, GetEndpoint and
	// GetMessage return them, in one read where the store can (SQLite:
	// one query; DynamoDB: one BatchGetItem). It may stop where an attempt
	// stops: a stale or final run may come without its endpoint and
	// message, a disabled endpoint without the message, and no error.
	// When one it needs is missing it returns NotFound with those found
	// before it, in that order: a nil delivery means the delivery is
	// missing, a nil endpoint the endpoint, a nil message the message.
	LoadRun(ctx context.Context, ref Ref) (*Delivery, *Endpoint, *Message, error)
	// ListDeliveries lists the deliveries of one message or one endpoint.
	ListDeliveries(ctx context.Context, f DeliveryFilter) (Page[Delivery], error)
	// StartRun starts a new manual run of the delivery of msg to the
	// endpoint — Run+1 (1 when the message never went there), Pending,
	// Trigger manual, no attempts, due at now, undispatched — and returns
	// it. It creates the delivery if there was none.
	StartRun(ctx context.Context, msg *Message, endpointID string, now time.Time) (*Delivery, error)
	// MarkDispatched records that the run's scheduler has taken it. A
	// stale run (superseded by a newer one) is left alone.
	MarkDispatched(ctx context.Context, ref Ref) error
	// MarkDispatchedBatch is MarkDispatched for several runs (a message's
	// fan-out, or what the sweeper re-drove), in one write where the store
	// can. A run whose delivery is missing, or stale, is skipped without
	// error.
	MarkDispatchedBatch(ctx context.Context, refs []Ref) error
	// Redrive takes an unfinished run back from a dispatcher that lost it
	// (its execution ended without finishing the delivery, or handed it
	// back) for a fresh dispatch: the delivery moves to run ref.Run+1,
	// undispatched, due at now, keeping its status, trigger and attempts,
	// so that the schedule goes on where it was. It returns the delivery
	// as it is afterwards. Conflict if the delivery is no longer at run
	// ref.Run or is final; NotFound if it does not exist.
	Redrive(ctx context.Context, ref Ref, now time.Time) (*Delivery, error)
	// ListUndispatched returns up to limit unfinished deliveries whose
	// current run is not dispatched and was last updated before the given
	// time, oldest first, across all apps.
	ListUndispatched(ctx context.Context, before time.Time, limit int) ([]Delivery, error)
	// RecordAttempt stores an attempt and applies its result (see
	// AttemptResult) to the delivery and to the endpoint's health, the
	// delivery update last and conditional, so that exactly one of two
	// racing results applies (SQLite: one transaction; DynamoDB: ordered
	// conditional writes). A success clears FailingSince, a failure sets it to the
	// attempt's time when it is zero. The endpoint's UpdatedAt is left
	// alone: health changes often and must not make a concurrent
	// UpdateEndpoint stale. It returns the delivery as it is
	// afterwards (a store may build it from res.From advanced by the
	// attempt: its Dispatched is then From's); if the delivery had moved
	// on (other run, final, or other attempt count) the attempt is still
	// stored and the delivery is returned unchanged, as stored. NotFound
	// if the delivery does not exist.
	RecordAttempt(ctx context.Context, res AttemptResult) (*Delivery, error)
	// CancelDeliveries marks every unfinished delivery of an endpoint
	// Canceled and returns how many changed.
	CancelDeliveries(ctx context.Context, appID, endpointID string, now time.Time) (int, error)
	// FinishDelivery sets an unfinished delivery's current run to a final
	// status (Fail when a dispatcher gives up, Canceled when it stops);
	// a stale run or a final delivery is left alone.
	FinishDelivery(ctx context.Context, ref Ref, status Status, now time.Time) error
	// EndpointStats counts an endpoint's deliveries by status, for
	// deliveries created in [since, until) (zero bounds do not filter).
	EndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (map[Status]int, error)

	// GetAttempt returns one attempt of a message.
	GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*Attempt, error)
	// ListAttempts lists attempts by endpoint and/or message.
	ListAttempts(ctx context.Context, f AttemptFilter) (Page[Attempt], error)

	// ListFailingEndpoints returns up to limit enabled endpoints, across
	// all apps, whose FailingSince is set and not after the given time.
	ListFailingEndpoints(ctx context.Context, failingSince time.Time, limit int) ([]Endpoint, error)
	// DisableEndpoint disables an endpoint for failing, only if it is
	// still enabled and its FailingSince still equals the given time
	// (so a success or a manual change in between wins); Conflict if not.
	// It sets UpdatedAt to NextUpdatedAt(stored UpdatedAt, now), so that an
	// update that read the endpoint before is stale and cannot re-enable
	// it by accident.
	DisableEndpoint(ctx context.Context, appID, id string, failingSince, now time.Time) error

	// BeginIdempotent claims an idempotency key: it stores an unfinished
	// record claimed now (the store's clock), naming resource, and
	// returns (nil, nil) when the key is free, expired, or held by an
	// unfinished claim made before staleBefore (its request died) that
	// names no resource; it returns the existing record otherwise. A
	// claim that names a resource is never taken over: its request
	// creates the resource under that name, so a repeat answers from the
	// resource, whatever became of the request (see internal/api).
	BeginIdempotent(ctx context.Context, key, resource string, expiresAt, staleBefore time.Time) (*IdempotencyRecord, error)
	// FinishIdempotent stores the response for a claimed key.
	FinishIdempotent(ctx context.Context, key string, statusCode int, body []byte) error
	// ReleaseIdempotent frees a claimed key whose request did not succeed.
	ReleaseIdempotent(ctx context.Context, key string) error

	// CreateTask stores a new background task; Conflict if its id
	// exists. It does not check that its app or endpoint exists.
	CreateTask(ctx context.Context, t *Task) error
	// GetTask finds a task by id; NotFound if absent or expired.
	GetTask(ctx context.Context, id string) (*Task, error)
	// UpdateTask stores a task's Status, Data and State (its other fields
	// never change) if its stored UpdatedAt is ifUpdatedAt; NotFound if
	// absent or expired, ErrStale if its UpdatedAt differs (another
	// worker wrote it since the caller read it). It stores
	// NextUpdatedAt(ifUpdatedAt, t.UpdatedAt) and sets t.UpdatedAt to it.
	UpdateTask(ctx context.Context, t *Task, ifUpdatedAt time.Time) error
	// ListTasks lists tasks by id, across apps.
	ListTasks(ctx context.Context, f TaskFilter) (Page[Task], error)
}

// Dispatcher hands delivery runs to whatever schedules their attempts:
// the local durable queue, or a Step Functions execution per run.
type Dispatcher interface {
	// Dispatch schedules the runs' next attempts and returns those it
	// took, which the caller records as dispatched (MarkDispatchedBatch).
	// A run it did not take — it failed, was throttled, or went to a
	// component that records it itself — stays undispatched, for the
	// sweeper to re-drive; err says why, if something failed.
	// Dispatching a run that was already dispatched is harmless.
	Dispatch(ctx context.Context, refs []Ref) (taken []Ref, err error)
}

// PageOf returns the page opts selects from items, which are in
// ascending order of key: for a store that reads a whole, short list and
// pages it in memory.
func PageOf[T any](items []T, opts ListOptions, key func(T) string) ([]T, bool) {
	order := slices.Clone(items)
	precedes := func(a, b string) bool { return a < b }
	if !opts.Ascending {
		slices.Reverse(order)
		precedes = func(a, b string) bool { return a > b }
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if opts.Cursor == "" {
		n := min(limit, len(order))
		return order[:n], len(order) > n
	}
	i := 0 // order[:i] precedes the cursor
	for i < len(order) && precedes(key(order[i]), opts.Cursor) {
		i++
	}
	if opts.Backward {
		start := max(0, i-limit)
		return order[start:i], start > 0
	}
	if i < len(order) && key(order[i]) == opts.Cursor {
		i++
	}
	rest := order[i:]
	n := min(limit, len(rest))
	return rest[:n], len(rest) > n
}
