package sweeper_test

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
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/sweeper"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

const week = 7 * 24 * time.Hour

// poster answers every request with code.
type poster struct{ code int }

func (p *poster) Send(context.Context, sender.Request) sender.Result {
	r := sender.Result{StatusCode: p.code}
	if p.code >= 300 {
		r.Err = fmt.Errorf("status %d", p.code)
	}
	return r
}

// dispatcher fails while err is set and counts what it dispatched.
type dispatcher struct {
	err  error
	refs []webhook.Ref
}

func (d *dispatcher) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	if d.err != nil {
		return nil, d.err
	}
	d.refs = append(d.refs, refs...)
	return refs, nil
}

type fixture struct {
	clock *storetest.Clock
	store *sqlite.Store
	post  *poster
	disp  *dispatcher
	svc   *delivery.Service
	sw    *sweeper.Sweeper
	app   *webhook.App
}

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clock: storetest.NewClock(t0), post: &poster{code: 500}, disp: &dispatcher{}}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), f.clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f.store = store
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.svc = &delivery.Service{Store: store, Dispatcher: f.disp, Sender: f.post,
		Schedule: webhook.DefaultSchedule, Clock: f.clock, Logger: log}
	f.sw = &sweeper.Sweeper{Store: store, Dispatch: f.svc.Dispatch, Clock: f.clock, Logger: log,
		DisableAfter: week, RedriveAfter: 2 * time.Minute, Batch: 100}
	f.app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "acme", CreatedAt: t0, UpdatedAt: t0}
	if err := store.CreateApp(context.Background(), f.app); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) endpoint(t *testing.T) *webhook.Endpoint {
	t.Helper()
	now := f.clock.Now()
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://r.invalid/",
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := f.store.CreateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// attempt publishes a message and makes its first attempt now, answered
// with code; it returns the message.
func (f *fixture) attempt(t *testing.T, ep *webhook.Endpoint, code int) *webhook.Message {
	t.Helper()
	now := f.clock.Now()
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "v1.end_user.created",
		Payload: []byte(`{"a":1}`), Timestamp: now, ExpiresAt: now.Add(90 * 24 * time.Hour)}
	if err := f.svc.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	f.post.code = code
	if _, err := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}); err != nil {
		t.Fatal(err)
	}
	return msg
}

func (f *fixture) get(t *testing.T, ep *webhook.Endpoint) *webhook.Endpoint {
	t.Helper()
	got, err := f.store.GetEndpoint(context.Background(), f.app.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (f *fixture) sweep(t *testing.T) sweeper.Report {
	t.Helper()
	r, err := f.sw.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDisablesAfterAWeekOfFailure(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	msg := f.attempt(t, ep, 500) // failing since t0; the delivery waits for its retry

	f.clock.Set(t0.Add(week - time.Minute))
	if r := f.sweep(t); r.Disabled != 0 || f.get(t, ep).Disabled {
		t.Fatalf("7 days − 1 min: got %+v, endpoint disabled=%v; want it enabled", r, f.get(t, ep).Disabled)
	}
	f.clock.Set(t0.Add(week + time.Minute))
	if r := f.sweep(t); r.Disabled != 1 {
		t.Fatalf("7 days + 1 min: got %+v, want one disabled", r)
	}
	got := f.get(t, ep)
	if !got.Disabled || got.DisabledWhy != webhook.DisabledFailing || !got.DisabledAt.Equal(f.clock.Now()) {
		t.Errorf("endpoint: disabled=%v why=%q at=%v; want disabled for failing now", got.Disabled, got.DisabledWhy, got.DisabledAt)
	}
	d, err := f.store.GetDelivery(context.Background(), f.app.ID, msg.ID, ep.ID)
	if err != nil || d.Status != webhook.StatusCanceled {
		t.Errorf("pending delivery: got %+v, %v; want canceled", d, err)
	}
	// Its retry, when it comes, stops without a request.
	res, err := f.svc.Attempt(context.Background(), d.Ref())
	if err != nil || res.Outcome != delivery.Stop {
		t.Errorf("retry after disable: got %+v, %v; want stop", res, err)
	}
	// A disabled endpoint gets no new deliveries.
	later := f.attempt(t, ep, 200)
	if _, err := f.store.GetDelivery(context.Background(), f.app.ID, later.ID, ep.ID); !webhook.IsNotFound(err) {
		t.Errorf("new message reached a disabled endpoint (err %v)", err)
	}
}

func TestASuccessResetsTheClock(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	f.attempt(t, ep, 500)
	f.clock.Set(t0.Add(6 * 24 * time.Hour))
	f.attempt(t, ep, 200) // day 6: a success
	if got := f.get(t, ep); !got.FailingSince.IsZero() {
		t.Fatalf("FailingSince after a success: got %v, want zero", got.FailingSince)
	}
	f.clock.Advance(time.Hour)
	again := f.clock.Now()
	f.attempt(t, ep, 500)

	f.clock.Set(t0.Add(week + time.Minute))
	if r := f.sweep(t); r.Disabled != 0 {
		t.Fatalf("a week after the first failure, but failing only since day 6: got %+v", r)
	}
	f.clock.Set(again.Add(week + time.Minute))
	if r := f.sweep(t); r.Disabled != 1 {
		t.Fatalf("a week after the new failure: got %+v, want disabled", r)
	}
}

func TestReEnableClearsTheClock(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	f.attempt(t, ep, 500)
	f.clock.Set(t0.Add(week + time.Minute))
	f.sweep(t)
	got := f.get(t, ep)
	got.Disabled, got.DisabledWhy, got.DisabledAt = false, "", time.Time{}
	if err := f.store.UpdateEndpoint(context.Background(), got, got.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, ep); got.Disabled || !got.FailingSince.IsZero() {
		t.Fatalf("after re-enable: disabled=%v failingSince=%v; want enabled and healthy", got.Disabled, got.FailingSince)
	}
	if r := f.sweep(t); r.Disabled != 0 {
		t.Errorf("the sweeper disabled a re-enabled endpoint at once: %+v", r)
	}
	msg := f.attempt(t, ep, 200)
	d, err := f.store.GetDelivery(context.Background(), f.app.ID, msg.ID, ep.ID)
	if err != nil || d.Status != webhook.StatusSuccess {
		t.Errorf("delivery after re-enable: got %+v, %v", d, err)
	}
}

// TestRedrivesUndispatchedDeliveries: StartExecution (or the local queue)
// fails after the message is stored; the message is not lost, and the
// sweeper dispatches it once the grace period has passed.
func TestRedrivesUndispatchedDeliveries(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	f.disp.err = errors.New("StartExecution: service unavailable")
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "v1.end_user.created",
		Payload: []byte(`{"a":1}`), Timestamp: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	if err := f.svc.Publish(context.Background(), msg); err != nil {
		t.Fatalf("publish must succeed although dispatch failed: %v", err)
	}
	f.disp.err = nil

	f.clock.Advance(time.Minute) // within the grace period: a slow dispatch may still be under way
	if r := f.sweep(t); r.Redriven != 0 {
		t.Fatalf("re-drove within the grace period: %+v", r)
	}
	f.clock.Advance(2 * time.Minute)
	if r := f.sweep(t); r.Redriven != 1 {
		t.Fatalf("got %+v, want one re-driven", r)
	}
	want := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	if len(f.disp.refs) != 1 || f.disp.refs[0] != want {
		t.Errorf("dispatched %v, want [%v]", f.disp.refs, want)
	}
	if r := f.sweep(t); r.Redriven != 0 {
		t.Errorf("re-drove a dispatched delivery again: %+v", r)
	}
}

func TestSweepIsBoundedAndResumable(t *testing.T) {
	f := newFixture(t)
	f.sw.Batch = 2
	var eps []*webhook.Endpoint
	for range 3 {
		ep := f.endpoint(t)
		f.attempt(t, ep, 500)
		eps = append(eps, ep)
	}
	f.clock.Set(t0.Add(week + time.Minute))
	if r := f.sweep(t); r.Disabled != 2 || !r.More {
		t.Fatalf("first run: got %+v, want 2 disabled and more", r)
	}
	if r := f.sweep(t); r.Disabled != 1 {
		t.Fatalf("second run: got %+v, want the last one", r)
	}
	for _, ep := range eps {
		if !f.get(t, ep).Disabled {
			t.Errorf("endpoint %s still enabled", ep.ID)
		}
	}
}

// overdue is the AWS store's view of overdue runs over the SQLite store:
// its undispatched runs, plus the dispatched runs the test names.
type overdue struct {
	store     *sqlite.Store
	mu        sync.Mutex
	dispached []webhook.Ref       // dispatched runs to report overdue
	postponed map[webhook.Ref]int // Postpone calls
}

func (o *overdue) ListOverdue(ctx context.Context, before time.Time, limit int) ([]webhook.Delivery, error) {
	ds, err := o.store.ListUndispatched(ctx, before, limit)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ref := range o.dispached {
		d, err := o.store.GetDelivery(ctx, ref.AppID, ref.MsgID, ref.EndpointID)
		if err != nil {
			return nil, err
		}
		if d.Run == ref.Run && !d.Status.Final() && o.postponed[ref] == 0 {
			ds = append(ds, *d)
		}
	}
	return ds, nil
}

func (o *overdue) Postpone(_ context.Context, ref webhook.Ref, _ time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.postponed[ref]++
	return nil
}

// executions says which runs' executions still run.
type executions map[webhook.Ref]bool

func (x executions) Running(_ context.Context, ref webhook.Ref) (bool, error) { return x[ref], nil }

// TestOverdueRunsGetAnOwner (AWS): an overdue undispatched run is
// dispatched; an overdue dispatched run whose execution still runs is
// left to it and looked at again later; one whose execution has ended is
// re-driven as the next run, keeping its attempts, and dispatched.
func TestOverdueRunsGetAnOwner(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	slow := f.attempt(t, ep, 500) // dispatched, a retry due in 5 s
	lost := f.attempt(t, ep, 500)
	f.disp.err = errors.New("StartExecution: throttled")
	fresh := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "v1.end_user.created",
		Payload: []byte(`{"a":1}`), Timestamp: f.clock.Now(), ExpiresAt: t0.Add(24 * time.Hour)}
	if err := f.svc.Publish(context.Background(), fresh); err != nil {
		t.Fatal(err)
	}
	f.disp.err = nil
	ref := func(m *webhook.Message) webhook.Ref {
		return webhook.Ref{AppID: f.app.ID, MsgID: m.ID, EndpointID: ep.ID}
	}
	o := &overdue{store: f.store, dispached: []webhook.Ref{ref(slow), ref(lost)}, postponed: map[webhook.Ref]int{}}
	f.sw.Overdue = o
	f.sw.Executions = executions{ref(slow): true}
	f.clock.Advance(time.Hour)
	f.disp.refs = nil

	r := f.sweep(t)
	if r.Redriven != 2 || r.Restarted != 1 || r.Postponed != 1 {
		t.Fatalf("got %+v, want 2 dispatched (1 re-driven as a new run) and 1 postponed", r)
	}
	if o.postponed[ref(slow)] != 1 {
		t.Errorf("the run whose execution still runs was not postponed: %v", o.postponed)
	}
	restarted := ref(lost)
	restarted.Run = 1
	if want := []webhook.Ref{restarted, ref(fresh)}; len(f.disp.refs) != 2 ||
		!(f.disp.refs[0] == want[0] && f.disp.refs[1] == want[1] || f.disp.refs[0] == want[1] && f.disp.refs[1] == want[0]) {
		t.Errorf("dispatched %v, want %v", f.disp.refs, want)
	}
	d, err := f.store.GetDelivery(context.Background(), f.app.ID, lost.ID, ep.ID)
	if err != nil || d.Run != 1 || d.Attempts != 1 || !d.Dispatched {
		t.Errorf("re-driven delivery: %+v, %v; want run 1, its 1 attempt kept, dispatched", d, err)
	}
	if r := f.sweep(t); r.Redriven != 0 || r.Restarted != 0 {
		t.Errorf("second sweep: %+v, want nothing left to do", r)
	}
}

// TestSweepForRunsWhileThereIsWork: passes go on while a batch is full.
func TestSweepForRunsWhileThereIsWork(t *testing.T) {
	f := newFixture(t)
	f.sw.Batch = 2
	f.endpoint(t)
	f.undispatched(t, 5)
	f.disp.err = errors.New("StartExecution: throttled")
	f.clock.Advance(time.Hour)
	r, err := f.sw.SweepFor(context.Background(), time.Now().Add(time.Minute))
	if err != nil || r.Redriven != 0 || r.Backlog != 2+2 {
		t.Fatalf("with the dispatcher down: %+v, %v; want nothing dispatched, a backlog of a full batch and more", r, err)
	}
	f.disp.err = nil
	r, err = f.sw.SweepFor(context.Background(), time.Now().Add(time.Minute))
	if err != nil || r.Redriven != 5 || r.More || r.Backlog != 0 {
		t.Errorf("got %+v, %v; want all 5 dispatched in passes of 2, no backlog", r, err)
	}
}

// counting counts Running calls and says nothing runs.
type counting struct{ calls int }

func (c *counting) Running(context.Context, webhook.Ref) (bool, error) { c.calls++; return false, nil }

// TestARunJustDispatchedIsNotSuspected: a dispatched run updated within
// RedriveAfter (two minutes here) is left alone, without asking after its
// execution, which Step Functions may not show yet.
func TestARunJustDispatchedIsNotSuspected(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	msg := f.attempt(t, ep, 500)
	ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	x := &counting{}
	f.sw.Overdue = &overdue{store: f.store, dispached: []webhook.Ref{ref}, postponed: map[webhook.Ref]int{}}
	f.sw.Executions = x
	f.clock.Advance(time.Minute) // the attempt updated it a minute ago
	if r := f.sweep(t); r.Restarted != 0 || x.calls != 0 {
		t.Errorf("a minute after its last update: %+v with %d DescribeExecution calls, want the run left alone", r, x.calls)
	}
	f.clock.Advance(2 * time.Minute)
	if r := f.sweep(t); r.Restarted != 1 || x.calls != 1 {
		t.Errorf("three minutes after: %+v with %d DescribeExecution calls, want it checked and re-driven", r, x.calls)
	}
}

// TestSweepForStopsWhenADispatchFails: a pass whose dispatch failed in
// part (here: its mark) ends the sweep, instead of starting the same runs
// over and over until the deadline.
func TestSweepForStopsWhenADispatchFails(t *testing.T) {
	f := newFixture(t)
	f.sw.Batch = 2
	f.endpoint(t)
	f.undispatched(t, 5)
	f.clock.Advance(time.Hour)
	passes := 0
	f.sw.Dispatch = func(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
		passes++
		return refs, errors.New("record dispatched: throttled") // started, not marked
	}
	r, err := f.sw.SweepFor(context.Background(), time.Now().Add(time.Minute))
	if err != nil || passes != 1 || !r.Incomplete {
		t.Errorf("got %+v, %v after %d passes; want one pass, incomplete", r, err, passes)
	}
}

// undispatched publishes n messages whose dispatch fails: their
// deliveries stay undispatched.
func (f *fixture) undispatched(t *testing.T, n int) {
	t.Helper()
	f.disp.err = errors.New("StartExecution: throttled")
	defer func() { f.disp.err = nil }()
	for range n {
		msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "v1.end_user.created",
			Payload: []byte(`{"a":1}`), Timestamp: f.clock.Now(), ExpiresAt: t0.Add(24 * time.Hour)}
		if err := f.svc.Publish(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAQueuedRunBelongsToTheQueue (AWS queue mode): a dispatched run
// without an attempt is in the delivery queue, where no execution can be
// asked about: the sweeper postpones its next look without
// DescribeExecution, and re-drives it only once it has been queued for
// QueueOwns. A run with an attempt is checked as in the other mode.
func TestAQueuedRunBelongsToTheQueue(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t)
	queued := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "v1.end_user.created",
		Payload: []byte(`{"a":1}`), Timestamp: f.clock.Now(), ExpiresAt: t0.Add(48 * time.Hour)}
	if err := f.svc.Publish(context.Background(), queued); err != nil {
		t.Fatal(err)
	}
	attempted := f.attempt(t, ep, 500)
	ref := func(m *webhook.Message) webhook.Ref {
		return webhook.Ref{AppID: f.app.ID, MsgID: m.ID, EndpointID: ep.ID}
	}
	o := &overdue{store: f.store, dispached: []webhook.Ref{ref(queued), ref(attempted)}, postponed: map[webhook.Ref]int{}}
	x := &counting{}
	f.sw.Overdue, f.sw.Executions, f.sw.QueueOwns = o, x, 6*time.Hour
	f.clock.Advance(time.Hour)
	f.disp.refs = nil

	r := f.sweep(t)
	if r.Postponed != 1 || r.Restarted != 1 || x.calls != 1 || o.postponed[ref(queued)] != 1 {
		t.Fatalf("got %+v, %d DescribeExecution calls, postponed %v; want the queued run postponed unasked, the attempted one checked and re-driven",
			r, x.calls, o.postponed)
	}
	o.postponed = map[webhook.Ref]int{}
	f.clock.Advance(6 * time.Hour)
	r = f.sweep(t)
	if r.Restarted != 1 || x.calls != 2 {
		t.Errorf("after QueueOwns: %+v with %d DescribeExecution calls, want the queued run checked and re-driven", r, x.calls)
	}
	d, err := f.store.GetDelivery(context.Background(), f.app.ID, queued.ID, ep.ID)
	if err != nil || d.Run != 1 || d.Attempts != 0 {
		t.Errorf("re-driven queued run: %+v, %v; want run 1, no attempts", d, err)
	}
}

// deadLetters is a dead-letter queue holding n runs.
type deadLetters struct {
	n, bad int
	err    error
}

func (q *deadLetters) Requeue(_ context.Context, max int) (moved, bad int, err error) {
	bad = min(q.bad, max)
	q.bad -= bad
	moved = min(q.n, max-bad)
	q.n -= moved
	return moved, bad, q.err
}

// TestSweepDrainsTheDeadLetterQueue (AWS queue mode): every pass moves up
// to a batch of dead letters back into the delivery queue, and SweepFor
// goes on while there are more; a failure to do so fails the sweep, so
// that it shows in the function's errors.
func TestSweepDrainsTheDeadLetterQueue(t *testing.T) {
	f := newFixture(t)
	f.sw.Batch = 4
	q := &deadLetters{n: 9, bad: 1}
	f.sw.DeadLetters = q
	r, err := f.sw.SweepFor(context.Background(), time.Now().Add(time.Minute))
	if err != nil || r.Requeued != 9 || q.n != 0 || q.bad != 0 {
		t.Fatalf("got %+v, %v, %d left; want all 9 requeued and the bad one dropped", r, err, q.n)
	}
	q.n, q.err = 3, errors.New("ReceiveMessage: access denied")
	if _, err := f.sw.Sweep(context.Background()); err == nil {
		t.Error("a failed drain must fail the sweep")
	}
}
