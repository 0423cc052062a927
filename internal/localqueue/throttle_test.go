package localqueue

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func TestThrottleReservesOneTokenPerRun(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0) // on a Quantum
	th := NewThrottle()
	reserve := func(i int, now time.Time) time.Time {
		t.Helper()
		at, err := th.Reserve(ctx, refTo("ep_1", i), 2, now)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	for i, want := range []time.Duration{0, 0, time.Second, time.Second, 2 * time.Second} {
		if got := reserve(i, t0); !got.Equal(t0.Add(want)) {
			t.Errorf("run %d at rate 2: send at %s, want %s", i, got.Sub(t0), want)
		}
	}
	// Asking again before its time gives run 3 its reservation back, and
	// takes no token: run 5 still gets the fifth one.
	if got := reserve(3, t0.Add(500*time.Millisecond)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("run 3 again before its time: send at %s, want its reservation, 1s", got.Sub(t0))
	}
	if got := reserve(5, t0.Add(500*time.Millisecond)); !got.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("run 5: send at %s, want 2s (run 3's second ask took no token)", got.Sub(t0))
	}
	// At its time the reservation is used up: a later attempt of the
	// same run (its retry) takes a token of its own.
	if got := reserve(3, t0.Add(time.Second)); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("run 3 at its time: send at %s, want 1s", got.Sub(t0))
	}
	if got := reserve(3, t0.Add(time.Second)); !got.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("run 3's next attempt: send at %s, want 3s (a new token)", got.Sub(t0))
	}
	// Another endpoint has tokens of its own.
	if at, _ := th.Reserve(ctx, refTo("ep_2", 0), 2, t0); !at.Equal(t0) {
		t.Errorf("another endpoint: send at %s, want at once", at.Sub(t0))
	}
}

func TestThrottleForgetsWhatIsNoLongerNeeded(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	th := NewThrottle()
	for i := range 3 {
		th.Reserve(ctx, refTo("ep_1", i), 1, t0) // runs 1 and 2 never come back
	}
	later := t0.Add(reservationTTL + 3*time.Second)
	th.Reserve(ctx, refTo("ep_2", 0), 1, later)
	th.mu.Lock()
	defer th.mu.Unlock()
	if _, ok := th.eps["ep_1"]; ok {
		t.Errorf("ep_1 is still tracked %s after its reservations: %+v", reservationTTL, th.eps["ep_1"])
	}
}

func TestSharesThrottledFreesTheSlotAndBoundsWhatWaits(t *testing.T) {
	now := msAt(0)
	s := newShares(2, 2, 2, time.Second, func() {})
	c := func(i int) claimed { return claimed{ref: refTo("ep_1", i)} }
	for i := range 2 {
		if got := s.admit(c(i), now, true); got != runNow {
			t.Fatalf("admit #%d: got %v, want runNow", i, got)
		}
	}
	if got := s.admit(c(2), now, true); got != parked {
		t.Fatalf("admit #2 at the share: got %v, want parked", got)
	}
	// A throttled attempt is not an attempt: its slot passes to the
	// parked delivery, and the endpoint is not failing.
	next, ok := s.throttled("ep_1", now, now)
	if !ok || next.ref != c(2).ref {
		t.Fatalf("throttled: got %v, %v; want the parked delivery to take the slot", next.ref, ok)
	}
	s.throttled("ep_1", now, now)
	if e := s.eps["ep_1"]; e.sleeping != 2 || e.failing || len(e.starts) != 1 {
		t.Errorf("after two throttled attempts: sleeping %d, failing %v, in flight %d; want 2, false, 1", e.sleeping, e.failing, len(e.starts))
	}
	// With a park's worth (2) held back, deliveries claimed from the
	// store wait there rather than take a token each; new messages
	// (held) and woken ones still run.
	if got := s.admit(c(3), now, true); got != overflow {
		t.Errorf("a claimed delivery with 2 held back: got %v, want overflow", got)
	}
	if got := s.admit(claimed{ref: refTo("ep_1", 4), held: true}, now, true); got != runNow {
		t.Errorf("a held delivery with 2 held back: got %v, want runNow", got)
	}
	if got := s.admit(claimed{ref: refTo("ep_1", 0), slept: true}, now, true); got != parked {
		t.Errorf("a woken delivery at the share: got %v, want parked", got)
	}
	if e := s.eps["ep_1"]; e.sleeping != 1 {
		t.Errorf("after one woke: sleeping %d, want 1", e.sleeping)
	}
	if room := s.room(s.eps["ep_1"], now); room != 0 {
		t.Errorf("room with 2 in flight, 1 parked, 1 held back: got %d, want 0", room)
	}
}

// throttledUntil is the error of an attempt held back by a throttle.
type throttledUntil time.Time

func (e throttledUntil) Error() string             { return "throttled" }
func (e throttledUntil) ThrottledUntil() time.Time { return time.Time(e) }

// TestAThrottledDeliveryWaitsWithoutAWorker: with one worker, deliveries
// whose throttle holds them back do not hold it: another endpoint's
// deliveries go first, and each held-back one is attempted again at its
// time, once.
func TestAThrottledDeliveryWaitsWithoutAWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		var mu sync.Mutex
		calls := map[webhook.Ref]int{}
		var order []string
		wait := 150 * time.Millisecond
		done := make(chan struct{}, 10)
		attempt := func(_ context.Context, r webhook.Ref, _ *webhook.Loaded) (time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			calls[r]++
			if r.EndpointID == "ep_slow" && calls[r] == 1 {
				return time.Time{}, throttledUntil(time.Now().Add(wait))
			}
			order = append(order, r.EndpointID)
			store.done(r)
			done <- struct{}{}
			return time.Time{}, nil
		}
		now := time.Now()
		for i := range 2 {
			store.set(refTo("ep_slow", i), now.Add(-time.Second))
		}
		_, stop := startNext(t, store, attempt, Config{Workers: 1, Poll: 10 * time.Millisecond})
		defer stop()
		synctest.Wait() // both slow ones are held back now
		for i := range 3 {
			store.set(refTo("ep_fast", i), time.Now())
		}
		for range 5 {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("attempts made: %v", order)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"ep_fast", "ep_fast", "ep_fast", "ep_slow", "ep_slow"}
		if len(order) != len(want) || order[0] != "ep_fast" || order[3] != "ep_slow" {
			t.Errorf("attempts in order %v, want %v: the held-back deliveries took the only worker", order, want)
		}
		for i := range 2 {
			if got := calls[refTo("ep_slow", i)]; got != 2 {
				t.Errorf("held-back delivery %d: %d calls, want 2 (held back, then made)", i, got)
			}
		}
	})
}
