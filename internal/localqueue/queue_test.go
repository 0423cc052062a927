package localqueue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// memStore is a queue store in memory: due times per ref, and the refs
// waiting for their endpoint.
type memStore struct {
	mu      sync.Mutex
	due     map[webhook.Ref]time.Time
	waiting map[webhook.Ref]time.Time // since when
	claims  int                       // calls of ClaimDue
	waits   int                       // calls of Wait
	// failWaiting makes the next calls of ClaimWaiting fail.
	failWaiting int
}

func (m *memStore) ClaimDue(_ context.Context, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims++
	var out []webhook.Ref
	for ref, at := range m.due {
		if len(out) == limit {
			break
		}
		if _, ok := m.waiting[ref]; !ok && !at.After(now) {
			m.due[ref] = now.Add(lease)
			out = append(out, ref)
		}
	}
	return out, nil
}

func (m *memStore) ClaimWaiting(_ context.Context, endpointID string, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWaiting > 0 {
		m.failWaiting--
		return nil, errors.New("database is locked")
	}
	var out []webhook.Ref
	for ref := range m.waiting {
		if len(out) == limit {
			break
		}
		if ref.EndpointID == endpointID {
			delete(m.waiting, ref)
			m.due[ref] = now.Add(lease)
			out = append(out, ref)
		}
	}
	return out, nil
}

func (m *memStore) Wait(_ context.Context, endpointID string, claims map[webhook.Ref]time.Time, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.waits++
	if m.waiting == nil {
		m.waiting = map[webhook.Ref]time.Time{}
	}
	for ref, until := range claims {
		if at, ok := m.due[ref]; ok && at.Equal(until) {
			m.due[ref] = now
			m.waiting[ref] = now
		}
	}
	for ref, at := range m.due {
		if _, ok := m.waiting[ref]; !ok && ref.EndpointID == endpointID && !at.After(now) {
			m.waiting[ref] = now
		}
	}
	return nil
}

func (m *memStore) NextDue(context.Context) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	for ref, at := range m.due {
		if _, ok := m.waiting[ref]; !ok && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next, !next.IsZero(), nil
}

// waitCalls is how many times Wait was called.
func (m *memStore) waitCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waits
}

func (m *memStore) set(ref webhook.Ref, at time.Time) {
	m.mu.Lock()
	m.due[ref] = at
	delete(m.waiting, ref)
	m.mu.Unlock()
}

func (m *memStore) done(ref webhook.Ref) {
	m.mu.Lock()
	delete(m.due, ref)
	delete(m.waiting, ref)
	m.mu.Unlock()
}

func ref(i int) webhook.Ref {
	return webhook.Ref{AppID: "app_1", MsgID: "msg_" + string(rune('a'+i)), EndpointID: "ep_1"}
}

// start runs a queue whose attempts schedule no next attempt.
func start(t *testing.T, store *memStore, attempt func(context.Context, webhook.Ref) error, cfg Config) (*Queue, func()) {
	t.Helper()
	return startNext(t, store, func(ctx context.Context, r webhook.Ref, _ *webhook.Loaded) (time.Time, error) {
		return time.Time{}, attempt(ctx, r)
	}, cfg)
}

// loaded is what Publish hands a Holder for refs, with a 1 KiB payload
// and no endpoint: the queue only carries it.
func loaded(refs ...webhook.Ref) []webhook.Loaded {
	out := make([]webhook.Loaded, len(refs))
	for i, r := range refs {
		out[i] = webhook.Loaded{
			Delivery: &webhook.Delivery{AppID: r.AppID, MsgID: r.MsgID, EndpointID: r.EndpointID, Run: r.Run},
			Message:  &webhook.Message{ID: r.MsgID, Payload: make([]byte, 1024)},
		}
	}
	return out
}

func startNext(t *testing.T, store *memStore, attempt AttemptFunc, cfg Config) (*Queue, func()) {
	t.Helper()
	q := New(store, attempt, webhook.SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { q.Run(ctx); close(stopped) }()
	return q, func() { cancel(); <-stopped }
}

func TestQueueRunsDueDeliveriesAndWaitsForLaterOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		var mu sync.Mutex
		ran := map[webhook.Ref]time.Time{}
		attempt := func(_ context.Context, r webhook.Ref) error {
			mu.Lock()
			ran[r] = time.Now()
			mu.Unlock()
			store.done(r)
			return nil
		}
		now := time.Now()
		later := now.Add(300 * time.Millisecond)
		store.set(ref(0), now.Add(-time.Hour)) // overdue: runs at once
		store.set(ref(1), later)
		_, stop := start(t, store, attempt, Config{Workers: 2, Poll: time.Minute})
		defer stop()

		synctest.Wait()
		mu.Lock()
		if got, ok := ran[ref(0)]; !ok || !got.Equal(now) {
			t.Errorf("overdue delivery ran at %v (%v), want at once, %v", got, ok, now)
		}
		if _, ok := ran[ref(1)]; ok {
			t.Error("the later delivery ran before its time")
		}
		mu.Unlock()
		// The later one runs at its time although Poll is a minute: the
		// queue sleeps until the next due time, not a fixed interval.
		time.Sleep(later.Sub(now))
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if got := ran[ref(1)]; !got.Equal(later) {
			t.Errorf("later delivery ran at %v, want at %v", got, later)
		}
	})
}

func TestDispatchWakesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		got := make(chan webhook.Ref, 1)
		q, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			store.done(r)
			got <- r
			return nil
		}, Config{Poll: time.Hour})
		defer stop()
		synctest.Wait() // the queue is asleep now, for an hour
		store.set(ref(3), time.Now())
		if _, err := q.Dispatch(context.Background(), []webhook.Ref{ref(3)}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // no time passes: only the dispatch can wake it
		select {
		case r := <-got:
			if r != ref(3) {
				t.Errorf("got %v, want %v", r, ref(3))
			}
		default:
			t.Fatal("Dispatch did not wake the queue")
		}
	})
}

func TestFailedAttemptIsRetriedAfterTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		store.set(ref(0), time.Now())
		var mu sync.Mutex
		calls := 0
		_, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return errors.New("store unavailable")
			}
			store.done(r)
			return nil
		}, Config{Lease: 100 * time.Millisecond, Poll: 10 * time.Millisecond})
		defer stop()
		attempts := func() int { synctest.Wait(); mu.Lock(); defer mu.Unlock(); return calls }
		if n := attempts(); n != 1 {
			t.Fatalf("%d attempts at the start, want 1", n)
		}
		time.Sleep(99 * time.Millisecond)
		if n := attempts(); n != 1 {
			t.Errorf("%d attempts before the 100ms lease ended, want 1", n)
		}
		time.Sleep(time.Millisecond)
		if n := attempts(); n != 2 {
			t.Errorf("%d attempts once the 100ms lease ended, want 2: the failed one again", n)
		}
	})
}

func TestRunWaitsForAttemptsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		store.set(ref(0), time.Now())
		started := make(chan struct{})
		var finished bool
		_, stop := start(t, store, func(ctx context.Context, r webhook.Ref) error {
			close(started)
			time.Sleep(100 * time.Millisecond)
			if ctx.Err() != nil {
				t.Error("the attempt's context was canceled by the shutdown")
			}
			finished = true
			store.done(r)
			return nil
		}, Config{})
		<-started
		stop()
		if !finished {
			t.Error("Run returned before the attempt in flight finished")
		}
	})
}

// record keeps the attempts made, in order, and when.
type record struct {
	mu      sync.Mutex
	refs    []webhook.Ref
	at      []time.Time
	reaches map[int]chan struct{} // closed once that many are recorded
}

func (r *record) add(ref webhook.Ref) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs = append(r.refs, ref)
	r.at = append(r.at, time.Now())
	for n, ch := range r.reaches {
		if len(r.refs) >= n {
			close(ch)
			delete(r.reaches, n)
		}
	}
}

// reached returns a channel closed once n attempts are recorded.
func (r *record) reached(n int) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if len(r.refs) >= n {
		close(ch)
		return ch
	}
	if r.reaches == nil {
		r.reaches = map[int]chan struct{}{}
	}
	r.reaches[n] = ch
	return ch
}

// await waits for ch for up to a minute, and fails the test if it does
// not come. In a synctest bubble the minute is virtual: a queue that
// never gets there fails the test at once rather than after a minute.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// read returns copies of what was recorded.
func (r *record) read() ([]webhook.Ref, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Ref(nil), r.refs...), append([]time.Time(nil), r.at...)
}

func (r *record) len() int { refs, _ := r.read(); return len(refs) }

// gauge counts the attempts in flight, their peak, and those ended.
type gauge struct {
	mu                    sync.Mutex
	inFlight, peak, ended int
}

// attempt counts an attempt that takes d, and returns how many have
// ended with it.
func (g *gauge) attempt(d time.Duration) int {
	g.mu.Lock()
	g.inFlight++
	g.peak = max(g.peak, g.inFlight)
	g.mu.Unlock()
	time.Sleep(d)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	g.ended++
	return g.ended
}

func (g *gauge) read() (peak, ended int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peak, g.ended
}

func TestWorkersBoundConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		for i := range 20 {
			store.set(ref(i), time.Now())
		}
		var g gauge
		_, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			g.attempt(10 * time.Millisecond)
			store.done(r)
			return nil
		}, Config{Workers: 3, Poll: 10 * time.Millisecond})
		defer stop()
		// 20 attempts of 10ms on 3 workers: 7 rounds.
		time.Sleep(70 * time.Millisecond)
		synctest.Wait()
		peak, ended := g.read()
		if peak > 3 {
			t.Errorf("peak concurrency %d, want at most 3", peak)
		}
		if ended != 20 {
			t.Errorf("%d attempts ended after 70ms, want all 20: 7 rounds of 3 workers", ended)
		}
	})
}

// TestAScheduledRetryWakesTheQueue: an attempt that schedules a retry
// while the loop sleeps (until the attempt's claim ends, Poll being an
// hour) wakes it for the retry's time.
func TestAScheduledRetryWakesTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		t0 := time.Now()
		store.set(ref(0), t0)
		var mu sync.Mutex
		var calls []time.Time
		_, stop := startNext(t, store, func(_ context.Context, r webhook.Ref, _ *webhook.Loaded) (time.Time, error) {
			mu.Lock()
			calls = append(calls, time.Now())
			first := len(calls) == 1
			mu.Unlock()
			if first {
				time.Sleep(10 * time.Millisecond) // the loop is asleep by now
				next := time.Now().Add(100 * time.Millisecond)
				store.set(r, next) // as RecordAttempt does
				return next, nil
			}
			store.done(r)
			return time.Time{}, nil
		}, Config{Poll: time.Hour})
		defer stop()
		time.Sleep(110 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 2 {
			t.Fatalf("%d attempts when the retry was due, want 2: the retry (not after the claim or the 1h poll)", len(calls))
		}
		if at := calls[1].Sub(t0); at != 110*time.Millisecond {
			t.Errorf("retried at %s, want at its time, 110ms", at)
		}
	})
}

// TestEndedAttemptsDoNotPollTheStore: with nothing due, the queue does
// not look at the store after each attempt that ends.
func TestEndedAttemptsDoNotPollTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		var mu sync.Mutex
		n := 0
		q, stop := start(t, store, func(context.Context, webhook.Ref) error {
			mu.Lock()
			n++
			mu.Unlock()
			return nil
		}, func() Config { c := holdCfg(2, 64); c.Poll = time.Hour; return c }())
		defer stop()
		synctest.Wait() // asleep: nothing due
		store.mu.Lock()
		before := store.claims
		store.mu.Unlock()
		for i := range 50 {
			_, take, ok := q.Hold(1, time.Now())
			if !ok {
				t.Fatal("Hold refused")
			}
			take(loaded(webhook.Ref{AppID: "app_1", MsgID: "msg", EndpointID: "ep", Run: i}))
		}
		synctest.Wait()
		mu.Lock()
		if n != 50 {
			t.Errorf("%d held attempts made, want 50", n)
		}
		mu.Unlock()
		store.mu.Lock()
		defer store.mu.Unlock()
		if n := store.claims - before; n > 3 {
			t.Errorf("ClaimDue called %d times for 50 held attempts with nothing due, want at most 3", n)
		}
	})
}

// TestRetriesDueTogetherAreClaimedTogether: with Gather, retries that come
// due within it are claimed in one call, while a dispatch is claimed at
// once.
func TestRetriesDueTogetherAreClaimedTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		var rec record
		q, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			rec.add(r)
			store.done(r)
			return nil
		}, Config{Poll: time.Hour, Gather: 100 * time.Millisecond})
		defer stop()
		synctest.Wait() // asleep: nothing due
		store.mu.Lock()
		claims := store.claims
		store.mu.Unlock()

		// A dispatch does not wait for Gather.
		dispatched := time.Now()
		store.set(ref(0), dispatched)
		q.Dispatch(context.Background(), []webhook.Ref{ref(0)})
		synctest.Wait()
		if _, ran := rec.read(); len(ran) != 1 || !ran[0].Equal(dispatched) {
			t.Fatalf("dispatched delivery ran at %v, want at once (not after Gather), %v", ran, dispatched)
		}

		// Five retries coming due 10 ms apart: one claim, after the first
		// has been due for Gather.
		first := time.Now().Add(50 * time.Millisecond)
		for i := 1; i <= 5; i++ {
			store.set(ref(i), first.Add(time.Duration(i-1)*10*time.Millisecond))
		}
		q.dueAt(first) // as the attempts that scheduled them report
		time.Sleep(first.Sub(time.Now()) + 99*time.Millisecond)
		synctest.Wait()
		if n := rec.len(); n != 1 {
			t.Errorf("%d attempts before the first retry had been due for Gather (100ms), want only the dispatched one", n)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		_, ran := rec.read()
		if len(ran) != 6 {
			t.Fatalf("%d attempts once the first retry had been due for Gather, want 6", len(ran))
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		if n := store.claims - claims; n > 2 {
			t.Errorf("%d claims for one dispatch and five retries due within Gather, want 2", n)
		}
		if d := ran[1].Sub(first); d != 100*time.Millisecond {
			t.Errorf("first retry ran %s after it came due, want after Gather (100ms)", d)
		}
	})
}

// TestABacklogDrainsAtTheEndpointsPace: a backlog to one endpoint far
// beyond its share and park goes out at the pace of its share, claimed
// back from the store as its slots free, without waiting out any claim (a
// minute here), while another endpoint's deliveries go out meanwhile.
func TestABacklogDrainsAtTheEndpointsPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		const backlog, share = 200, 4
		now := time.Now()
		for i := range backlog {
			store.set(refTo("ep_busy", i), now.Add(-time.Hour))
		}
		var busy gauge
		var rec record
		half := make(chan struct{})
		q, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			if r.EndpointID == "ep_busy" && busy.attempt(5*time.Millisecond) == backlog/2 {
				close(half)
			}
			rec.add(r)
			store.done(r)
			return nil
		}, Config{Workers: 8, EndpointShare: share, Lease: time.Minute, AttemptTimeout: 10 * time.Second, Poll: 10 * time.Millisecond})
		defer stop()
		await(t, half, "half the backlog")
		for i := range 20 {
			store.set(refTo("ep_other", i), time.Now())
		}
		q.Dispatch(context.Background(), []webhook.Ref{refTo("ep_other", 0)})
		await(t, rec.reached(backlog+20), "every attempt")

		if peak, _ := busy.read(); peak > share {
			t.Errorf("the busy endpoint had %d attempts in flight, want at most its share of %d", peak, share)
		}
		refs, at := rec.read()
		var last time.Time
		for i, r := range refs {
			if r.EndpointID != "ep_busy" {
				continue
			}
			if !last.IsZero() && at[i].Sub(last) >= time.Second {
				t.Errorf("no attempt to the busy endpoint for %s before attempt %d: its backlog waited", at[i].Sub(last), i)
			}
			last = at[i]
		}
		if store.waitCalls() == 0 {
			t.Error("the backlog never went back to the store: it was not beyond the share and park")
		}
	})
}

// TestAFailedClaimOfWaitingDeliveriesIsTriedAgain: the store fails the
// first claims of the deliveries waiting for their endpoint; they are not
// forgotten for it (they would wait until a restart), and all go out.
func TestAFailedClaimOfWaitingDeliveriesIsTriedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}, failWaiting: 2}
		const n = 50
		for i := range n {
			store.set(refTo("ep_1", i), time.Now().Add(-time.Hour))
		}
		var rec record
		_, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			time.Sleep(time.Millisecond)
			rec.add(r)
			store.done(r)
			return nil
		}, Config{Workers: 4, EndpointShare: 2, Lease: time.Minute, AttemptTimeout: 10 * time.Second, Poll: 10 * time.Millisecond})
		defer stop()
		await(t, rec.reached(n), "every attempt")
		store.mu.Lock()
		defer store.mu.Unlock()
		if store.failWaiting != 0 {
			t.Errorf("%d injected failures left: the waiting deliveries were never claimed back", store.failWaiting)
		}
	})
}
