package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// poster answers with scripted status codes and records every request.
type poster struct {
	mu       sync.Mutex
	codes    []int // answers in order; the last one repeats
	requests []sender.Request
	during   func() // runs while the request is "in flight"
}

func (p *poster) Send(_ context.Context, req sender.Request) sender.Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, req)
	if p.during != nil {
		p.during()
	}
	code := p.codes[min(len(p.requests), len(p.codes))-1]
	res := sender.Result{StatusCode: code, Body: "ok", Duration: 12 * time.Millisecond}
	if code < 200 || code > 299 {
		res.Err = fmt.Errorf("status %d", code)
	}
	return res
}

// dispatcher records dispatched refs and counts its calls, or fails when
// err is set.
type dispatcher struct {
	mu    sync.Mutex
	refs  []webhook.Ref
	calls int
	err   error
}

func (d *dispatcher) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.err != nil {
		return nil, d.err
	}
	d.refs = append(d.refs, refs...)
	return refs, nil
}

type fixture struct {
	svc   *delivery.Service
	store *sqlite.Store
	clock *storetest.Clock
	post  *poster
	disp  *dispatcher
	app   *webhook.App
}

var schedule = webhook.Schedule{0, 5 * time.Second, 5 * time.Minute}

func newFixture(t *testing.T, codes ...int) *fixture {
	t.Helper()
	clock := storetest.NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if len(codes) == 0 {
		codes = []int{200}
	}
	f := &fixture{store: store, clock: clock, post: &poster{codes: codes}, disp: &dispatcher{}}
	f.svc = &delivery.Service{
		Store: store, Dispatcher: f.disp, Sender: f.post, Schedule: schedule, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	f.app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "acme", CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	if err := store.CreateApp(context.Background(), f.app); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) endpoint(t *testing.T, mod func(*webhook.Endpoint)) *webhook.Endpoint {
	t.Helper()
	key, _ := signing.GenerateSecret()
	ep := &webhook.Endpoint{
		ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://receiver.invalid/hook",
		Keys: []webhook.SigningKey{{Key: key}}, Headers: map[string]string{"X-Tenant": "acme"}, Version: 1,
		CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now(),
	}
	if mod != nil {
		mod(ep)
	}
	if err := f.store.CreateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func (f *fixture) publish(t *testing.T, eventType string, channels ...string) *webhook.Message {
	t.Helper()
	msg := &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: eventType,
		Payload: []byte(`{"type":"` + eventType + `","n":1}`), Channels: channels,
		Timestamp: f.clock.Now(), ExpiresAt: f.clock.Now().Add(90 * 24 * time.Hour),
	}
	if err := f.svc.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// newRun is a fixture whose receiver answers codes, with an endpoint and
// a message to it; it returns the message's run there.
func newRun(t *testing.T, codes ...int) (*fixture, webhook.Ref) {
	t.Helper()
	f := newFixture(t, codes...)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	return f, webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
}

func (f *fixture) delivery(t *testing.T, msgID, endpointID string) *webhook.Delivery {
	t.Helper()
	d, err := f.store.GetDelivery(context.Background(), f.app.ID, msgID, endpointID)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPublishFansOutToSubscribedEndpoints(t *testing.T) {
	f := newFixture(t)
	all := f.endpoint(t, nil)
	typed := f.endpoint(t, func(e *webhook.Endpoint) { e.FilterTypes = []string{"v1.end_user.created"} })
	otherType := f.endpoint(t, func(e *webhook.Endpoint) { e.FilterTypes = []string{"v1.conversation.ended"} })
	channel := f.endpoint(t, func(e *webhook.Endpoint) { e.Channels = []string{"eu"} })
	otherChannel := f.endpoint(t, func(e *webhook.Endpoint) { e.Channels = []string{"us"} })
	disabled := f.endpoint(t, func(e *webhook.Endpoint) { e.Disabled = true })

	msg := f.publish(t, "v1.end_user.created", "eu")

	want := map[string]bool{all.ID: true, typed.ID: true, channel.ID: true,
		otherType.ID: false, otherChannel.ID: false, disabled.ID: false}
	for id, subscribed := range want {
		d, err := f.store.GetDelivery(context.Background(), f.app.ID, msg.ID, id)
		if subscribed != (err == nil) {
			t.Errorf("endpoint %s: got delivery err %v, want subscribed=%v", id, err, subscribed)
		}
		if err == nil && (!d.Dispatched || d.Status != webhook.StatusPending || d.Run != 0) {
			t.Errorf("endpoint %s: got %+v, want a dispatched pending run 0", id, d)
		}
	}
	if len(f.disp.refs) != 3 {
		t.Errorf("got %d dispatches, want 3", len(f.disp.refs))
	}

	// A message without channels does not reach an endpoint that has them.
	plain := f.publish(t, "v1.end_user.created")
	if _, err := f.store.GetDelivery(context.Background(), f.app.ID, plain.ID, channel.ID); !webhook.IsNotFound(err) {
		t.Errorf("channel endpoint got a message without channels (err %v)", err)
	}
}

func TestPublishKeepsTheMessageWhenDispatchFails(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t, nil)
	f.disp.err = errors.New("StartExecution: throttled")
	msg := f.publish(t, "v1.end_user.created")
	if d := f.delivery(t, msg.ID, ep.ID); d.Dispatched {
		t.Fatal("delivery marked dispatched although Dispatch failed")
	}
	stuck, err := f.store.ListUndispatched(context.Background(), f.clock.Now().Add(time.Minute), 10)
	if err != nil || len(stuck) != 1 || stuck[0].MsgID != msg.ID {
		t.Fatalf("ListUndispatched: got %v, %v; want the one delivery", stuck, err)
	}
}

func TestAttemptSignsAndDelivers(t *testing.T) {
	f := newFixture(t, 204)
	ep := f.endpoint(t, func(e *webhook.Endpoint) { e.FailingSince = f.clock.Now().Add(-time.Hour) })
	msg := f.publish(t, "v1.end_user.created")

	res, err := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != delivery.Delivered || !res.Final || res.Attempt != 1 || res.StatusCode != 204 {
		t.Errorf("got %+v, want delivered on attempt 1 with 204", res)
	}
	req := f.post.requests[0]
	if req.URL != ep.URL || string(req.Body) != string(msg.Payload) || req.MsgID != msg.ID {
		t.Errorf("request: got %s %s for %s", req.URL, req.Body, req.MsgID)
	}
	if !req.Timestamp.Equal(f.clock.Now()) {
		t.Errorf("timestamp: got %v, want the attempt's time %v", req.Timestamp, f.clock.Now())
	}
	if got := req.Headers["X-Tenant"]; got != "acme" {
		t.Errorf("custom header: got %q", got)
	}
	if len(req.Keys) != 1 || string(req.Keys[0]) != string(ep.Keys[0].Key) {
		t.Errorf("keys: got %d, want the endpoint's one key", len(req.Keys))
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusSuccess || d.Attempts != 1 {
		t.Errorf("delivery: got %+v, want success after 1 attempt", d)
	}
	got, _ := f.store.GetEndpoint(context.Background(), f.app.ID, ep.ID)
	if !got.FailingSince.IsZero() {
		t.Errorf("FailingSince: got %v, want cleared by the success", got.FailingSince)
	}
	page, err := f.store.ListAttempts(context.Background(), webhook.AttemptFilter{AppID: f.app.ID, MsgID: msg.ID})
	if err != nil || len(page.Items) != 1 {
		t.Fatalf("attempts: got %v, %v", page.Items, err)
	}
	if a := page.Items[0]; a.Status != webhook.StatusSuccess || a.ResponseStatusCode != 204 || a.Trigger != webhook.TriggerScheduled {
		t.Errorf("attempt: got %+v", a)
	}
}

// TestAttemptFollowsTheSchedule fails every attempt and checks the outcome,
// the wait and the next due time of each, then the final failure.
func TestAttemptFollowsTheSchedule(t *testing.T) {
	f := newFixture(t, 500)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	firstFailure := f.clock.Now()

	var stamps []time.Time
	for n := 1; n <= schedule.MaxAttempts(); n++ {
		stamps = append(stamps, f.clock.Now())
		res, err := f.svc.Attempt(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		d := f.delivery(t, msg.ID, ep.ID)
		if wait, more := schedule.Next(n); more {
			if res.Outcome != delivery.Retry || res.Final || res.Wait != wait {
				t.Fatalf("attempt %d: got %+v, want retry after %s", n, res, wait)
			}
			if d.Status != webhook.StatusSending || !d.NextAttemptAt.Equal(f.clock.Now().Add(wait)) {
				t.Fatalf("attempt %d: delivery %v due %v, want sending due %v", n, d.Status, d.NextAttemptAt, f.clock.Now().Add(wait))
			}
			f.clock.Advance(wait)
			continue
		}
		if res.Outcome != delivery.Retry || !res.Final || d.Status != webhook.StatusFail {
			t.Fatalf("last attempt: got %+v and delivery %v, want a final retry outcome and fail", res, d.Status)
		}
	}
	if len(f.post.requests) != schedule.MaxAttempts() {
		t.Errorf("got %d requests, want %d", len(f.post.requests), schedule.MaxAttempts())
	}
	// Every attempt carries the same webhook-id and its own timestamp.
	for i, r := range f.post.requests {
		if r.MsgID != msg.ID || !r.Timestamp.Equal(stamps[i]) {
			t.Errorf("attempt %d: id %s at %v, want %s at %v", i+1, r.MsgID, r.Timestamp, msg.ID, stamps[i])
		}
	}
	got, _ := f.store.GetEndpoint(context.Background(), f.app.ID, ep.ID)
	if !got.FailingSince.Equal(firstFailure) {
		t.Errorf("FailingSince: got %v, want the first failure %v", got.FailingSince, firstFailure)
	}
	// Attempting a finished run does nothing.
	res, err := f.svc.Attempt(context.Background(), ref)
	if err != nil || res.Outcome != delivery.Stop || len(f.post.requests) != schedule.MaxAttempts() {
		t.Errorf("attempt after the end: got %+v, %v with %d requests", res, err, len(f.post.requests))
	}
}

func TestAttemptRetriesThenDelivers(t *testing.T) {
	f := newFixture(t, 500, 503, 200)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	var outcomes []delivery.Outcome
	for range 3 {
		res, err := f.svc.Attempt(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, res.Outcome)
		f.clock.Advance(res.Wait)
	}
	want := []delivery.Outcome{delivery.Retry, delivery.Retry, delivery.Delivered}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Fatalf("outcomes: got %v, want %v", outcomes, want)
		}
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusSuccess || d.Attempts != 3 {
		t.Errorf("delivery: got %+v, want success after 3 attempts", d)
	}
}

func TestAttemptStops(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		before func(f *fixture, ep *webhook.Endpoint)
		posts  int
		status webhook.Status
	}{
		{"endpoint disabled", 200, func(f *fixture, ep *webhook.Endpoint) {
			ep.Disabled = true
			if err := f.store.UpdateEndpoint(context.Background(), ep, ep.UpdatedAt); err != nil {
				panic(err)
			}
		}, 0, webhook.StatusCanceled},
		{"410 gone", 410, nil, 1, webhook.StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.code)
			ep := f.endpoint(t, nil)
			msg := f.publish(t, "v1.end_user.created")
			if tt.before != nil {
				tt.before(f, ep)
			}
			res, err := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID})
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != delivery.Stop || !res.Final {
				t.Errorf("got %+v, want stop", res)
			}
			if len(f.post.requests) != tt.posts {
				t.Errorf("got %d requests, want %d", len(f.post.requests), tt.posts)
			}
			if d := f.delivery(t, msg.ID, ep.ID); d.Status != tt.status {
				t.Errorf("delivery status: got %v, want %v", d.Status, tt.status)
			}
		})
	}
}

func TestResendStartsAManualRun(t *testing.T) {
	f := newFixture(t, 200)
	ep := f.endpoint(t, func(e *webhook.Endpoint) { e.FilterTypes = []string{"v1.conversation.ended"} })
	msg := f.publish(t, "v1.end_user.created") // not subscribed: resend skips filters
	if err := f.svc.Resend(context.Background(), msg, ep); err != nil {
		t.Fatal(err)
	}
	d := f.delivery(t, msg.ID, ep.ID)
	if d.Run != 1 || d.Trigger != webhook.TriggerManual || d.Status != webhook.StatusPending || !d.Dispatched {
		t.Fatalf("delivery after resend: got %+v", d)
	}
	if got := f.disp.refs[len(f.disp.refs)-1]; got != d.Ref() {
		t.Errorf("dispatched %+v, want %+v", got, d.Ref())
	}
	// The old run is stale now.
	if res, _ := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID, Run: 0}); res.Outcome != delivery.Stop {
		t.Errorf("stale run: got %v, want stop", res.Outcome)
	}
	if _, err := f.svc.Attempt(context.Background(), d.Ref()); err != nil {
		t.Fatal(err)
	}
	page, _ := f.store.ListAttempts(context.Background(), webhook.AttemptFilter{AppID: f.app.ID, MsgID: msg.ID})
	if len(page.Items) != 1 || page.Items[0].Trigger != webhook.TriggerManual {
		t.Errorf("attempts: got %+v, want one manual attempt", page.Items)
	}

	ep.Disabled = true
	if err := f.svc.Resend(context.Background(), msg, ep); webhook.ErrorKind(err) != webhook.KindBadRequest {
		t.Errorf("resend to a disabled endpoint: got %v, want a bad request", err)
	}
}

func TestRecoverResendsMessagesThatFailedInTheWindow(t *testing.T) {
	f := newFixture(t, 500)
	f.svc.Schedule = webhook.Schedule{} // one attempt, then fail
	ep := f.endpoint(t, nil)
	attempt := func(m *webhook.Message) {
		t.Helper()
		if _, err := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: m.ID, EndpointID: ep.ID}); err != nil {
			t.Fatal(err)
		}
	}
	early := f.publish(t, "v1.end_user.created")
	attempt(early) // failed before the window
	late := f.publish(t, "v1.end_user.created")
	f.clock.Advance(2 * time.Hour)
	since := f.clock.Now()
	attempt(late) // sent before the window, failed inside it
	failed := f.publish(t, "v1.end_user.created")
	attempt(failed)
	f.post.codes = []int{200}
	delivered := f.publish(t, "v1.end_user.updated")
	attempt(delivered)
	f.svc.Schedule = webhook.Schedule{time.Hour}
	f.post.codes = []int{500}
	retrying := f.publish(t, "v1.end_user.updated")
	attempt(retrying) // failed, but its retry is still to come
	f.clock.Advance(time.Second)

	task, err := f.svc.Recover(context.Background(), ep, since, time.Time{}) // until now
	if err != nil {
		t.Fatal(err)
	}
	if task.ID == "" || task.Status != "running" {
		t.Errorf("task: got %+v", task)
	}
	for _, m := range []*webhook.Message{late, failed} {
		if d := f.delivery(t, m.ID, ep.ID); d.Run != 1 || d.Status != webhook.StatusPending || d.Trigger != webhook.TriggerManual {
			t.Errorf("message that failed in the window: got %+v, want a new manual run", d)
		}
	}
	for name, m := range map[string]*webhook.Message{"failed before the window": early, "delivered": delivered, "still retrying": retrying} {
		if d := f.delivery(t, m.ID, ep.ID); d.Run != 0 {
			t.Errorf("%s message: got run %d, want it untouched", name, d.Run)
		}
	}
}

// TestAttemptStopsWhenTheEndpointIsDeletedMidFlight: the delivery row is
// gone when the result comes back; that is the end of it, not an error to
// retry.
func TestAttemptStopsWhenTheEndpointIsDeletedMidFlight(t *testing.T) {
	f := newFixture(t, 200)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	f.post.during = func() {
		if err := f.store.DeleteEndpoint(context.Background(), f.app.ID, ep.ID); err != nil {
			t.Error(err)
		}
	}
	res, err := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID})
	if err != nil || res.Outcome != delivery.Stop {
		t.Fatalf("got %+v, %v; want stop", res, err)
	}
}

// holder is a dispatcher that holds new deliveries while it has room.
type holder struct {
	dispatcher
	room  int
	lease time.Duration
	takes [][]webhook.Loaded // what each take got; nil: the room given back
}

func (h *holder) Hold(n int, now time.Time) (time.Time, func([]webhook.Loaded), bool) {
	if n > h.room {
		return time.Time{}, nil, false
	}
	h.room -= n
	return now.Add(h.lease), func(held []webhook.Loaded) {
		h.room += n - len(held)
		h.takes = append(h.takes, held)
	}, true
}

func TestPublishHandsNewDeliveriesToAHolder(t *testing.T) {
	f := newFixture(t)
	h := &holder{room: 3, lease: 45 * time.Second}
	f.svc.Dispatcher = h
	a, b := f.endpoint(t, nil), f.endpoint(t, nil)

	// With room: stored claimed for the lease, taken, marked dispatched,
	// and not dispatched through the store.
	msg := f.publish(t, "v1.end_user.created")
	if len(h.takes) != 1 || len(h.takes[0]) != 2 || len(h.refs) != 0 {
		t.Fatalf("got takes %v and dispatches %v, want one take of 2 runs and no dispatch", h.takes, h.refs)
	}
	for _, ep := range []*webhook.Endpoint{a, b} {
		d := f.delivery(t, msg.ID, ep.ID)
		if want := f.clock.Now().Add(h.lease); !d.NextAttemptAt.Equal(want) || !d.Dispatched || d.Status != webhook.StatusPending {
			t.Errorf("held delivery to %s: got next %v dispatched %v status %s, want next %v, dispatched, pending",
				ep.ID, d.NextAttemptAt, d.Dispatched, d.Status, want)
		}
	}
	if h.room != 1 {
		t.Errorf("room left %d, want 1", h.room)
	}

	// Without room: stored due now and dispatched as usual.
	late := f.publish(t, "v1.end_user.created")
	if len(h.takes) != 1 || len(h.refs) != 2 {
		t.Fatalf("got %d takes and %d dispatches, want the 2 runs dispatched", len(h.takes), len(h.refs))
	}
	if d := f.delivery(t, late.ID, a.ID); !d.NextAttemptAt.Equal(late.Timestamp) || !d.Dispatched {
		t.Errorf("unheld delivery: got next %v dispatched %v, want due at %v and dispatched", d.NextAttemptAt, d.Dispatched, late.Timestamp)
	}

	// A message that is not stored gives its room back.
	h.room = 3
	if err := f.svc.Publish(context.Background(), msg); err == nil {
		t.Fatal("publishing a stored message again: got nil, want an error")
	}
	if len(h.takes) != 2 || h.takes[1] != nil || h.room != 3 {
		t.Errorf("after a failed store: takes %v, room %d; want the room given back (take(nil)) and 3", h.takes, h.room)
	}
}

// reads is the SQLite store counting the reads an attempt makes.
type reads struct {
	*sqlite.Store
	n int
}

func (r *reads) LoadRun(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	r.n++
	return r.Store.LoadRun(ctx, ref)
}

// TestHeldFirstAttemptsUseWhatPublishRead: Publish hands a held delivery
// over with its endpoint and message, and its first attempt sends with
// them without reading the store, while they are fresh (delivery.Fresh).
// Older, or handed over with another run, they are read again.
func TestHeldFirstAttemptsUseWhatPublishRead(t *testing.T) {
	f := newFixture(t)
	h := &holder{room: 8, lease: 45 * time.Second}
	f.svc.Dispatcher = h
	counted := &reads{Store: f.store}
	f.svc.Store = counted
	ep := f.endpoint(t, nil)
	attempt := func(held webhook.Loaded, ref webhook.Ref) {
		t.Helper()
		if _, err := f.svc.AttemptNext(context.Background(), ref, &held); err != nil {
			t.Fatal(err)
		}
	}

	msg := f.publish(t, "v1.end_user.created")
	if len(h.takes) != 1 || len(h.takes[0]) != 1 {
		t.Fatalf("takes %v, want one of one delivery", h.takes)
	}
	held := h.takes[0][0]
	if held.Endpoint == nil || held.Endpoint.ID != ep.ID || held.Message != msg || held.Delivery.MsgID != msg.ID || !held.At.Equal(f.clock.Now()) {
		t.Fatalf("handed over %+v, want the delivery to %s with its endpoint and message, read now", held, ep.ID)
	}
	f.clock.Advance(delivery.Fresh)
	attempt(held, held.Delivery.Ref())
	if counted.n != 0 || len(f.post.requests) != 1 || f.post.requests[0].URL != ep.URL || string(f.post.requests[0].Body) != string(msg.Payload) {
		t.Fatalf("fresh: %d reads and requests %+v, want none and one POST of the payload to %s", counted.n, f.post.requests, ep.URL)
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusSuccess || d.Attempts != 1 {
		t.Errorf("delivery after the held attempt: %s after %d attempts, want success after 1", d.Status, d.Attempts)
	}

	// Handed over with another run: read again, and that run is stale.
	next := f.publish(t, "v1.end_user.created")
	stale := h.takes[1][0]
	other := stale.Delivery.Ref()
	other.Run++
	attempt(stale, other)
	if counted.n != 1 || len(f.post.requests) != 1 {
		t.Fatalf("another run: %d reads and %d requests, want 1 read and no new request", counted.n, len(f.post.requests))
	}

	// Older than Fresh: read again, and the endpoint disabled since is seen.
	disabled := *ep
	disabled.Disabled = true
	if err := f.store.UpdateEndpoint(context.Background(), &disabled, disabled.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(delivery.Fresh + time.Millisecond)
	attempt(stale, stale.Delivery.Ref())
	if counted.n != 2 || len(f.post.requests) != 1 {
		t.Fatalf("old: %d reads and %d requests, want 2 reads and no new request", counted.n, len(f.post.requests))
	}
	if d := f.delivery(t, next.ID, ep.ID); d.Status != webhook.StatusCanceled {
		t.Errorf("delivery to the endpoint disabled since: %s, want canceled", d.Status)
	}
}

// gets is a store whose LoadRun reads with GetDelivery, GetEndpoint and
// GetMessage, as far as an attempt looks, which webhook.Store.LoadRun
// allows (the DynamoDB store stops early too): a stale or final run comes
// without its endpoint, a disabled endpoint without the message. gone
// ("endpoint" or "message") makes one of them read as missing while the
// delivery is still there, which DynamoDB (no cascades, no snapshot
// across reads) can show an attempt.
type gets struct {
	webhook.Store
	gone string
}

func (g gets) LoadRun(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	d, err := g.GetDelivery(ctx, ref.AppID, ref.MsgID, ref.EndpointID)
	if err != nil || d.Run != ref.Run || d.Status.Final() {
		return d, nil, nil, err
	}
	ep, err := g.GetEndpoint(ctx, ref.AppID, ref.EndpointID)
	if err != nil || ep.Disabled {
		return d, ep, nil, err
	}
	msg, err := g.GetMessage(ctx, ref.AppID, ref.MsgID)
	if err != nil {
		return d, ep, nil, err
	}
	return d, ep, msg, nil
}

func (g gets) GetEndpoint(ctx context.Context, appID, idOrUID string) (*webhook.Endpoint, error) {
	if g.gone == "endpoint" {
		return nil, webhook.NotFound("endpoint %s not found", idOrUID)
	}
	return g.Store.GetEndpoint(ctx, appID, idOrUID)
}

func (g gets) GetMessage(ctx context.Context, appID, idOrEventID string) (*webhook.Message, error) {
	if g.gone == "message" {
		return nil, webhook.NotFound("message %s not found", idOrEventID)
	}
	return g.Store.GetMessage(ctx, appID, idOrEventID)
}

// loader is the SQLite store with its LoadRun, gone making the endpoint or
// the message read as missing as in gets.
type loader struct {
	*sqlite.Store
	gone string
}

func (l loader) LoadRun(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	d, ep, msg, err := l.Store.LoadRun(ctx, ref)
	switch {
	case err != nil:
		return d, ep, msg, err
	case l.gone == "endpoint":
		return d, nil, nil, webhook.NotFound("endpoint %s not found", ref.EndpointID)
	case l.gone == "message":
		return d, ep, nil, webhook.NotFound("message %s not found", ref.MsgID)
	}
	return d, ep, msg, nil
}

// TestAttemptReadsOnceOrThreeTimes runs Attempt over a LoadRun that reads
// all at once (SQLite's) and one that reads one by one and stops early
// (gets): each case must end the same way.
func TestAttemptReadsOnceOrThreeTimes(t *testing.T) {
	stores := []struct {
		name string
		wrap func(s *sqlite.Store, gone string) webhook.Store
	}{
		{"one read", func(s *sqlite.Store, gone string) webhook.Store { return loader{s, gone} }},
		{"three reads", func(s *sqlite.Store, gone string) webhook.Store { return gets{s, gone} }},
	}
	tests := []struct {
		name    string
		gone    string
		before  func(t *testing.T, f *fixture, ref *webhook.Ref)
		outcome delivery.Outcome
		posts   int
		status  webhook.Status // of the delivery afterwards, unless deleted
		deleted bool           // the delivery reads as missing afterwards
	}{
		{name: "delivered", outcome: delivery.Delivered, posts: 1, status: webhook.StatusSuccess},
		{name: "stale run", before: func(t *testing.T, f *fixture, ref *webhook.Ref) {
			msg, err := f.store.GetMessage(context.Background(), ref.AppID, ref.MsgID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.StartRun(context.Background(), msg, ref.EndpointID, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
		}, outcome: delivery.Stop, status: webhook.StatusPending},
		{name: "finished run", before: func(t *testing.T, f *fixture, ref *webhook.Ref) {
			if _, err := f.svc.Attempt(context.Background(), *ref); err != nil {
				t.Fatal(err)
			}
		}, outcome: delivery.Stop, posts: 1, status: webhook.StatusSuccess},
		{name: "other app", before: func(t *testing.T, f *fixture, ref *webhook.Ref) {
			ref.AppID = webhook.NewID(webhook.PrefixApp)
		}, outcome: delivery.Stop, status: webhook.StatusPending},
		{name: "endpoint disabled", before: func(t *testing.T, f *fixture, ref *webhook.Ref) {
			ep, err := f.store.GetEndpoint(context.Background(), ref.AppID, ref.EndpointID)
			if err != nil {
				t.Fatal(err)
			}
			ep.Disabled = true
			if err := f.store.UpdateEndpoint(context.Background(), ep, ep.UpdatedAt); err != nil {
				t.Fatal(err)
			}
		}, outcome: delivery.Stop, status: webhook.StatusCanceled},
		{name: "endpoint deleted with its deliveries", before: func(t *testing.T, f *fixture, ref *webhook.Ref) {
			if err := f.store.DeleteEndpoint(context.Background(), ref.AppID, ref.EndpointID); err != nil {
				t.Fatal(err)
			}
		}, outcome: delivery.Stop, deleted: true},
		{name: "message expired with its deliveries", before: func(t *testing.T, f *fixture, ref *webhook.Ref) {
			f.clock.Advance(91 * 24 * time.Hour)
		}, outcome: delivery.Stop, deleted: true},
		{name: "endpoint missing, delivery left", gone: "endpoint", outcome: delivery.Stop, status: webhook.StatusCanceled},
		{name: "message missing, delivery left", gone: "message", outcome: delivery.Stop, status: webhook.StatusCanceled},
	}
	for _, st := range stores {
		for _, tt := range tests {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t, 200)
				f.svc.Store = st.wrap(f.store, "")
				ep := f.endpoint(t, nil)
				msg := f.publish(t, "v1.end_user.created")
				ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
				if tt.before != nil {
					tt.before(t, f, &ref)
				}
				f.svc.Store = st.wrap(f.store, tt.gone)

				res, err := f.svc.Attempt(context.Background(), ref)
				if err != nil {
					t.Fatal(err)
				}
				if res.Outcome != tt.outcome || !res.Final {
					t.Errorf("got %+v, want a final %s", res, tt.outcome)
				}
				if len(f.post.requests) != tt.posts {
					t.Errorf("got %d requests, want %d", len(f.post.requests), tt.posts)
				}
				f.wantDelivery(t, msg.ID, ep.ID, tt.deleted, tt.status)
			})
		}
	}
}

// TestReconcileSaysWhereARunStands: after an attempt that ended without a
// result, Reconcile tells the state machine to wait for a recorded
// attempt's retry, to make an unrecorded attempt again, to hand the run
// back once it has been due and unrecorded for ReconcileFor, or to stop.
func TestReconcileSaysWhereARunStands(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 500)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	reconcile := func() delivery.Result {
		t.Helper()
		res, err := f.svc.Reconcile(ctx, ref, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Nothing recorded yet: the first attempt is due; make it again.
	if got := reconcile(); got.Outcome != delivery.Again {
		t.Errorf("before any attempt: got %+v, want again", got)
	}
	// Two failed attempts (the second waits 5 s): wait for attempt 3.
	f.svc.Attempt(ctx, ref)
	f.svc.Attempt(ctx, ref)
	f.clock.Advance(time.Second)
	if got := reconcile(); got.Outcome != delivery.Retry || got.Attempt != 2 || got.Final || got.WaitSec != 4 ||
		got.ResumeAt == nil || !got.ResumeAt.Equal(f.clock.Now().Add(4*time.Second)) {
		t.Errorf("attempt 2 recorded, its retry in 4 s: got %+v, want retry after attempt 2, resuming in 4 s", got)
	}
	// The retry is due and was not recorded: again, until ReconcileFor.
	f.clock.Advance(5 * time.Second)
	if got := reconcile(); got.Outcome != delivery.Again {
		t.Errorf("retry due, unrecorded: got %+v, want again", got)
	}
	f.clock.Advance(delivery.DefaultReconcileFor)
	if got := reconcile(); got.Outcome != delivery.HandOff {
		t.Errorf("due and unrecorded for ReconcileFor: got %+v, want handoff", got)
	}
	// An execution that started late (a backlog) is not handed off at
	// its first failure: ReconcileFor counts from its start.
	if got, err := f.svc.Reconcile(ctx, ref, f.clock.Now().Add(-time.Minute)); err != nil || got.Outcome != delivery.Again {
		t.Errorf("due for ReconcileFor, the execution a minute old: %+v, %v; want again", got, err)
	}
	// Handed back: the run moves on, so the old one stops.
	next, err := f.svc.HandBack(ctx, ref)
	if err != nil || next.Run != 1 {
		t.Fatalf("HandBack: %+v, %v; want run 1", next, err)
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Run != 1 || d.Attempts != 2 || d.Dispatched || d.Status != webhook.StatusSending {
		t.Errorf("after HandBack: %+v, want run 1, its 2 attempts kept, undispatched", d)
	}
	if got := reconcile(); got.Outcome != delivery.Stop || !got.Final {
		t.Errorf("reconcile of the superseded run: got %+v, want stop", got)
	}
	if again, err := f.svc.HandBack(ctx, ref); err != nil || again != (webhook.Ref{}) {
		t.Errorf("HandBack of the superseded run: %+v, %v; want nothing, no error", again, err)
	}
	// The new run goes on from attempt 3; the schedule's last attempt
	// ends it, and Reconcile says so.
	max := schedule.MaxAttempts()
	for n := 3; n <= max; n++ {
		f.clock.Set(f.delivery(t, msg.ID, ep.ID).NextAttemptAt)
		if got, err := f.svc.Attempt(ctx, next); err != nil || got.Attempt != n {
			t.Fatalf("attempt of run 1: %+v, %v; want attempt %d", got, err, n)
		}
	}
	if got, err := f.svc.Reconcile(ctx, next, time.Time{}); err != nil || got.Outcome != delivery.Stop {
		t.Errorf("reconcile after the last attempt: %+v, %v; want stop (the run failed)", got, err)
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Attempts != max || d.Status != webhook.StatusFail {
		t.Errorf("after the last attempt: %+v, want %d attempts, fail", d, max)
	}
	if n := len(f.post.requests); n != max {
		t.Errorf("%d POSTs, want %d: one per attempt", n, max)
	}
}

// TestAttemptOfASpentRunClosesIt: a re-driven run whose schedule is spent
// (its last attempt was recorded, the run not closed) fails without a POST.
func TestAttemptOfASpentRunClosesIt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 500)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	for range schedule.MaxAttempts() - 1 {
		f.clock.Set(f.delivery(t, msg.ID, ep.ID).NextAttemptAt)
		f.svc.Attempt(ctx, ref)
	}
	// The last attempt was recorded as a retry (by a deliver function
	// whose schedule was longer), and the run handed back.
	d := f.delivery(t, msg.ID, ep.ID)
	res := webhook.AttemptResult{
		Attempt: webhook.Attempt{ID: webhook.NewID(webhook.PrefixAttempt), AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID,
			EventType: msg.EventType, Status: webhook.StatusFail, Timestamp: f.clock.Now(), ExpiresAt: msg.ExpiresAt},
		Run: d.Run, Attempts: d.Attempts + 1, Status: webhook.StatusSending, NextAttemptAt: f.clock.Now(),
	}
	if _, err := f.store.RecordAttempt(ctx, res); err != nil {
		t.Fatal(err)
	}
	next, err := f.svc.HandBack(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	posts := len(f.post.requests)
	got, err := f.svc.Attempt(ctx, next)
	if err != nil || got.Outcome != delivery.Retry || !got.Final {
		t.Errorf("attempt of a spent run: %+v, %v; want a final retry (the run failed)", got, err)
	}
	if len(f.post.requests) != posts {
		t.Error("a spent run was sent again")
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusFail {
		t.Errorf("spent run: status %v, want fail", d.Status)
	}
}

// TestAttemptQueued: the queue's hand-over makes the first attempt and
// the schedule's immediate retry in one call, starts the retries only
// when one is due later, and, handed the run again after its attempts
// were recorded, sends nothing and starts the retries again (they are
// idempotent).
func TestAttemptQueued(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		codes   []int
		want    delivery.Outcome
		posts   int
		retries int
	}{
		{"delivered at once", []int{200}, delivery.Delivered, 1, 0},
		{"delivered on the immediate retry", []int{500, 200}, delivery.Delivered, 2, 0},
		{"a retry due later", []int{500}, delivery.Retry, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.codes...)
			var started []webhook.Ref
			f.svc.Retries = func(_ context.Context, ref webhook.Ref) error { started = append(started, ref); return nil }
			ep := f.endpoint(t, nil)
			msg := f.publish(t, "v1.end_user.created")
			ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
			res, err := f.svc.AttemptQueued(ctx, ref)
			if err != nil || res.Outcome != tt.want {
				t.Fatalf("got %+v, %v; want %s", res, err, tt.want)
			}
			if len(f.post.requests) != tt.posts || len(started) != tt.retries {
				t.Errorf("%d POSTs and %d starts of the retries, want %d and %d", len(f.post.requests), len(started), tt.posts, tt.retries)
			}
			// Handed over again (a redelivery): nothing is sent again.
			res, err = f.svc.AttemptQueued(ctx, ref)
			if err != nil || len(f.post.requests) != tt.posts {
				t.Errorf("redelivered: %+v, %v with %d POSTs; want no new POST", res, err, len(f.post.requests))
			}
			if tt.retries > 0 && (len(started) != 2 || res.Outcome != delivery.Retry) {
				t.Errorf("redelivered before its retry: %+v, %d starts; want the retries started again", res, len(started))
			}
		})
	}

	t.Run("the retries cannot start", func(t *testing.T) {
		f := newFixture(t, 500)
		f.svc.Retries = func(context.Context, webhook.Ref) error { return errors.New("ThrottlingException") }
		ep := f.endpoint(t, nil)
		msg := f.publish(t, "v1.end_user.created")
		ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
		if _, err := f.svc.AttemptQueued(ctx, ref); err == nil {
			t.Error("got no error: the queue would drop a run whose retries never started")
		}
		f.svc.Retries = nil
		if _, err := f.svc.AttemptQueued(ctx, ref); err == nil || len(f.post.requests) != 2 {
			t.Errorf("redelivered without Retries: %v after %d POSTs; want an error and no new POST", err, len(f.post.requests))
		}
	})
}

// TestAnAttemptAskedForEarlyWaits: an attempt asked for before its retry
// is due (an execution entering a run whose first attempts the queue
// made) sends nothing and says when to resume.
func TestAnAttemptAskedForEarlyWaits(t *testing.T) {
	ctx := context.Background()
	f, ref := newRun(t, 500)
	f.svc.Attempt(ctx, ref)
	f.svc.Attempt(ctx, ref) // the immediate retry: the next waits 5 s
	res, err := f.svc.Attempt(ctx, ref)
	want := f.clock.Now().Add(5 * time.Second)
	if err != nil || res.Outcome != delivery.Retry || res.Attempt != 2 || res.ResumeAt == nil || !res.ResumeAt.Equal(want) {
		t.Errorf("asked for attempt 3 at once: %+v, %v; want retry after attempt 2, resuming at %v", res, err, want)
	}
	if len(f.post.requests) != 2 {
		t.Errorf("%d POSTs, want 2", len(f.post.requests))
	}
	f.clock.Advance(5 * time.Second)
	if res, _ := f.svc.Attempt(ctx, ref); res.Attempt != 3 || len(f.post.requests) != 3 {
		t.Errorf("at its time: %+v after %d POSTs, want attempt 3", res, len(f.post.requests))
	}
}

// early is a delivery.Early that takes the first n runs before the
// message is stored, and notes whether the message existed then.
type early struct {
	dispatcher
	store  *sqlite.Store
	n      int
	stored bool // the message existed when First ran
	later  []webhook.Ref
}

func (e *early) First(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	_, err := e.store.GetMessage(ctx, refs[0].AppID, refs[0].MsgID)
	e.stored = err == nil
	taken := refs[:min(e.n, len(refs))]
	e.refs = append(e.refs, taken...)
	return taken, nil
}

func (e *early) Then(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	e.later = append(e.later, refs...)
	return refs, nil
}

// TestPublishDispatchesEarly: with an Early dispatcher, a message's runs
// are handed over before it is stored; those taken are stored
// dispatched, the rest go to Then after the message is stored, and are
// marked dispatched once taken.
func TestPublishDispatchesEarly(t *testing.T) {
	f := newFixture(t)
	e := &early{store: f.store, n: 2}
	f.svc.Dispatcher = e
	var eps []*webhook.Endpoint
	for range 3 {
		eps = append(eps, f.endpoint(t, nil))
	}
	msg := f.publish(t, "v1.end_user.created")
	if e.stored || len(e.refs) != 2 || len(e.later) != 1 {
		t.Fatalf("first %v (message stored then: %v), then %v; want 2 runs before the message was stored, 1 after", e.refs, e.stored, e.later)
	}
	for _, ep := range eps {
		if d := f.delivery(t, msg.ID, ep.ID); !d.Dispatched || d.Run != 0 || d.Status != webhook.StatusPending {
			t.Errorf("delivery to %s: %+v; want run 0, pending, dispatched", ep.ID, d)
		}
	}
	if stuck, _ := f.store.ListUndispatched(context.Background(), f.clock.Now().Add(time.Hour), 10); len(stuck) != 0 {
		t.Errorf("undispatched after Publish: %v", stuck)
	}
}

// TestAnAttemptAwaitsItsMessage (AWS, delivery.Early): a run attempted
// before its message is stored waits a moment for it; one whose message
// does not come fails with ErrNotCommitted, which its caller retries,
// without a POST, until the message id is older than AwaitCommit: then
// the run stops.
func TestAnAttemptAwaitsItsMessage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.clock.Set(time.Now()) // ids carry the wall clock's second
	f.svc.AwaitCommit = time.Minute
	ep := f.endpoint(t, nil)
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "v1.end_user.created",
		Payload: []byte(`{}`), Timestamp: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Hour)}
	ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	go func() {
		time.Sleep(60 * time.Millisecond) // the api stores the message after dispatching its runs
		f.store.CreateMessage(ctx, msg, []webhook.Delivery{{EndpointID: ep.ID, Dispatched: true}})
	}()
	if res, err := f.svc.Attempt(ctx, ref); err != nil || res.Outcome != delivery.Delivered {
		t.Fatalf("attempt before its message was stored: %+v, %v; want it to wait and deliver", res, err)
	}

	never := webhook.Ref{AppID: f.app.ID, MsgID: webhook.NewID(webhook.PrefixMessage), EndpointID: ep.ID}
	for name, attempt := range map[string]func() (delivery.Result, error){
		"Attempt":       func() (delivery.Result, error) { return f.svc.Attempt(ctx, never) },
		"AttemptQueued": func() (delivery.Result, error) { return f.svc.AttemptQueued(ctx, never) },
	} {
		if _, err := attempt(); !errors.Is(err, delivery.ErrNotCommitted) {
			t.Errorf("%s of a run whose message never comes: %v, want ErrNotCommitted", name, err)
		}
	}
	if res, err := f.svc.Reconcile(ctx, never, f.clock.Now()); err != nil || res.Outcome != delivery.Again {
		t.Errorf("Reconcile of it: %+v, %v; want again", res, err)
	}
	f.clock.Advance(2 * time.Minute)
	if res, err := f.svc.Attempt(ctx, never); err != nil || res.Outcome != delivery.Stop || !res.Final {
		t.Errorf("after AwaitCommit: %+v, %v; want stop", res, err)
	}
	if res, err := f.svc.Reconcile(ctx, never, f.clock.Now()); err != nil || res.Outcome != delivery.Stop {
		t.Errorf("Reconcile after AwaitCommit: %+v, %v; want stop", res, err)
	}
	if len(f.post.requests) != 1 {
		t.Errorf("%d POSTs, want 1 (the run whose message came)", len(f.post.requests))
	}
}

// wantDelivery checks the fixture app's delivery of msgID to epID: gone
// if deleted, else in status.
func (f *fixture) wantDelivery(t *testing.T, msgID, epID string, deleted bool, status webhook.Status) {
	t.Helper()
	d, err := f.store.GetDelivery(context.Background(), f.app.ID, msgID, epID)
	switch {
	case deleted:
		if !webhook.IsNotFound(err) {
			t.Errorf("delivery: got %+v, %v; want it gone", d, err)
		}
	case err != nil:
		t.Fatal(err)
	case d.Status != status:
		t.Errorf("delivery status: got %v, want %v", d.Status, status)
	}
}
