package dynamo

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// TestThrottleUnderConcurrentCallers: 20 callers, each its own process
// (its own Throttle, as deliver functions are), reserve 5 tokens each of
// one endpoint at rate 10 at the same instant: the 100 grants are 10 at
// once and 10 more every second after — none twice (no more than 10 in
// any second) and none lost (the last burst 9 s after the first).
func TestThrottleUnderConcurrentCallers(t *testing.T) {
	s := newStore(t, nil)
	const callers, each, rate = 20, 5, 10
	t0 := time.Unix(1_800_000_000, 0)
	ref := webhook.Ref{AppID: "app_1", MsgID: "msg_1", EndpointID: "ep_1"}
	var mu sync.Mutex
	var grants []time.Time
	var wg sync.WaitGroup
	for range callers {
		th := NewThrottle(s.Store)
		wg.Go(func() {
			for range each {
				at, err := th.Reserve(t.Context(), ref, rate, t0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				grants = append(grants, at)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	slices.SortFunc(grants, time.Time.Compare)
	for i, at := range grants {
		if want := t0.Add(time.Duration(i/rate) * time.Second); !at.Equal(want) {
			t.Errorf("grant %d: at %s, want %s (10 a second from the first)", i, at.Sub(t0), want.Sub(t0))
		}
	}

	// Another endpoint's bucket is its own; an unrelated caller that saw
	// nothing yet reads the shared log and queues behind the 100.
	other := ref
	other.EndpointID = "ep_2"
	if at, err := NewThrottle(s.Store).Reserve(t.Context(), other, rate, t0); err != nil || !at.Equal(t0) {
		t.Errorf("another endpoint: got %s, %v; want at once", at.Sub(t0), err)
	}
	if at, err := NewThrottle(s.Store).Reserve(t.Context(), ref, rate, t0); err != nil || !at.Equal(t0.Add(10*time.Second)) {
		t.Errorf("a 101st grant from a new process: got %s, %v; want 10s", at.Sub(t0), err)
	}
}

// TestThrottleCostsOneWriteWhenUncontended: a process that reserves
// tokens of an endpoint alone writes the log once per reservation, and
// reads nothing.
func TestThrottleCostsOneWriteWhenUncontended(t *testing.T) {
	s := newStore(t, nil)
	th := NewThrottle(s.Store)
	ref := webhook.Ref{AppID: "app_1", MsgID: "msg_1", EndpointID: "ep_1"}
	t0 := time.Unix(1_800_000_000, 0)
	s.rec.reset()
	for i := range 20 {
		if _, err := th.Reserve(t.Context(), ref, 3, t0.Add(time.Duration(i)*100*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	ops := s.rec.counts()
	if ops["UpdateItem"] != 20 || ops["GetItem"] != 0 || len(ops) != 1 {
		t.Errorf("20 reservations sent %v, want 20 UpdateItem and nothing else", ops)
	}
	var b bucket
	b, err := th.current(t.Context(), throttleKey(ref.AppID, ref.EndpointID), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != 20 || b.Log.Len() != 3 {
		t.Errorf("stored log: version %d with %d grants, want 20 and 3 (the rate)", b.Version, b.Log.Len())
	}

}
