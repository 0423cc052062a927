package localqueue

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func refTo(endpoint string, i int) webhook.Ref {
	return webhook.Ref{AppID: "app_1", MsgID: fmt.Sprintf("msg_%d", i), EndpointID: endpoint}
}

// msAt is d milliseconds after a fixed start.
func msAt(d time.Duration) time.Time { return time.Unix(1_700_000_000, 0).Add(d * time.Millisecond) }

func TestSharesAdmitParkAndOverflow(t *testing.T) {
	const slowAfter = time.Second
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	c := func(i int) claimed { return claimed{ref: refTo("ep_1", i)} }
	s := newShares(2, 1, 2, slowAfter, func() {})
	for i, want := range []admission{runNow, runNow, parked, parked, overflow} {
		if got := s.admit(c(i), at(time.Duration(i)), true); got != want {
			t.Errorf("admit #%d with share 2: got %v, want %v", i, got, want)
		}
	}
	// A quick attempt passes its slot to the first parked delivery.
	next, ok := s.done("ep_1", at(0), at(time.Millisecond), false)
	if !ok || next.ref != c(2).ref {
		t.Fatalf("done (quick): got %v, %v; want the first parked delivery", next.ref, ok)
	}
	// An attempt in flight for slowAfter makes the endpoint slow, share
	// 1, before it ends: the surplus parked is shed.
	if got := s.shed(at(slowAfter + time.Millisecond)); len(got) != 0 {
		t.Errorf("shed with one parked, at the slow share: got %d, want none", len(got))
	}
	if got := s.admit(c(5), at(slowAfter+time.Millisecond), true); got != overflow {
		t.Errorf("admit to a slow endpoint at its share with one parked: got %v, want overflow", got)
	}
	// With 2 in flight and share 1, a finished slot is freed, not passed.
	if next, ok := s.done("ep_1", at(1), at(slowAfter+1), false); ok {
		t.Errorf("done (slow) with 2 in flight and share 1: passed the slot to %v, want it freed", next.ref)
	}
	// The last attempt in flight hands over to the parked one even though
	// the endpoint is slow: parked deliveries are never stranded.
	if next, ok := s.done("ep_1", at(time.Millisecond), at(2*slowAfter), false); !ok || next.ref != c(3).ref {
		t.Errorf("done (slow, last in flight): got %v, %v; want the parked delivery", next.ref, ok)
	}
	// Skipping it frees the slot; a quick attempt later makes the
	// endpoint healthy again, and then it is forgotten.
	if _, ok := s.skip("ep_1", at(2*slowAfter), at(2*slowAfter), false); ok {
		t.Error("skip with nothing parked passed the slot on")
	}
	// The two that overflowed went to wait in the store; with room again
	// they are claimed back, and once none are left there the endpoint
	// is no longer waiting.
	s.stored("ep_1", 2)
	rs := s.refills(at(3*slowAfter), 10)
	if len(rs) != 1 || rs[0].endpointID != "ep_1" {
		t.Fatalf("refills with room: got %+v, want one for ep_1", rs)
	}
	s.refilled(rs[0], 0, false)
	if got := s.admit(c(6), at(3*slowAfter), true); got != runNow {
		t.Fatalf("admit after the endpoint went idle: got %v, want runNow", got)
	}
	s.done("ep_1", at(3*slowAfter), at(3*slowAfter+time.Millisecond), false)
	if len(s.eps) != 0 {
		t.Errorf("an idle healthy endpoint is still tracked: %+v", s.eps["ep_1"])
	}
}

// TestRefillsAsSlotsFree: deliveries that overflowed an endpoint's share
// and park are claimed back from the store as its slots free — half a
// park at a time, within the free room of the queue — and the endpoint
// stops waiting once a claim comes back short with nothing on its way to
// the store.
func TestRefillsAsSlotsFree(t *testing.T) {
	at := msAt
	kicks := 0
	s := newShares(4, 4, 4, time.Second, func() { kicks++ })
	c := func(i int) claimed { return claimed{ref: refTo("ep_1", i)} }
	for i := range 11 { // 4 run, 4 park, 3 overflow
		s.admit(c(i), at(0), true)
	}
	if rs := s.refills(at(1), 100); len(rs) != 0 {
		t.Errorf("refills with no room: got %+v, want none", rs)
	}
	s.stored("ep_1", 3)
	s.done("ep_1", at(0), at(10), false) // the slot goes to a parked one
	if kicks != 0 {
		t.Errorf("kicked with room 1 of a park of 4, want a kick at half a park")
	}
	s.done("ep_1", at(0), at(11), false)
	if kicks != 1 {
		t.Errorf("kicks with room 2 of a park of 4: got %d, want 1", kicks)
	}
	rs := s.refills(at(12), 100)
	if len(rs) != 1 || rs[0] != (refill{"ep_1", 2}) {
		t.Fatalf("refills: got %+v, want 2 for ep_1", rs)
	}
	if again := s.refills(at(12), 100); len(again) != 0 {
		t.Errorf("refills while the claim is on its way: got %+v, want none", again)
	}
	s.refilled(rs[0], 2, false)
	for i := range 2 {
		if got := s.admit(claimed{ref: refTo("ep_1", 20+i), fromStore: true}, at(13), true); got != parked {
			t.Errorf("admit of a delivery claimed back: got %v, want parked", got)
		}
	}
	// Room again, but the queue has room for one delivery only.
	s.done("ep_1", at(0), at(20), false)
	s.done("ep_1", at(0), at(21), false)
	if rs = s.refills(at(22), 1); len(rs) != 1 || rs[0].n != 1 {
		t.Fatalf("refills with one free: got %+v, want 1 for ep_1", rs)
	}
	// A delivery too old to attempt is on its way to the store: a short
	// claim does not end the waiting.
	if got := s.admit(c(30), at(23), false); got != overflow {
		t.Errorf("admit of a delivery too old: got %v, want overflow", got)
	}
	s.refilled(rs[0], 0, false)
	if !s.eps["ep_1"].waiting {
		t.Fatal("a short claim ended the waiting while a delivery was on its way to the store")
	}
	s.stored("ep_1", 1)
	rs = s.refills(at(24), 100)
	if len(rs) != 1 {
		t.Fatalf("refills: got %+v, want one", rs)
	}
	s.refilled(rs[0], 0, false)
	if s.eps["ep_1"].waiting {
		t.Error("the endpoint still waits after a short claim with nothing on its way")
	}
}

// TestHangingEndpointLeavesWorkersToOthers has one endpoint whose
// attempts hang and one that answers at once: the hanging one holds at
// most its share of the workers, and the other's deliveries all run
// meanwhile.
func TestHangingEndpointLeavesWorkersToOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		const n = 40
		for i := range n {
			store.set(refTo("ep_hang", i), time.Now())
			store.set(refTo("ep_ok", i), time.Now())
		}
		release := make(chan struct{})
		var mu sync.Mutex
		hanging, peakHanging, ok := 0, 0, 0
		_, stop := start(t, store, func(ctx context.Context, r webhook.Ref) error {
			if r.EndpointID == "ep_hang" {
				mu.Lock()
				hanging++
				peakHanging = max(peakHanging, hanging)
				mu.Unlock()
				<-release
				mu.Lock()
				hanging--
				mu.Unlock()
				return nil
			}
			store.done(r)
			mu.Lock()
			ok++
			mu.Unlock()
			return nil
		}, Config{Workers: 4, EndpointShare: 2, SlowShare: 1, SlowAfter: 50 * time.Millisecond, Poll: 10 * time.Millisecond})
		defer stop()
		defer close(release)

		// A second is twenty times SlowAfter; the healthy endpoint's
		// attempts take no time.
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if ok != n {
			t.Errorf("ran %d of the %d deliveries to the healthy endpoint while the other hung", ok, n)
		}
		if peakHanging > 2 {
			t.Errorf("the hanging endpoint held %d workers at once, want at most its share of 2", peakHanging)
		}
	})
}

func TestSharesOfAFailingEndpoint(t *testing.T) {
	at := msAt
	c := func(i int) claimed { return claimed{ref: refTo("ep_1", i)} }
	s := newShares(3, 1, 1, time.Second, func() {})
	for i := range 3 {
		if got := s.admit(c(i), at(0), true); got != runNow {
			t.Fatalf("admit #%d to a healthy endpoint with share 3: got %v, want runNow", i, got)
		}
	}
	// An attempt fails: the endpoint's share drops to 1, and with 2 still
	// in flight the slot is freed, not passed on.
	if _, ok := s.done("ep_1", at(0), at(1), true); ok {
		t.Error("done (failed) with 2 in flight: passed the slot on, want it freed")
	}
	// Beyond its share a failing endpoint's deliveries park, as many as a
	// healthy one's share, not a slow one's.
	for i, want := range []admission{parked, parked, parked, overflow} {
		if got := s.admit(c(10+i), at(2), true); got != want {
			t.Errorf("admit #%d to the failing endpoint: got %v, want %v", i, got, want)
		}
	}
	s.done("ep_1", at(0), at(3), true)
	// The last attempt in flight fails too: its slot passes to a parked one.
	next, ok := s.done("ep_1", at(0), at(4), true)
	if !ok || next.ref != c(10).ref {
		t.Fatalf("done (failed, last in flight): got %v, %v; want the first parked", next.ref, ok)
	}
	// It succeeds: the endpoint is healthy again, share 3: the slot passes
	// to the next parked delivery, and a newcomer runs at once.
	first, ok1 := s.done("ep_1", at(4), at(5), false)
	if !ok1 || first.ref != c(11).ref {
		t.Fatalf("done (success): got %v, %v; want the next parked", first.ref, ok1)
	}
	if got := s.admit(c(20), at(5), true); got != runNow {
		t.Errorf("admit after a success with 1 in flight: got %v, want runNow", got)
	}
}

// TestSharesParkEveryNewDeliveryOfAHealthyEndpoint: a held delivery (a
// new message's, in memory already) to a healthy endpoint at its share
// parks whatever the number parked; one claimed from the store, or held
// for a failing or slow endpoint, is left to its lease beyond the park
// limit.
func TestSharesParkEveryNewDeliveryOfAHealthyEndpoint(t *testing.T) {
	at := msAt
	held := func(ep string, i int) claimed {
		r := refTo(ep, i)
		return claimed{ref: r, held: true}
	}
	s := newShares(2, 1, 1, time.Second, func() {})
	for i, want := range []admission{runNow, runNow, parked, parked, parked, parked, parked} {
		if got := s.admit(held("ep_ok", i), at(0), true); got != want {
			t.Errorf("held #%d to the healthy endpoint (share 2): got %v, want %v", i, got, want)
		}
	}
	if got := s.admit(claimed{ref: refTo("ep_ok", 99)}, at(0), true); got != overflow {
		t.Errorf("claimed from the store beyond the park limit: got %v, want overflow", got)
	}

	if got := s.admit(held("ep_bad", 0), at(0), true); got != runNow {
		t.Fatalf("first held to ep_bad: got %v, want runNow", got)
	}
	s.done("ep_bad", at(0), at(1), true) // fails: share 1, park limit 2
	for i, want := range []admission{runNow, parked, parked, overflow} {
		if got := s.admit(held("ep_bad", 10+i), at(2), true); got != want {
			t.Errorf("held #%d to the failing endpoint: got %v, want %v", i, got, want)
		}
	}
}

// TestShedWhatParkedWhileHealthyOnceFailing: held deliveries parked
// beyond the park limit while their endpoint was healthy are shed once it
// fails, down to the limit.
func TestShedWhatParkedWhileHealthyOnceFailing(t *testing.T) {
	at := msAt
	s := newShares(2, 1, 1, time.Second, func() {})
	for i := range 7 { // 2 run, 5 park
		s.admit(claimed{ref: refTo("ep_1", i), held: true}, at(0), true)
	}
	if out := s.shed(at(1)); len(out) != 0 {
		t.Fatalf("shed %d while healthy, want none", len(out))
	}
	s.done("ep_1", at(0), at(2), true) // fails: share 1, still 1 in flight
	out := s.shed(at(3))
	if len(out) != 3 || out[0].ref != refTo("ep_1", 4) || out[2].ref != refTo("ep_1", 6) {
		t.Errorf("shed %v once failing, want the last 3 parked (5 parked, limit 2)", out)
	}
}

// TestSharesOfASlowFailingEndpoint: an endpoint both slow and failing
// gets the smaller of the two shares, and parks as a slow one does.
func TestSharesOfASlowFailingEndpoint(t *testing.T) {
	at := msAt
	c := func(i int) claimed { return claimed{ref: refTo("ep_1", i)} }
	s := newShares(4, 3, 2, time.Second, func() {})
	if got := s.admit(c(0), at(0), true); got != runNow {
		t.Fatalf("first admit: got %v, want runNow", got)
	}
	s.done("ep_1", at(0), at(1500), true) // took 1.5 s and failed
	for i, want := range []admission{runNow, runNow, parked, parked, parked, overflow} {
		if got := s.admit(c(10+i), at(1600), true); got != want {
			t.Errorf("admit #%d to the slow, failing endpoint (shares 3 and 2): got %v, want %v", i, got, want)
		}
	}
}

// TestFailingEndpointRunsOnItsShare: once an endpoint is failing, its
// retries use at most its FailingShare of the workers, while a healthy
// endpoint's deliveries all run.
func TestFailingEndpointRunsOnItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		var failing gauge
		var mu sync.Mutex
		ok := 0
		q, stop := startNext(t, store, func(ctx context.Context, r webhook.Ref, _ *webhook.Loaded) (time.Time, error) {
			if r.EndpointID == "ep_ok" {
				store.done(r)
				mu.Lock()
				ok++
				mu.Unlock()
				return time.Time{}, nil
			}
			failing.attempt(5 * time.Millisecond)
			next := time.Now().Add(time.Hour)
			store.set(r, next) // as RecordAttempt does
			return next, nil
		}, Config{Workers: 8, EndpointShare: 8, FailingShare: 2, Poll: 10 * time.Millisecond})
		defer stop()

		// The first attempt fails: from then on the endpoint is failing.
		store.set(refTo("ep_fail", 0), time.Now())
		time.Sleep(5 * time.Millisecond) // the attempt's length
		synctest.Wait()                  // the queue has recorded the failure
		if _, n := failing.read(); n != 1 {
			t.Fatalf("%d attempts to the failing endpoint ended, want 1", n)
		}
		const n = 30
		for i := 1; i <= n; i++ {
			store.set(refTo("ep_fail", i), time.Now())
			store.set(refTo("ep_ok", i), time.Now())
		}
		q.Dispatch(context.Background(), []webhook.Ref{refTo("ep_ok", 1)})
		// 30 attempts of 5ms at a share of 2: 75ms.
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		_, ended := failing.read()
		if ok != n || ended != n+1 {
			t.Errorf("attempts ended: %d to the healthy endpoint, %d to the failing one; want %d and %d", ok, ended, n, n+1)
		}
		mu.Unlock()
		if peak, _ := failing.read(); peak > 2 {
			t.Errorf("the failing endpoint held %d workers at once, want at most its share of 2", peak)
		}
	})
}
