package localqueue

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

var (
	_ delivery.Holder  = (*Queue)(nil)
	_ delivery.Polling = (*Queue)(nil)
)

// holdCfg is a configuration that holds new deliveries.
func holdCfg(workers, hold int) Config {
	return Config{Workers: workers, Lease: time.Minute, AttemptTimeout: 10 * time.Second, Poll: 10 * time.Millisecond, Hold: hold}
}

func TestHeldDeliveriesRunWithoutAClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}} // the store knows nothing of them: only memory does
		got := make(chan *webhook.Loaded, 2)
		q, stop := startNext(t, store, func(_ context.Context, r webhook.Ref, l *webhook.Loaded) (time.Time, error) {
			if l == nil || l.Delivery.Ref() != r {
				t.Errorf("attempt of %v got %+v, want what was handed over with it", r, l)
			}
			got <- l
			return time.Time{}, nil
		}, holdCfg(2, 4))
		defer stop()
		now := time.Now()
		until, take, ok := q.Hold(2, now)
		if !ok || !until.Equal(now.Add(time.Minute)) {
			t.Fatalf("Hold(2): got %v, %v; want held until a lease (1m) from now", until, ok)
		}
		held := loaded(ref(0), ref(1))
		take(held)
		seen := map[*webhook.Loaded]bool{}
		for range 2 {
			select {
			case l := <-got:
				seen[l] = true
			case <-time.After(5 * time.Second):
				t.Fatalf("held deliveries attempted: %v, want both", seen)
			}
		}
		if !seen[&held[0]] || !seen[&held[1]] {
			t.Errorf("attempted %v, want %v and %v", seen, &held[0], &held[1])
		}
	})
}

func TestHoldHasBoundedRoom(t *testing.T) {
	q := New(&memStore{due: map[webhook.Ref]time.Time{}}, nil, webhook.SystemClock{}, nil, holdCfg(1, 3))
	now := time.Now()
	if _, _, ok := q.Hold(4, now); ok {
		t.Fatal("Hold(4) with room for 3: got ok")
	}
	_, take, ok := q.Hold(2, now)
	if !ok {
		t.Fatal("Hold(2) with room for 3: refused")
	}
	if _, _, ok := q.Hold(2, now); ok {
		t.Fatal("Hold(2) with 1 left: got ok")
	}
	take(loaded(ref(0))) // one stored, one room back; 1 held, not started
	if _, _, ok := q.Hold(3, now); ok {
		t.Fatal("Hold(3) with 1 held: got ok")
	}
	_, take2, ok := q.Hold(2, now)
	if !ok {
		t.Fatal("Hold(2) with 1 held: refused")
	}
	take2(nil) // not stored: the room comes back
	if _, _, ok := q.Hold(2, now); !ok {
		t.Fatal("Hold(2) after take(nil): refused")
	}

	noTimeout := New(&memStore{}, nil, webhook.SystemClock{}, nil, Config{Lease: time.Minute})
	if _, _, ok := noTimeout.Hold(1, now); ok {
		t.Error("Hold without AttemptTimeout: got ok, want refused (an attempt could outlast the claim)")
	}
}

// TestHeldPayloadsAreBounded: held deliveries keep what Publish read
// only within HoldBytes; beyond, they keep their reference alone (the
// attempt reads the store), and the bytes come back when attempts end.
func TestHeldPayloadsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		with, without := 0, 0
		cfg := holdCfg(1, 8)
		cfg.HoldBytes = 1500 // one 1 KiB payload
		release := make(chan struct{})
		q, stop := startNext(t, &memStore{due: map[webhook.Ref]time.Time{}}, func(_ context.Context, r webhook.Ref, l *webhook.Loaded) (time.Time, error) {
			<-release
			mu.Lock()
			defer mu.Unlock()
			if l != nil {
				with++
			} else {
				without++
			}
			return time.Time{}, nil
		}, cfg)
		defer stop()
		_, take, ok := q.Hold(3, time.Now())
		if !ok {
			t.Fatal("Hold refused")
		}
		take(loaded(ref(0), ref(1), ref(2)))
		if got := q.heldBytes.Load(); got != 1024 {
			t.Errorf("held payload bytes %d, want 1024 (one payload within 1500)", got)
		}
		close(release)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if with != 1 || without != 2 {
			t.Errorf("attempts with what Publish read: %d, without: %d; want 1 and 2", with, without)
		}
		if b, n := q.heldBytes.Load(), q.holding.Load(); b != 0 || n != 0 {
			t.Errorf("after the attempts: %d payload bytes and %d deliveries held, want none", b, n)
		}
	})
}

// TestABurstToOneEndpointDoesNotStopTheOthers: new deliveries to one
// endpoint far beyond its share park without counting against the
// claims, so a delivery due to another endpoint is claimed and attempted
// while that burst still waits.
func TestABurstToOneEndpointDoesNotStopTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		release := make(chan struct{})
		other := make(chan struct{})
		cfg := holdCfg(4, 64)
		cfg.EndpointShare = 2
		cfg.SlowAfter = time.Hour // the burst's endpoint stays healthy: nothing is shed
		q, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			if r.EndpointID == "ep_other" {
				store.done(r)
				close(other)
				return nil
			}
			<-release // the burst's endpoint answers only at the end
			return nil
		}, cfg)
		defer stop()
		defer close(release) // before stop, which waits for the attempts
		burst := make([]webhook.Ref, 40)
		for i := range burst {
			burst[i] = refTo("ep_busy", i)
		}
		_, take, ok := q.Hold(len(burst), time.Now())
		if !ok {
			t.Fatal("Hold refused")
		}
		take(loaded(burst...))
		synctest.Wait()
		if n := len(q.held); n != 0 {
			t.Fatalf("%d held deliveries not taken, want all taken: 2 running, 38 parked", n)
		}

		late := refTo("ep_other", 0)
		store.set(late, time.Now())
		q.Dispatch(context.Background(), []webhook.Ref{late})
		synctest.Wait()
		select {
		case <-other:
		default:
			t.Fatal("the delivery to another endpoint was not attempted while the burst waited")
		}
	})
}

// TestHeldRoomLastsUntilTheAttemptEnds: a held delivery keeps its room
// while its attempt runs (and while it is parked), so that the room of
// Hold bounds every held delivery in memory.
func TestHeldRoomLastsUntilTheAttemptEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan webhook.Ref, 2)
		q, stop := start(t, &memStore{due: map[webhook.Ref]time.Time{}}, func(_ context.Context, r webhook.Ref) error {
			started <- r
			<-release
			return nil
		}, holdCfg(2, 2))
		defer stop()
		var once sync.Once
		unblock := func() { once.Do(func() { close(release) }) }
		defer unblock() // before stop, which waits for the attempts
		_, take, ok := q.Hold(2, time.Now())
		if !ok {
			t.Fatal("Hold(2) with room for 2: refused")
		}
		take(loaded(ref(0), ref(1)))
		<-started
		<-started
		if _, _, ok := q.Hold(1, time.Now()); ok {
			t.Fatal("Hold(1) while both held attempts run: got ok, want refused")
		}
		unblock()
		synctest.Wait()
		if _, _, ok := q.Hold(1, time.Now()); !ok {
			t.Error("Hold(1) once the held attempts ended: refused")
		}
	})
}

func TestHoldRefusesOnceRunHasReturned(t *testing.T) {
	q, stop := start(t, &memStore{due: map[webhook.Ref]time.Time{}}, func(context.Context, webhook.Ref) error { return nil }, holdCfg(1, 4))
	stop()
	if _, _, ok := q.Hold(1, time.Now()); ok {
		t.Error("Hold after Run returned: got ok, want refused (nobody would attempt it before its claim ends)")
	}
}

// TestHeldDeliveriesGoFirst: with one worker busy and retries ready, new
// deliveries are attempted before most of the retries, and the retries
// still get every fourth turn.
func TestHeldDeliveriesGoFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		for i := range 6 {
			store.set(webhook.Ref{AppID: "app_1", MsgID: "retry", EndpointID: "ep_r", Run: i}, time.Now())
		}
		release := make(chan struct{})
		var mu sync.Mutex
		var order []string
		first := true
		q, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			mu.Lock()
			wait := first
			first = false
			mu.Unlock()
			if wait {
				<-release // the worker is busy while the others queue
			}
			mu.Lock()
			order = append(order, r.MsgID)
			mu.Unlock()
			store.done(r)
			return nil
		}, holdCfg(1, 8))
		defer stop()
		synctest.Wait() // the first retry holds the only worker
		_, take, ok := q.Hold(3, time.Now())
		if !ok {
			t.Fatal("Hold refused")
		}
		take(loaded(
			webhook.Ref{AppID: "app_1", MsgID: "new", EndpointID: "ep_a"},
			webhook.Ref{AppID: "app_1", MsgID: "new", EndpointID: "ep_b"},
			webhook.Ref{AppID: "app_1", MsgID: "new", EndpointID: "ep_c"},
		))
		synctest.Wait() // the loop has filled ready with retries
		close(release)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(order) != 9 {
			t.Fatalf("attempts %v, want 9", order)
		}
		// order[0] is the retry that held the worker; then picks 1, 2, 3, 4:
		// held, held, a retry (every fourth pick), held.
		want := []string{"retry", "new", "new", "retry", "new"}
		for i, w := range want {
			if order[i] != w {
				t.Fatalf("attempt order %v, want it to start %v", order, want)
			}
		}
	})
}

// TestHeldDeliveryTooOldWaitsInTheStore: a held delivery that waited so
// long that its attempt could outlast its claim is not attempted from
// memory: it goes back to the store to wait for its endpoint, is claimed
// back from there at once (the endpoint has room) and attempted then —
// without what Publish read, which only a held delivery carries — without
// waiting for its claim to end.
func TestHeldDeliveryTooOldWaitsInTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		var mu sync.Mutex
		fromMemory := map[webhook.Ref]bool{}
		q, stop := startNext(t, store, func(_ context.Context, r webhook.Ref, l *webhook.Loaded) (time.Time, error) {
			mu.Lock()
			fromMemory[r] = l != nil
			mu.Unlock()
			store.done(r)
			return time.Time{}, nil
		}, holdCfg(1, 4))
		defer stop()
		// Held 55 s ago with a 1 min claim and a 10 s attempt budget.
		old := time.Now().Add(-55 * time.Second)
		store.set(ref(0), old.Add(time.Minute)) // as Publish stored it
		_, takeOld, _ := q.Hold(1, old)
		_, takeNew, _ := q.Hold(1, time.Now())
		takeOld(loaded(ref(0)))
		takeNew(loaded(ref(1)))
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if fromMemory[ref(0)] || !fromMemory[ref(1)] {
			t.Errorf("attempted from memory: %v; want only the fresh %v", fromMemory, ref(1))
		}
		if store.waitCalls() == 0 {
			t.Error("the old held delivery was attempted without going back to the store")
		}
	})
}

// TestStopAttemptsNothingMore: deliveries held or claimed but not
// attempted when the queue stops are not attempted; they stay claimed in
// the store, for the next start to release.
func TestStopAttemptsNothingMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &memStore{due: map[webhook.Ref]time.Time{}}
		busy := make(chan struct{})
		var rec record
		q, stop := start(t, store, func(_ context.Context, r webhook.Ref) error {
			if rec.add(r); r == ref(0) {
				<-busy // the only worker is busy while the rest waits
			}
			store.done(r)
			return nil
		}, holdCfg(1, 8))
		store.set(ref(0), time.Now())
		q.Dispatch(context.Background(), []webhook.Ref{ref(0)})
		synctest.Wait()
		_, take, ok := q.Hold(2, time.Now())
		if !ok {
			t.Fatal("Hold refused")
		}
		take(loaded(ref(10), ref(11)))

		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		synctest.Wait() // Run's context has ended: stop waits for it
		close(busy)
		<-stopped
		if refs, _ := rec.read(); len(refs) != 1 {
			t.Errorf("attempted %v after the stop began, want only %v", refs, ref(0))
		}
		if _, _, ok := q.Hold(1, time.Now()); ok {
			t.Error("Hold after stop: got ok")
		}
	})
}
