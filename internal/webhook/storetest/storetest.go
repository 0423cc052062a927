// Package storetest is the contract suite for webhook.Store. Every Store
// implementation calls Run from its own tests; a behaviour the suite does
// not check is not guaranteed.
//
// # Time
//
// The suite owns time. It passes a Clock to newStore, and the store must use
// it, never the wall clock, wherever it compares with "now": expiry of
// messages, attempts and idempotency records. The suite only writes times
// that are whole milliseconds in UTC and compares times with time.Time.Equal
// (go-cmp calls Equal), so a store must round-trip times at millisecond
// precision at least and may return them in any location. A zero time.Time
// must read back as zero. Nil and empty maps and slices are treated as
// equal.
//
// # Details the Store doc comments leave open
//
// The suite fixes them as follows; implementations must agree.
//
//   - Lists: Limit 0 means 50. A Cursor need not name an existing item (it is
//     compared as a key). Backward without a Cursor is ignored: the page is
//     the first one, and More reports items after it.
//   - Expiry: an item is checked visible 1 ms before its ExpiresAt and gone
//     1 ms after it (the exact instant is not checked). A delivery is read
//     together with its message: GetDelivery, ListDeliveries and
//     EndpointStats ignore deliveries whose message has expired.
//   - DeleteEventType and DeleteEndpoint return NotFound when there is
//     nothing to delete.
//   - CreateMessage with a delivery to an endpoint that was deleted (the
//     caller listed the app's endpoints before the delete) succeeds and
//     stores the message and the other deliveries. Whether the delivery to
//     the deleted endpoint is dropped (SQLite: inside the transaction) or
//     kept (DynamoDB: the deliver step cancels it) is left open, so the
//     suite does not read it.
//   - CreateMessage copies AppID, MsgID, EventType, Channels and CreatedAt
//     (= the message's Timestamp) into each delivery, and sets Status Pending,
//     Run 0, Trigger scheduled and Attempts 0, keeping Dispatched as given;
//     a zero NextAttemptAt or UpdatedAt becomes the message's Timestamp. A message
//     id that exists is a Conflict. An EventID conflicts with a message of
//     the same app whose Timestamp is less than 24 hours before the new
//     one's; other apps' messages never conflict.
//   - GetMessage tries the id first, then the EventID; "newest" means the
//     latest Timestamp.
//   - RecordAttempt: when the result applies, the delivery takes Status,
//     Attempts and NextAttemptAt from it and UpdatedAt = Attempt.Timestamp.
//     Endpoint health follows the attempt's own Status (Success clears
//     FailingSince; any other status sets it when zero) and is applied even
//     when the delivery has moved on, because the request did happen.
//   - StartRun sets UpdatedAt = now and CreatedAt = the message's Timestamp.
//     CancelDeliveries and FinishDelivery set UpdatedAt = now.
//   - MarkDispatched and FinishDelivery return NotFound when the delivery
//     does not exist.
//   - UpdateEndpoint ignores the FailingSince it is given.
//   - Optimistic updates: UpdateApp, UpdateEventType and UpdateEndpoint
//     compare ifUpdatedAt with the stored UpdatedAt at millisecond
//     precision. A stale one returns an error that errors.Is
//     webhook.ErrStale and changes nothing (not even a uid claim); a taken
//     uid is a Conflict that is not ErrStale. Which of the two a stale
//     update that would also take a uid gets is unspecified. NotFound wins
//     over ErrStale.
//   - DisableEndpoint sets Disabled, DisabledAt = now, DisabledWhy =
//     "failing" and UpdatedAt = webhook.NextUpdatedAt(stored, now), keeps
//     FailingSince, and returns NotFound for a missing endpoint; a refused
//     one changes nothing. RecordAttempt never changes an endpoint's
//     UpdatedAt. The order of ListFailingEndpoints is unspecified.
//   - EndpointStats may leave statuses with no deliveries out of the map.
//   - Idempotency: of concurrent BeginIdempotent calls for one free key,
//     exactly one claims it. A claim records ClaimedAt = now; an
//     unfinished record is taken over when its ClaimedAt is before
//     staleBefore (checked 1 ms either side), a finished one never. A zero
//     staleBefore takes over no claim the suite made. FinishIdempotent
//     keeps ClaimedAt and returns NotFound for a key with no record;
//     ReleaseIdempotent of a free key is not an error.
//   - Tasks: CreateTask of an existing id is a Conflict. UpdateTask
//     compares ifUpdatedAt at millisecond precision, as the other
//     optimistic updates, and NotFound (absent or expired) wins over
//     ErrStale. Tasks expire as messages do, and no other operation
//     (DeleteApp, DeleteEndpoint) is checked to remove them.
//   - App tokens (webhook.AppTokenStore, which every Store implements):
//     ExpiresAt is checked 1 ms either side, as other expiries, and so is
//     the at of ExpireAppTokens; a token created at the instant of an
//     ExpireAppTokens call is covered by it. Session ids are compared
//     exactly, and a session call never covers a token without a session.
//
// Stores must be safe for concurrent use: the suite races RecordAttempt
// calls, BeginIdempotent calls and ExpireAppTokens calls against each
// other.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Epoch is the time every test's Clock starts at.
var Epoch = time.Date(2025, time.March, 1, 12, 0, 0, 0, time.UTC)

// Clock is a settable webhook.Clock for tests: the suite's, and the one
// every package's tests use. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Run runs the contract suite. newStore must return an empty store that
// reads the time from clock; it is called once per subtest and should
// register its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T, clock webhook.Clock) webhook.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Apps", testApps},
		{"ListApps", testListApps},
		{"EventTypes", testEventTypes},
		{"ListEventTypes", testListEventTypes},
		{"Endpoints", testEndpoints},
		{"ListEndpoints", testListEndpoints},
		{"DeleteApp", testDeleteApp},
		{"CreateMessage", testCreateMessage},
		{"CreateMessageEndpointGone", testCreateMessageEndpointGone},
		{"DeferredDeliveries", testDeferredDeliveries},
		{"EventID", testEventID},
		{"ListMessages", testListMessages},
		{"Expiry", testExpiry},
		{"ExpungeContent", testExpungeContent},
		{"ListDeliveriesByEndpoint", testListDeliveriesByEndpoint},
		{"ListDeliveriesByMessage", testListDeliveriesByMessage},
		{"LoadRun", testLoadRun},
		{"StartRun", testStartRun},
		{"MarkDispatched", testMarkDispatched},
		{"MarkDispatchedBatch", testMarkDispatchedBatch},
		{"Redrive", testRedrive},
		{"ListUndispatched", testListUndispatched},
		{"RecordAttempt", testRecordAttempt},
		{"RecordAttemptRace", testRecordAttemptRace},
		{"CancelDeliveries", testCancelDeliveries},
		{"FinishDelivery", testFinishDelivery},
		{"EndpointStats", testEndpointStats},
		{"Attempts", testAttempts},
		{"ListAttempts", testListAttempts},
		{"ListFailingEndpoints", testListFailingEndpoints},
		{"DisableEndpoint", testDisableEndpoint},
		{"UpdateEndpointStale", testUpdateEndpointStale},
		{"Idempotency", testIdempotency},
		{"IdempotencyStaleClaim", testIdempotencyStaleClaim},
		{"IdempotencyRace", testIdempotencyRace},
		{"IdempotencyResource", testIdempotencyResource},
		{"Tasks", testTasks},
		{"ListTasks", testListTasks},
		{"TaskExpiry", testTaskExpiry},
		{"AppTokens", testAppTokens},
		{"ExpireAppTokens", testExpireAppTokens},
		{"ExpireAppTokensSessions", testExpireAppTokensSessions},
		{"ExpireAppTokensNeverExtends", testExpireAppTokensNeverExtends},
		{"ExpireAppTokensModel", testExpireAppTokensModel},
		{"ExpireAppTokensRace", testExpireAppTokensRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock(Epoch)
			e := &env{ctx: t.Context(), s: newStore(t, clock), clock: clock}
			tt.fn(t, e)
		})
	}
}

// env is what every test works with: the store under test and its clock.
type env struct {
	ctx   context.Context
	s     webhook.Store
	clock *Clock
}

// Retention is how long fixture messages and attempts live.
const retention = 90 * 24 * time.Hour

// cmpOpts compares stored values: times with Equal (go-cmp's default for
// types with an Equal method), nil and empty as equal.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

// diff returns cmp.Diff(want, got) with the suite's options.
func diff(want, got any, opts ...cmp.Option) string {
	return cmp.Diff(want, got, append(opts, cmpOpts...)...)
}

func ptr[T any](v T) *T { return &v }

func (e *env) createApp(t *testing.T, uid string) *webhook.App {
	t.Helper()
	now := e.clock.Now()
	app := &webhook.App{
		ID:        webhook.NewID(webhook.PrefixApp),
		UID:       uid,
		Name:      "app " + uid,
		Metadata:  map[string]string{"team": "core"},
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := e.s.CreateApp(e.ctx, app); err != nil {
		t.Fatalf("CreateApp(%q): %v", uid, err)
	}
	return app
}

func (e *env) createEndpoint(t *testing.T, appID string, mods ...func(*webhook.Endpoint)) *webhook.Endpoint {
	t.Helper()
	now := e.clock.Now()
	ep := &webhook.Endpoint{
		ID:        webhook.NewID(webhook.PrefixEndpoint),
		AppID:     appID,
		URL:       "https://example.com/hook",
		Keys:      []webhook.SigningKey{{Key: []byte("0123456789abcdef0123456789abcdef")}},
		Version:   1,
		CreatedAt: now,
		UpdatedAt: now,
	}
	for _, mod := range mods {
		mod(ep)
	}
	if err := e.s.CreateEndpoint(e.ctx, ep); err != nil {
		t.Fatalf("CreateEndpoint(%s): %v", ep.ID, err)
	}
	return ep
}

// createMessage stores a message of the app, timestamped now, with one
// delivery per endpoint id, then moves the clock on by a second so that
// consecutive messages have increasing timestamps.
func (e *env) createMessage(t *testing.T, appID string, mod func(*webhook.Message), endpointIDs ...string) *webhook.Message {
	t.Helper()
	msg := e.newMessage(appID)
	if mod != nil {
		mod(msg)
	}
	if err := e.s.CreateMessage(e.ctx, msg, fanout(endpointIDs...)); err != nil {
		t.Fatalf("CreateMessage(%s): %v", msg.ID, err)
	}
	e.clock.Advance(time.Second)
	return msg
}

func (e *env) newMessage(appID string) *webhook.Message {
	now := e.clock.Now()
	return &webhook.Message{
		ID:        webhook.NewID(webhook.PrefixMessage),
		AppID:     appID,
		EventType: "user.created",
		Payload:   json.RawMessage(`{"user":"u1"}`),
		Timestamp: now,
		ExpiresAt: now.Add(retention),
	}
}

// fanout returns the deliveries CreateMessage takes for the endpoints,
// leaving to the store the fields it copies from the message.
func fanout(endpointIDs ...string) []webhook.Delivery {
	ds := make([]webhook.Delivery, len(endpointIDs))
	for i, id := range endpointIDs {
		ds[i] = webhook.Delivery{EndpointID: id}
	}
	return ds
}

// newAttempt returns an attempt of the delivery of msg to the endpoint,
// made now.
func (e *env) newAttempt(msg *webhook.Message, endpointID string, status webhook.Status, code int) webhook.Attempt {
	now := e.clock.Now()
	return webhook.Attempt{
		ID:                 webhook.NewID(webhook.PrefixAttempt),
		AppID:              msg.AppID,
		MsgID:              msg.ID,
		EndpointID:         endpointID,
		EventType:          msg.EventType,
		URL:                "https://example.com/hook",
		Response:           `{"ok":true}`,
		ResponseStatusCode: code,
		ResponseDurationMs: 42,
		Status:             status,
		Trigger:            webhook.TriggerScheduled,
		Timestamp:          now,
		ExpiresAt:          now.Add(retention),
	}
}

// record stores an attempt of the delivery's next attempt: run and
// attempt count are read from the store so that the result applies.
func (e *env) record(t *testing.T, msg *webhook.Message, endpointID string, status webhook.Status, code int) *webhook.Delivery {
	t.Helper()
	d := e.getDelivery(t, msg.AppID, msg.ID, endpointID)
	res := webhook.AttemptResult{
		Attempt:  e.newAttempt(msg, endpointID, status, code),
		Run:      d.Run,
		Attempts: d.Attempts + 1,
		Status:   status,
	}
	if status != webhook.StatusSuccess {
		res.Status = webhook.StatusSending
		res.NextAttemptAt = e.clock.Now().Add(time.Minute)
	}
	got, err := e.s.RecordAttempt(e.ctx, res)
	if err != nil {
		t.Fatalf("RecordAttempt(%s): %v", res.Attempt.ID, err)
	}
	return got
}

func (e *env) getDelivery(t *testing.T, appID, msgID, endpointID string) *webhook.Delivery {
	t.Helper()
	d, err := e.s.GetDelivery(e.ctx, appID, msgID, endpointID)
	if err != nil {
		t.Fatalf("GetDelivery(%s, %s): %v", msgID, endpointID, err)
	}
	return d
}

func (e *env) getApp(t *testing.T, id string) *webhook.App {
	t.Helper()
	app, err := e.s.GetApp(e.ctx, id)
	if err != nil {
		t.Fatalf("GetApp(%s): %v", id, err)
	}
	return app
}

func (e *env) getEndpoint(t *testing.T, appID, id string) *webhook.Endpoint {
	t.Helper()
	ep, err := e.s.GetEndpoint(e.ctx, appID, id)
	if err != nil {
		t.Fatalf("GetEndpoint(%s): %v", id, err)
	}
	return ep
}

// wantKind fails the test unless err is of the kind.
func wantKind(t *testing.T, call string, err error, kind webhook.Kind) {
	t.Helper()
	if got := webhook.ErrorKind(err); err == nil || got != kind {
		t.Errorf("%s: got error %v (kind %d), want kind %s", call, err, got, kindName(kind))
	}
}

func wantNotFound(t *testing.T, call string, err error) {
	t.Helper()
	wantKind(t, call, err, webhook.KindNotFound)
}

func wantConflict(t *testing.T, call string, err error) {
	t.Helper()
	wantKind(t, call, err, webhook.KindConflict)
}

// wantStale fails the test unless err is webhook.ErrStale (a Conflict).
func wantStale(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, webhook.ErrStale) || !webhook.IsConflict(err) {
		t.Errorf("%s: got error %v, want webhook.ErrStale", call, err)
	}
}

// wantUIDConflict fails the test unless err is a Conflict other than
// webhook.ErrStale: a caller retries a stale update, not a taken uid.
func wantUIDConflict(t *testing.T, call string, err error) {
	t.Helper()
	wantConflict(t, call, err)
	if errors.Is(err, webhook.ErrStale) {
		t.Errorf("%s: got webhook.ErrStale, want the Conflict of a taken uid", call)
	}
}

func kindName(k webhook.Kind) string {
	switch k {
	case webhook.KindNotFound:
		return "NotFound"
	case webhook.KindConflict:
		return "Conflict"
	case webhook.KindInvalid:
		return "Invalid"
	}
	return "other"
}
