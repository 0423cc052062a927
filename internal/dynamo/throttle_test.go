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
	// A caller that lost a write was granted at when it could send, after
	// its back-offs, so grants drift by milliseconds from the second marks.
	const slack = 500 * time.Millisecond
	for i, at := range grants {
		if from := t0.Add(time.Duration(i/rate) * time.Second); at.Before(from) || !at.Before(from.Add(slack)) {
			t.Errorf("grant %d: at %s, want within %s of %s (10 a second from the first)", i, at.Sub(t0), slack, from.Sub(t0))
		}
		if i >= rate && grants[i].Sub(grants[i-rate]) < time.Second {
			t.Errorf("grants %d and %d are %s apart: more than %d in a second", i-rate, i, grants[i].Sub(grants[i-rate]), rate)
		}
	}

	// Another endpoint's bucket is its own; an unrelated caller that saw
	// nothing yet reads the shared log and queues behind the 100.
	other := ref
	other.EndpointID = "ep_2"
	if at, err := NewThrottle(s.Store).Reserve(t.Context(), other, rate, t0); err != nil || !at.Equal(t0) {
		t.Errorf("another endpoint: got %s, %v; want at once", at.Sub(t0), err)
	}
	if at, err := NewThrottle(s.Store).Reserve(t.Context(), ref, rate, t0); err != nil || at.Sub(grants[len(grants)-rate]) < time.Second || at.Sub(t0) >= 10*time.Second+slack {
		t.Errorf("a 101st grant from a new process: got %s, %v; want a second after the 91st (%s)", at.Sub(t0), err, grants[len(grants)-rate].Sub(t0))
	}
}

// TestThrottleGrantsAfterItsBackOff: a caller whose write lost to another
// caller's backs off and is granted for when it can send, not for the
// time it first asked: else its token would come back early by the
// back-off, and more than rate requests could go in that second.
func TestThrottleGrantsAfterItsBackOff(t *testing.T) {
	s := newStore(t, nil)
	t0 := time.Unix(1_800_000_000, 0)
	ref := webhook.Ref{AppID: "app_1", MsgID: "msg_1", EndpointID: "ep_1"}
	stale := NewThrottle(s.Store) // has seen no log yet: its first write will lose
	if _, err := NewThrottle(s.Store).Reserve(t.Context(), ref, 100, t0); err != nil {
		t.Fatal(err)
	}
	at, err := stale.Reserve(t.Context(), ref, 100, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !at.After(t0) {
		t.Errorf("granted at %s after losing a write, want after the time asked (its back-off)", at.Sub(t0))
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
