package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// groupFixture is a store with a scratch table and a counter, and a way
// to hold the write connection so that the writes started meanwhile queue
// up and run as one group.
type groupFixture struct {
	t       *testing.T
	s       *Store
	release chan struct{}
	held    chan struct{}
}

func newGroupFixture(t *testing.T) *groupFixture {
	return groupFixtureOn(t, openTest(t, storetest.NewClock(storetest.Epoch)))
}

// groupFixtureOn is newGroupFixture on a store already open.
func groupFixtureOn(t *testing.T, s *Store) *groupFixture {
	g := &groupFixture{t: t, s: s, release: make(chan struct{}), held: make(chan struct{})}
	for _, stmt := range []string{
		"CREATE TABLE scratch (k TEXT PRIMARY KEY)",
		"CREATE TABLE counter (n INTEGER NOT NULL)",
		"INSERT INTO counter VALUES (0)",
	} {
		if _, err := g.s.exec(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
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

// counter is the value of the counter row.
func (g *groupFixture) counter() int {
	g.t.Helper()
	var n int
	if err := g.s.r.QueryRowContext(g.t.Context(), "SELECT n FROM counter").Scan(&n); err != nil {
		g.t.Fatal(err)
	}
	return n
}

// savepointsRan reports whether the writer ever ran a SAVEPOINT: it
// prepares each statement on first use and keeps it. Call it once every
// write has returned.
func (g *groupFixture) savepointsRan() bool {
	_, ok := g.s.w.stmts["SAVEPOINT w"]
	return ok
}

// writeResult is what a write returned, or the value it panicked with.
type writeResult struct {
	err      error
	panicked any
}

// runGroup runs the writes as one group, in this order: it holds the
// connection, starts each write once the ones before it have queued, lets
// the held write go, and returns the writes' results once all have
// returned. A fixture runs one group.
func (g *groupFixture) runGroup(writes ...func() error) []writeResult {
	g.t.Helper()
	holder := g.hold()
	chans := make([]chan writeResult, len(writes))
	for i, write := range writes {
		ch := make(chan writeResult, 1)
		chans[i] = ch
		go func() {
			var r writeResult
			defer func() {
				r.panicked = recover()
				ch <- r
			}()
			r.err = write()
		}()
		g.waitQueued(i + 1)
	}
	close(g.release)
	if err := <-holder; err != nil {
		g.t.Fatalf("holder: %v", err)
	}
	results := make([]writeResult, len(writes))
	for i, ch := range chans {
		select {
		case results[i] = <-ch:
		case <-time.After(5 * time.Second):
			g.t.Fatalf("write %d: no result", i)
		}
	}
	return results
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

// countedInsert returns a write that counts its runs in calls, inserts k
// and adds one to the counter, then returns fail (nil: it succeeds).
func countedInsert(k string, calls *atomic.Int32, fail error) func(tx querier) error {
	return func(tx querier) error {
		calls.Add(1)
		if err := insert(k)(tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(context.Background(), "UPDATE counter SET n = n + 1"); err != nil {
			return err
		}
		return fail
	}
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
// commit (the group's first run, without savepoints, fails; it runs again
// with them).
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

// TestGroupCommitWithoutSavepoints: a group whose writes all succeed runs
// each write's function once, with no savepoint, and commits them all.
func TestGroupCommitWithoutSavepoints(t *testing.T) {
	g := newGroupFixture(t)
	const n = 5
	var calls [n]atomic.Int32
	writes := make([]func() error, n)
	for i := range n {
		writes[i] = func() error {
			return g.s.inTx(context.Background(), countedInsert(fmt.Sprint("k", i), &calls[i], nil))
		}
	}
	for i, r := range g.runGroup(writes...) {
		if r.err != nil || r.panicked != nil {
			t.Errorf("write %d: got err %v, panic %v", i, r.err, r.panicked)
		}
	}
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Errorf("write %d ran %d times, want once", i, c)
		}
	}
	if g.savepointsRan() {
		t.Error("the group ran savepoints; none of its writes failed")
	}
	if got := g.counter(); got != n {
		t.Errorf("counter = %d, want %d", got, n)
	}
	if got := len(g.keys()); got != n+1 {
		t.Errorf("%d rows, want %d (the writes' and the holder's)", got, n+1)
	}
}

// TestGroupCommitRunsAgainWhenAWriteFails: when a write of a group fails,
// the group is rolled back and runs again with savepoints: the writes
// that ran before the failing one run twice, it too, the ones after it
// once (the first run stops at the failure); the failing write leaves
// nothing and the others' effects are there once each.
func TestGroupCommitRunsAgainWhenAWriteFails(t *testing.T) {
	g := newGroupFixture(t)
	boom := errors.New("boom")
	names := []string{"ok1", "ok2", "fails", "ok3"}
	var calls [4]atomic.Int32
	writes := make([]func() error, len(names))
	for i, k := range names {
		var fail error
		if k == "fails" {
			fail = boom // after its insert and its count: both must go
		}
		writes[i] = func() error { return g.s.inTx(context.Background(), countedInsert(k, &calls[i], fail)) }
	}
	results := g.runGroup(writes...)
	wantErrs := []error{nil, nil, boom, nil}
	wantCalls := []int32{2, 2, 2, 1}
	for i, k := range names {
		if r := results[i]; r.panicked != nil || !errors.Is(r.err, wantErrs[i]) {
			t.Errorf("%s: got err %v, panic %v; want err %v", k, r.err, r.panicked, wantErrs[i])
		}
		if c := calls[i].Load(); c != wantCalls[i] {
			t.Errorf("%s ran %d times, want %d", k, c, wantCalls[i])
		}
	}
	if !g.savepointsRan() {
		t.Error("no savepoint ran: the group was not run again with them")
	}
	got := g.keys()
	for k, present := range map[string]bool{"ok1": true, "ok2": true, "ok3": true, "fails": false} {
		if got[k] != present {
			t.Errorf("row %q present = %v, want %v (rows %v)", k, got[k], present, got)
		}
	}
	if n := g.counter(); n != 3 {
		t.Errorf("counter = %d, want 3 (once for each write that succeeded)", n)
	}
}

// TestGroupCommitPanicInAGroup: a write that panics panics in its own
// caller's goroutine, once, and leaves nothing; it is not run again, the
// others are (with savepoints) and commit, and their callers see no
// panic.
func TestGroupCommitPanicInAGroup(t *testing.T) {
	g := newGroupFixture(t)
	var calls [3]atomic.Int32
	results := g.runGroup(
		func() error { return g.s.inTx(context.Background(), countedInsert("ok1", &calls[0], nil)) },
		func() error {
			return g.s.inTx(context.Background(), func(tx querier) error {
				if err := countedInsert("panics", &calls[1], nil)(tx); err != nil {
					return err
				}
				panic("write panicked")
			})
		},
		func() error { return g.s.inTx(context.Background(), countedInsert("ok2", &calls[2], nil)) },
	)
	for i, wantPanic := range []any{nil, "write panicked", nil} {
		if r := results[i]; r.err != nil || r.panicked != wantPanic {
			t.Errorf("write %d: got err %v, panic %v; want panic %v", i, r.err, r.panicked, wantPanic)
		}
	}
	for i, want := range []int32{2, 1, 1} {
		if c := calls[i].Load(); c != want {
			t.Errorf("write %d ran %d times, want %d", i, c, want)
		}
	}
	got := g.keys()
	for k, present := range map[string]bool{"ok1": true, "ok2": true, "panics": false} {
		if got[k] != present {
			t.Errorf("row %q present = %v, want %v (rows %v)", k, got[k], present, got)
		}
	}
	if n := g.counter(); n != 2 {
		t.Errorf("counter = %d, want 2", n)
	}
}

// TestGroupCommitStoreWritesRunTwice: Store methods whose function runs
// twice, in a group where a write after theirs fails, return what the
// second run found, not what both runs did together.
func TestGroupCommitStoreWritesRunTwice(t *testing.T) {
	boom := errors.New("boom")
	failing := func(g *groupFixture, also func()) func() error {
		return func() error {
			return g.s.inTx(context.Background(), func(querier) error {
				if also != nil {
					also()
				}
				return boom
			})
		}
	}
	checkFailed := func(t *testing.T, r writeResult) {
		t.Helper()
		if !errors.Is(r.err, boom) {
			t.Errorf("the failing write: got err %v, panic %v", r.err, r.panicked)
		}
	}

	t.Run("MarkDispatched", func(t *testing.T) {
		f := newFixture(t)
		g := groupFixtureOn(t, f.s)
		msg := f.message(time.Hour)
		d := f.delivery(msg)
		ref := webhook.Ref{AppID: d.AppID, MsgID: d.MsgID, EndpointID: d.EndpointID, Run: d.Run}
		results := g.runGroup(
			func() error { return f.s.MarkDispatched(f.ctx, ref) },
			failing(g, nil),
		)
		if results[0].err != nil || results[0].panicked != nil {
			t.Errorf("MarkDispatched: got err %v, panic %v", results[0].err, results[0].panicked)
		}
		checkFailed(t, results[1])
		if !f.delivery(msg).Dispatched {
			t.Error("the delivery is not marked dispatched")
		}
	})

	t.Run("PurgeExpired", func(t *testing.T) {
		f := newFixture(t)
		g := groupFixtureOn(t, f.s)
		for _, k := range []string{"a", "b", "c"} {
			if _, err := f.s.BeginIdempotent(f.ctx, k, "", f.clock.Now().Add(time.Hour), time.Time{}); err != nil {
				t.Fatalf("BeginIdempotent: %v", err)
			}
		}
		var n int
		results := g.runGroup(
			func() (err error) {
				n, err = f.s.PurgeExpired(f.ctx, f.clock.Now().Add(2*time.Hour), 10)
				return err
			},
			failing(g, nil),
		)
		if results[0].err != nil || results[0].panicked != nil {
			t.Errorf("PurgeExpired: got err %v, panic %v", results[0].err, results[0].panicked)
		}
		checkFailed(t, results[1])
		if n != 3 {
			t.Errorf("PurgeExpired = %d, want 3 (the 3 expired idempotency records)", n)
		}
	})

	t.Run("ClaimDue", func(t *testing.T) {
		f := newFixture(t)
		g := groupFixtureOn(t, f.s)
		var want []string
		for range 3 {
			want = append(want, ref(f.message(time.Hour), 0))
		}
		var refs []webhook.Ref
		results := g.runGroup(
			func() (err error) {
				refs, err = f.s.ClaimDue(f.ctx, f.clock.Now(), time.Minute, 10)
				return err
			},
			failing(g, nil),
		)
		if results[0].err != nil || results[0].panicked != nil {
			t.Errorf("ClaimDue: got err %v, panic %v", results[0].err, results[0].panicked)
		}
		checkFailed(t, results[1])
		if got := runs(refs); !slices.Equal(got, want) {
			t.Errorf("ClaimDue = %v, want %v, each once", got, want)
		}
		if again := f.claim(f.clock.Now(), time.Minute, 10); len(again) != 0 {
			t.Errorf("ClaimDue after the group = %v, want none: the group claimed them all", again)
		}
	})

	// The second run may see another state than the first: here the
	// write that claimed the key first is skipped in it (its context
	// ended meanwhile), so the second BeginIdempotent claims the key
	// instead of finding it claimed, and must not return the record its
	// first run found.
	t.Run("BeginIdempotent", func(t *testing.T) {
		f := newFixture(t)
		g := groupFixtureOn(t, f.s)
		first, cancelFirst := context.WithCancel(f.ctx)
		defer cancelFirst()
		expires, staleBefore := f.clock.Now().Add(time.Hour), f.clock.Now().Add(-time.Minute)
		var rec *webhook.IdempotencyRecord
		results := g.runGroup(
			func() error {
				_, err := f.s.BeginIdempotent(first, "k", "", expires, staleBefore)
				return err
			},
			func() (err error) {
				rec, err = f.s.BeginIdempotent(f.ctx, "k", "", expires, staleBefore)
				return err
			},
			failing(g, cancelFirst),
		)
		if !errors.Is(results[0].err, context.Canceled) {
			t.Errorf("the first BeginIdempotent: got err %v, panic %v; want context.Canceled", results[0].err, results[0].panicked)
		}
		if results[1].err != nil || results[1].panicked != nil {
			t.Errorf("the second BeginIdempotent: got err %v, panic %v", results[1].err, results[1].panicked)
		}
		checkFailed(t, results[2])
		if rec != nil {
			t.Errorf("the second BeginIdempotent = %+v, want nil: it claimed the key", rec)
		}
		if got, err := f.s.BeginIdempotent(f.ctx, "k", "", expires, staleBefore); err != nil || got == nil {
			t.Errorf("BeginIdempotent after the group = %+v, %v; want the claim", got, err)
		}
	})
}

// TestGroupCommitGoesOnPastAWriteThatWroteNothing: a write that fails
// before it writes (noWrites: a key taken, an event id used) costs its
// group no rollback and no second run: every write runs once, no
// savepoint runs, the others commit, and its caller gets its error.
func TestGroupCommitGoesOnPastAWriteThatWroteNothing(t *testing.T) {
	g := newGroupFixture(t)
	taken := webhook.Conflict("taken") // the store's verdict: noWrites marks only those
	names := []string{"ok1", "checks", "ok2"}
	var calls [3]atomic.Int32
	writes := make([]func() error, len(names))
	for i, k := range names {
		fn := countedInsert(k, &calls[i], nil)
		if k == "checks" {
			fn = func(querier) error { calls[i].Add(1); return noWrites(taken) }
		}
		writes[i] = func() error { return g.s.inTx(context.Background(), fn) }
	}
	results := g.runGroup(writes...)
	for i, k := range names {
		want := error(nil)
		if k == "checks" {
			want = taken
		}
		if r := results[i]; r.panicked != nil || r.err != want {
			t.Errorf("%s: got err %v, panic %v; want err %v", k, r.err, r.panicked, want)
		}
		if c := calls[i].Load(); c != 1 {
			t.Errorf("%s ran %d times, want 1", k, c)
		}
	}
	if g.savepointsRan() {
		t.Error("savepoints ran: the group was run again")
	}
	if got := g.keys(); !got["ok1"] || !got["ok2"] {
		t.Errorf("rows %v, want ok1 and ok2", got)
	}
}
