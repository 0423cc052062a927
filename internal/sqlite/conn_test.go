package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// groupFixture is a store with a scratch table, and a way to hold the
// write connection so that the writes started meanwhile queue up and run
// as one group.
type groupFixture struct {
	t       *testing.T
	s       *Store
	release chan struct{}
	held    chan struct{}
}

func newGroupFixture(t *testing.T) *groupFixture {
	g := &groupFixture{t: t, s: openTest(t, storetest.NewClock(storetest.Epoch)),
		release: make(chan struct{}), held: make(chan struct{})}
	if _, err := g.s.exec(t.Context(), "CREATE TABLE scratch (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return g
}

// hold starts a write that keeps the connection until release is closed,
// and returns its result channel once it holds the connection.
func (g *groupFixture) hold() <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- g.s.inTx(context.Background(), func(tx querier) error {
			close(g.held)
			<-g.release
			_, err := tx.ExecContext(context.Background(), "INSERT INTO scratch VALUES ('holder')")
			return err
		})
	}()
	<-g.held
	return done
}

// queued is the number of writes in the writer's queue, the one in
// progress included.
func (g *groupFixture) queued() int {
	g.s.w.mu.Lock()
	defer g.s.w.mu.Unlock()
	return len(g.s.w.queue)
}

// waitQueued waits until n writes wait behind the one in progress.
func (g *groupFixture) waitQueued(n int) {
	g.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		queued := g.queued() - 1
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%d writes queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (g *groupFixture) keys() map[string]bool {
	g.t.Helper()
	rows, err := g.s.r.QueryContext(g.t.Context(), "SELECT k FROM scratch")
	if err != nil {
		g.t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			g.t.Fatal(err)
		}
		got[k] = true
	}
	return got
}

// finish lets the held write go and waits for it and for the writers of
// wg, reporting the errors they sent to errs.
func (g *groupFixture) finish(holder <-chan error, wg *sync.WaitGroup, errs chan error) {
	g.t.Helper()
	close(g.release)
	if err := <-holder; err != nil {
		g.t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			g.t.Error(err)
		}
	}
}

// orderLog records the order in which writes ran.
type orderLog struct {
	mu    sync.Mutex
	order []string
}

func (o *orderLog) add(k string) {
	o.mu.Lock()
	o.order = append(o.order, k)
	o.mu.Unlock()
}

func (o *orderLog) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.order)
}

func insert(k string) func(tx querier) error {
	return func(tx querier) error {
		_, err := tx.ExecContext(context.Background(), "INSERT INTO scratch VALUES (?)", k)
		return err
	}
}

// TestGroupCommitIsolatesEachWrite: writes that queue behind one in
// progress run as one group; one that fails is rolled back alone, one
// that panics panics in its caller's goroutine and is rolled back alone,
// one whose context ended before its turn is skipped, and the others
// commit.
func TestGroupCommitIsolatesEachWrite(t *testing.T) {
	g := newGroupFixture(t)
	if err := g.s.inTx(t.Context(), insert("existing")); err != nil {
		t.Fatal(err)
	}
	holder := g.hold()

	type result struct {
		err      error
		panicked any
	}
	results := map[string]chan result{}
	start := func(name string, ctx context.Context, fn func(tx querier) error) {
		ch := make(chan result, 1)
		results[name] = ch
		go func() {
			var r result
			defer func() {
				r.panicked = recover()
				ch <- r
			}()
			r.err = g.s.inTx(ctx, fn)
		}()
	}
	boom := errors.New("boom")
	canceled, cancel := context.WithCancel(context.Background())
	start("ok1", context.Background(), insert("ok1"))
	start("fails", context.Background(), func(tx querier) error {
		if err := insert("fails")(tx); err != nil {
			return err
		}
		return boom // after its insert: the insert must go
	})
	start("panics", context.Background(), func(tx querier) error {
		if err := insert("panics")(tx); err != nil {
			return err
		}
		panic("write panicked")
	})
	start("canceled", canceled, insert("canceled"))
	start("dup", context.Background(), insert("existing")) // a constraint error in the group
	start("ok2", context.Background(), insert("ok2"))
	g.waitQueued(6)
	cancel()
	close(g.release)

	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	want := map[string]func(result) bool{
		"ok1":      func(r result) bool { return r.err == nil && r.panicked == nil },
		"ok2":      func(r result) bool { return r.err == nil && r.panicked == nil },
		"fails":    func(r result) bool { return errors.Is(r.err, boom) },
		"panics":   func(r result) bool { return r.panicked == "write panicked" },
		"canceled": func(r result) bool { return errors.Is(r.err, context.Canceled) },
		"dup":      func(r result) bool { return r.err != nil && r.panicked == nil },
	}
	for name, ok := range want {
		select {
		case r := <-results[name]:
			if !ok(r) {
				t.Errorf("%s: got err %v, panic %v", name, r.err, r.panicked)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no result", name)
		}
	}
	got := g.keys()
	for k, present := range map[string]bool{"existing": true, "holder": true, "ok1": true, "ok2": true, "fails": false, "panics": false, "canceled": false} {
		if got[k] != present {
			t.Errorf("row %q present = %v, want %v (rows %v)", k, got[k], present, got)
		}
	}
}

// TestGroupCommitUnderLoad: many concurrent writers each return once
// their own write is stored, and every write is.
func TestGroupCommitUnderLoad(t *testing.T) {
	g := newGroupFixture(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			k := "k" + string(rune('A'+i%26)) + string(rune('a'+i/26))
			if err := g.s.inTx(context.Background(), insert(k)); err != nil {
				errs <- err
				return
			}
			// Returned: the write is visible to a reader.
			var found int
			if err := g.s.r.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM scratch WHERE k = ?", k).Scan(&found); err != nil || found != 1 {
				errs <- errors.New("write of " + k + " not visible after it returned")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(g.keys()); got != n {
		t.Errorf("%d rows, want %d", got, n)
	}
}

// TestGroupCommitLetsFirstWritesGoFirst: a write that goes first
// (doFirst) commits, and returns, before the others queued with it run,
// whether it queued behind them or ahead of them (then it leads the group
// and must hand the others on rather than run them).
func TestGroupCommitLetsFirstWritesGoFirst(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		t.Run(map[bool]string{false: "queued last", true: "queued first"}[ahead], func(t *testing.T) {
			g := newGroupFixture(t)
			holder := g.hold()
			firstReturned := make(chan struct{})
			var log orderLog
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			queueFirst := func() {
				wg.Go(func() {
					err := g.s.w.doFirst(context.Background(), func(tx querier) error {
						log.add("first")
						return insert("first")(tx)
					})
					close(firstReturned)
					errs <- err
				})
			}
			if ahead {
				queueFirst()
				g.waitQueued(1)
			}
			for _, k := range []string{"a", "b", "c"} {
				wg.Go(func() {
					errs <- g.s.inTx(context.Background(), func(tx querier) error {
						log.add(k)
						// Were the first write held up behind this one, it
						// could not have returned yet.
						select {
						case <-firstReturned:
						case <-time.After(2 * time.Second):
							return errors.New("the first write had not returned while " + k + " ran")
						}
						return insert(k)(tx)
					})
				})
			}
			if !ahead {
				g.waitQueued(3)
				queueFirst()
			}
			g.waitQueued(4)
			g.finish(holder, &wg, errs)
			if order := log.get(); len(order) != 4 || order[0] != "first" {
				t.Errorf("write order %v, want first before a, b, c", order)
			}
			if got := g.keys(); len(got) != 5 {
				t.Errorf("rows %v, want holder, first, a, b, c", got)
			}
		})
	}
}

// TestGroupCommitFirstWritesDoNotStarveTheOthers: a leader that commits
// the first writes queued during its group does so once, then hands the
// lead on, so that a stream of first writes (each queuing the next while
// it runs) cannot hold up a write queued before them.
func TestGroupCommitFirstWritesDoNotStarveTheOthers(t *testing.T) {
	g := newGroupFixture(t)
	holder := g.hold()
	var log orderLog
	const chain = 20
	errs := make(chan error, chain+1)
	var wg sync.WaitGroup
	var first func(i int)
	first = func(i int) {
		wg.Go(func() {
			errs <- g.s.w.doFirst(context.Background(), func(tx querier) error {
				k := fmt.Sprintf("f%02d", i)
				log.add(k)
				if i+1 < chain {
					n := g.queued()
					first(i + 1)
					for g.queued() <= n { // the next one is queued while this one commits
						time.Sleep(time.Millisecond)
					}
				}
				return insert(k)(tx)
			})
		})
	}
	wg.Go(func() {
		errs <- g.s.inTx(context.Background(), func(tx querier) error {
			log.add("other")
			return insert("other")(tx)
		})
	})
	g.waitQueued(1)
	first(0)
	g.waitQueued(2)
	g.finish(holder, &wg, errs)
	order := log.get()
	if i := slices.Index(order, "other"); i < 0 || i > 3 {
		t.Errorf("write order %v: the other write ran after %d first writes, want at most 3", order, i)
	}
	if got := len(g.keys()); got != chain+2 {
		t.Errorf("%d rows, want %d", got, chain+2)
	}
}
