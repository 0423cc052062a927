package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Group commit.
//
// Every write runs on one connection. A caller hands its write (a
// function, inTx) to the writer, which queues it. The caller at the head
// of the queue is the leader: it takes every write queued (its own
// first), runs them in one transaction, commits once — one WAL append and
// one fsync for the whole group instead of one per write — and wakes the
// others, then hands the lead to the next caller in the queue, if any. A
// write returns only after the commit that made it durable, so
// synchronous=FULL still means what it says. Under load the groups grow
// by themselves (writes queue while a commit is being synced); alone, a
// write runs in its caller's goroutine with no hand-off at all.
//
// A write whose function fails (an error or a panic) leaves nothing, and
// the others of its group still commit. The group runs optimistically
// first: BEGIN IMMEDIATE, each write's function, COMMIT, with no
// savepoint — a savepoint costs three statements, and SQLite copies every
// page first changed inside it to the sub-journal, which a group of
// writes that all succeed (nearly always) does not need. When a function
// fails, that pass stops: the whole transaction is rolled back and the
// group runs again, each write in its own SAVEPOINT, so that one that
// fails is rolled back to its savepoint, alone. (A group of one, or whose
// failing write is the only one to run, is not run again: its failure
// stands.) In that second run every write runs from the start, the failing
// one too, and its result there is the one returned: it may differ from
// the first run's, if a write before it now fails, but it is the result of
// a valid serial order, the one committed. A write that panicked is not
// run again: its caller gets the panic (in its own goroutine, as if it had
// run the function itself), and the others run again without it. An
// error that ends the transaction (I/O error, disk full, a failed COMMIT)
// fails the whole group, in either run.
//
// So a write's function may run twice, and must be written for it: it
// sets, not accumulates, what it returns — it assigns its results to the
// variables it captures (resetting them first when a path leaves them
// alone), never appends to a slice declared outside it or adds to an outer
// counter, and does no other side effect (a channel send, a counter, a log
// line) that a second run would repeat. Only the results of its last run
// count.
//
// A write may ask to go first (doFirst: the API's CreateMessage, whose
// caller is waiting to answer a request). When a group has both kinds,
// the leader commits the first ones on their own and lets their callers
// go before it runs the rest: a message is not held up behind a batch of
// attempt records. A leader that goes first leaves the rest to the next
// leader and returns; one that does not also commits, after its group,
// the first writes that queued meanwhile (once), rather than have them
// wait for a hand-off. The writes of a group are concurrent (none has
// returned), so committing some before others is a valid order.
//
// Statements in a group are not canceled by their caller's context: SQLite
// rolls back the whole transaction when an INSERT, UPDATE or DELETE is
// interrupted, which would undo the other callers' writes. A caller whose
// context ends before its turn is skipped; once started, a write (a
// handful of statements) runs to the end. In a group that runs again, a
// write whose context ended meanwhile is skipped in the second run:
// nothing of its first run remains, and its caller gets the context's
// error.

// maxGroup bounds the writes committed together, and so the time a
// group holds the write lock.
const maxGroup = 256

// maxStmts bounds each connection's cache of prepared statements; beyond
// it statements are prepared per use. The Store's statements are a fixed
// set, well under it; lists with IN (...) filters of varying length are
// the only open-ended ones.
const maxStmts = 512

var errClosed = errors.New("sqlite: store is closed")

// writeOp is one caller's write, waiting in the queue.
type writeOp struct {
	ctx   context.Context
	fn    func(tx querier) error
	err   error
	panic any
	done  bool          // set (under writer.mu) once committed or failed
	wake  chan struct{} // signaled when done, or when the op leads
	first bool          // commit ahead of the rest of its group

	// batch, when set, runs this write together with the writes of the
	// same kind next to it in its group (commitAll), with item its
	// part; fn runs it alone (commitEach, or a run of one).
	batch *batchKind
	item  any
}

// A batchKind is a kind of write that costs less per write when the
// writes of a group run together, in fewer statements (RecordAttempt's:
// one INSERT of all their attempts). run gets the items of a run of
// consecutive writes of the kind, in group order, and must be
// equivalent to their fns run one after another. It returns each write's
// error — nil, or that of a write that failed having written nothing —
// or an error that fails the pass: the group then runs again, each write
// through its own fn (commitEach), which tells which one failed. Like
// fn, run may run more than once, and must set, not accumulate, what it
// returns.
type batchKind struct {
	run func(tx querier, items []any) ([]error, error)
}

// writer owns the write connection. Only the leader of the moment uses
// conn and stmts.
type writer struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt

	mu     sync.Mutex
	queue  []*writeOp // waiting; queue[0] leads
	closed bool
	idle   chan struct{} // closed when closed and the queue is empty
}

func newWriter(conn *sql.Conn) *writer {
	return &writer{conn: conn, stmts: map[string]*sql.Stmt{}, idle: make(chan struct{})}
}

// do runs fn in a write transaction and returns once that transaction
// has committed (nil) or fn's error, or the commit's. fn may run more
// than once (see above); it must set, not accumulate, what it returns.
func (w *writer) do(ctx context.Context, fn func(tx querier) error) error {
	return w.enqueue(&writeOp{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)})
}

// doFirst is do for a write that someone waits on: it commits ahead of
// the other writes of its group.
func (w *writer) doFirst(ctx context.Context, fn func(tx querier) error) error {
	return w.enqueue(&writeOp{ctx: ctx, fn: fn, wake: make(chan struct{}, 1), first: true})
}

// doBatch is do for a write of a batch kind: with others of its kind
// next to it in its group, kind.run runs item with theirs; alone, fn runs
// it.
func (w *writer) doBatch(ctx context.Context, kind *batchKind, item any, fn func(tx querier) error) error {
	return w.enqueue(&writeOp{ctx: ctx, fn: fn, wake: make(chan struct{}, 1), batch: kind, item: item})
}

func (w *writer) enqueue(op *writeOp) error {
	if err := op.ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed
	}
	w.queue = append(w.queue, op)
	leads := len(w.queue) == 1
	w.mu.Unlock()
	if !leads {
		<-op.wake
		w.mu.Lock()
		done := op.done
		w.mu.Unlock()
		if !done {
			w.lead() // op is at the head now
		}
	} else {
		w.lead()
	}
	if op.panic != nil {
		panic(op.panic)
	}
	return op.err
}

// lead commits the writes queued, from the head (the caller's own), and
// passes the lead on. The writes that go first commit in a transaction
// of their own, ahead of the others. A caller that goes first returns
// as soon as that is done, handing the others to the next leader; a
// caller that does not commits them, then the first writes that queued
// meanwhile, since it is running already and a hand-off would make them
// wait for another goroutine to be scheduled.
func (w *writer) lead() {
	w.mu.Lock()
	caller := w.queue[0]
	group := append([]*writeOp(nil), w.queue[:min(len(w.queue), maxGroup)]...)
	w.mu.Unlock()

	var first, rest []*writeOp
	for _, op := range group {
		if op.first {
			first = append(first, op)
		} else {
			rest = append(rest, op)
		}
	}
	if len(first) > 0 {
		w.commit(first)
		w.settle(first, caller)
	}
	if !caller.first {
		w.commit(rest)
		w.settle(rest, caller)
		// Once, not for as long as first writes keep coming: that would
		// hold up the caller, and every other write, behind them.
		w.mu.Lock()
		first = first[:0]
		for _, op := range w.queue {
			if op.first && !op.done && len(first) < maxGroup {
				first = append(first, op)
			}
		}
		w.mu.Unlock()
		if len(first) > 0 {
			w.commit(first)
			w.settle(first, caller)
		}
	}

	w.mu.Lock()
	w.queue = slices.DeleteFunc(w.queue, func(op *writeOp) bool { return op.done })
	var next *writeOp
	if len(w.queue) > 0 {
		next = w.queue[0]
	} else {
		w.queue = nil // let the array go
		if w.closed {
			close(w.idle)
		}
	}
	w.mu.Unlock()
	if next != nil {
		next.wake <- struct{}{}
	}
}

// settle marks committed writes done and wakes their callers, but the
// leader's own (it is running this).
func (w *writer) settle(ops []*writeOp, caller *writeOp) {
	w.mu.Lock()
	for _, op := range ops {
		op.done = true
	}
	w.mu.Unlock()
	for _, op := range ops {
		if op != caller {
			op.wake <- struct{}{}
		}
	}
}

// close waits for the writes queued, then closes the connection; later
// writes fail.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if len(w.queue) == 0 {
		close(w.idle)
	}
	w.mu.Unlock()
	<-w.idle
	var errs []error
	for _, st := range w.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, w.conn.Close())...)
}

// commit runs a group of writes in one transaction and sets each one's
// result: first optimistically, each write's function straight in the
// transaction; should one fail (an error or a panic), the whole group is
// rolled back and run again with a savepoint for each write, so that the
// failing one is rolled back alone (commitEach).
func (w *writer) commit(group []*writeOp) {
	if !w.commitAll(group) {
		return
	}
	// The writes run again, but those that panicked: a function that
	// panicked is not called twice; its caller gets the panic.
	again := make([]*writeOp, 0, len(group))
	for _, op := range group {
		if op.panic == nil {
			op.err = nil
			again = append(again, op)
		}
	}
	if len(again) > 0 {
		w.commitEach(again)
	}
}

// commitAll runs a group of writes in one transaction without
// savepoints, and commits them all, or stops at the first write that
// fails, rolls back, and reports that the group is to run again — unless
// the failing write was the only one of the group to run (a group of
// one, or the others skipped): its result stands then, there being
// nothing to keep.
func (w *writer) commitAll(group []*writeOp) (again bool) {
	if _, err := w.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		for _, op := range group {
			op.err = err
		}
		return false
	}
	ran := 0 // writes that succeeded
	for i := 0; i < len(group); i++ {
		op := group[i]
		if op.err = op.ctx.Err(); op.err != nil {
			continue
		}
		if run := batchRun(group[i:]); len(run) > 1 {
			ok, err := w.runBatch(run)
			if err != nil {
				_, _ = w.ExecContext(context.Background(), "ROLLBACK")
				return true // each alone, to tell which one failed
			}
			ran += ok
			i += len(run) - 1
			continue
		}
		if op.err = w.run(op); op.err != nil {
			if u, ok := op.err.(unwritten); ok {
				op.err = u.err // it wrote nothing: the group goes on
				continue
			}
			// The writes that ran before it are undone with it; those
			// after it have not run.
			_, _ = w.ExecContext(context.Background(), "ROLLBACK") // fails harmlessly when SQLite rolled back already
			return ran > 0 || i < len(group)-1
		}
		ran++
	}
	var err error
	if ran > 0 {
		if _, err = w.ExecContext(context.Background(), "COMMIT"); err == nil {
			return false
		}
		err = fmt.Errorf("commit: %w", err)
	}
	// Nothing to commit, or the commit failed (an I/O error: the whole
	// group fails, as it would with savepoints).
	_, _ = w.ExecContext(context.Background(), "ROLLBACK")
	if err != nil {
		for _, op := range group {
			if op.err == nil {
				op.err = err
			}
		}
	}
	return false
}

// batchRun is the run of writes of group[0]'s batch kind at the head of
// group, their contexts live; none if group[0] has no batch kind.
func batchRun(group []*writeOp) []*writeOp {
	kind := group[0].batch
	if kind == nil {
		return nil
	}
	n := 1
	for n < len(group) && group[n].batch == kind && group[n].ctx.Err() == nil {
		n++
	}
	return group[:n]
}

// runBatch runs a run of writes of one batch kind, sets each one's
// result, and returns how many succeeded; an error (a panic included)
// fails them all, and the transaction is to be rolled back.
func (w *writer) runBatch(run []*writeOp) (ok int, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("sqlite: batch panicked: %v", v)
		}
	}()
	items := make([]any, len(run))
	for i, op := range run {
		items[i] = op.item
	}
	errs, err := run[0].batch.run(w, items)
	if err != nil {
		return 0, err
	}
	for i, op := range run {
		if op.err = errs[i]; op.err == nil {
			ok++
		}
	}
	return ok, nil
}

// commitEach runs a group of writes in one transaction, each in its own
// savepoint (but a group of one), and sets each one's result: a write
// that fails is rolled back alone and the others commit.
func (w *writer) commitEach(group []*writeOp) {
	if _, err := w.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		for _, op := range group {
			op.err = err
		}
		return
	}
	savepoints := len(group) > 1
	committed := 0 // writes that succeeded
	var abort error
	for _, op := range group {
		if op.err = op.ctx.Err(); op.err != nil {
			continue
		}
		if !savepoints {
			if op.err = plain(w.run(op)); op.err == nil {
				committed++
			}
			break
		}
		if _, abort = w.ExecContext(context.Background(), "SAVEPOINT w"); abort != nil {
			break
		}
		if op.err = plain(w.run(op)); op.err != nil {
			// If the error ended the transaction (I/O error, disk
			// full), the rollback fails: the whole group is off.
			if _, abort = w.ExecContext(context.Background(), "ROLLBACK TO w"); abort != nil {
				break
			}
		} else {
			committed++
		}
		if _, abort = w.ExecContext(context.Background(), "RELEASE w"); abort != nil {
			break
		}
	}
	if abort == nil && committed > 0 {
		_, abort = w.ExecContext(context.Background(), "COMMIT")
		if abort == nil {
			return
		}
		abort = fmt.Errorf("commit: %w", abort)
	}
	// Nothing to commit, or the group failed: every write that had
	// succeeded (or not run) shares the failure.
	_, _ = w.ExecContext(context.Background(), "ROLLBACK") // fails harmlessly when SQLite rolled back already
	if abort == nil {
		return
	}
	// A write that failed on its own keeps its error: nothing of it
	// remains either way.
	for _, op := range group {
		if op.err == nil {
			op.err = abort
		}
	}
}

// unwritten is the error of a write that failed before it wrote
// anything (a check that failed: a key taken, an event id used, a
// delivery gone): its group goes on without it, with no rollback and no
// second run of the others (commitAll). noWrites makes one.
type unwritten struct{ err error }

func (u unwritten) Error() string { return u.err.Error() }

// noWrites marks err as the error of a write function that has written
// nothing — only if it is the store's own verdict (a webhook.Error:
// NotFound, Conflict; a key taken): a driver error may have ended the
// transaction, and must fail the group.
func noWrites(err error) error {
	var we *webhook.Error
	var taken *webhook.KeyTakenError
	if errors.As(err, &we) || errors.As(err, &taken) {
		return unwritten{err}
	}
	return err
}

// plain is err without the unwritten mark.
func plain(err error) error {
	if u, ok := err.(unwritten); ok {
		return u.err
	}
	return err
}

// run calls op's function. A panic is taken back to the caller's
// goroutine (do), as if the caller had run the function itself.
func (w *writer) run(op *writeOp) (err error) {
	defer func() {
		if v := recover(); v != nil {
			op.panic = v
			err = fmt.Errorf("sqlite: write panicked: %v", v)
		}
	}()
	return op.fn(w)
}

// stmt returns the statement prepared for query, preparing it on first
// use; nil once the cache is full.
func (w *writer) stmt(query string) *sql.Stmt {
	if st, ok := w.stmts[query]; ok {
		return st
	}
	if len(w.stmts) >= maxStmts {
		return nil
	}
	st, err := w.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil // run unprepared; the error shows there
	}
	w.stmts[query] = st
	return st
}

// The writer is the querier that write functions get. Its statements
// ignore the caller's context (see above).

func (w *writer) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	if st := w.stmt(query); st != nil {
		return st.ExecContext(context.Background(), args...)
	}
	return w.conn.ExecContext(context.Background(), query, args...)
}

func (w *writer) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := w.stmt(query); st != nil {
		return st.QueryContext(context.Background(), args...)
	}
	return w.conn.QueryContext(context.Background(), query, args...)
}

func (w *writer) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	if st := w.stmt(query); st != nil {
		return st.QueryRowContext(context.Background(), args...)
	}
	return w.conn.QueryRowContext(context.Background(), query, args...)
}

// reader runs reads on a pool of read-only connections, with statements
// prepared once (per connection, by database/sql).
type reader struct {
	db    *sql.DB
	stmts sync.Map // query → *sql.Stmt
	n     atomic.Int32
}

func (r *reader) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := r.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	if r.n.Load() >= maxStmts {
		return nil
	}
	st, err := r.db.PrepareContext(ctx, query)
	if err != nil {
		return nil // run unprepared; the error shows there
	}
	if prev, loaded := r.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt)
	}
	r.n.Add(1)
	return st
}

func (r *reader) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.db.ExecContext(ctx, query, args...) // query_only: refused
}

func (r *reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.db.QueryContext(ctx, query, args...)
}

func (r *reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.db.QueryRowContext(ctx, query, args...)
}

func (r *reader) close() error {
	var errs []error
	r.stmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(append(errs, r.db.Close())...)
}
