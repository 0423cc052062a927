// Package localqueue is the Dispatcher of local mode: a durable retry queue
// whose entries are the delivery rows of the SQLite store themselves. A
// delivery is due when it is Pending or Sending and its NextAttemptAt has
// come; workers claim due deliveries with a lease (pushing NextAttemptAt
// forward), make the attempt, and the attempt's result sets the real next
// time. The claim is a lease against a worker that dies, not a waiting
// room: deliveries beyond what their endpoint may have in flight and
// parked are put back in the store, due, to wait for a slot of their
// endpoint, and are claimed back as its slots free (fairness.go). A
// process killed mid-attempt loses nothing: its claims are in the store,
// and the next start makes them due at once (the store's ReleaseClaims,
// which local mode calls before Run, holding the data dir's lock);
// overdue deliveries run as soon as the process is back.
//
// New messages skip the claim: the queue is a delivery.Holder, so Publish
// stores a new message's deliveries claimed already and hands them to the
// queue in memory, and workers take those first attempts ahead of the
// deliveries claimed from the store (retries, resends, overdue ones). A
// first attempt thus waits for no write but the message's own, reads
// nothing (it comes with what Publish read), and a retry storm queues
// behind new messages instead of in front of them.
//
// Endpoints' throttleRate is enforced here too (throttle.go): Throttle is
// local mode's delivery.Limiter, and a delivery its endpoint's throttle
// holds back waits in memory, without a worker, until its token comes
// back.
package localqueue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Store is what the queue needs from storage.
type Store interface {
	// ClaimDue leases up to limit due deliveries until now+lease and
	// returns their current runs; it leaves out those waiting for their
	// endpoint (Wait).
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error)
	// ClaimWaiting is ClaimDue for the deliveries to one endpoint that
	// wait for a slot of it, the longest waiting first.
	ClaimWaiting(ctx context.Context, endpointID string, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error)
	// Wait puts claimed runs back, due at now, to wait for a slot of
	// their endpoint, with every delivery to that endpoint due at now
	// and not claimed. claims maps each run to the end of its claim: a
	// run claimed again since (its claim ran out), settled or superseded
	// is left alone.
	Wait(ctx context.Context, endpointID string, claims map[webhook.Ref]time.Time, now time.Time) error
	// NextDue returns the earliest NextAttemptAt of an unfinished
	// delivery that does not wait for its endpoint, and false when there
	// is none.
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// AttemptFunc makes one attempt of a run and returns when the run's next
// attempt is due (zero: there is none), so that the queue wakes for it
// without looking at the store after every attempt. An error leaves the
// claim to expire so that the attempt is made again. loaded is what
// Publish handed over with a held delivery (see Hold), nil for one
// claimed from the store.
type AttemptFunc func(ctx context.Context, ref webhook.Ref, loaded *webhook.Loaded) (next time.Time, err error)

// Config tunes a Queue.
type Config struct {
	Workers int           // attempts in flight at once; default 32
	Lease   time.Duration // how long a claim lasts; must exceed one attempt's budget; default 1 min
	Poll    time.Duration // longest sleep between looks at the store; default 1 s
	// AttemptTimeout is the longest one attempt can take. When set (and
	// under Lease), the queue keeps up to Workers claimed deliveries
	// ready beyond those in flight, so that a worker that finishes
	// starts its next attempt at once instead of waiting for a claim (a
	// write). A ready delivery that has waited so long that its attempt
	// could outlast the lease (Lease - AttemptTimeout) is not attempted:
	// it goes back to the store to wait for a slot of its endpoint, and
	// is claimed again from there. Zero claims only for idle workers.
	AttemptTimeout time.Duration
	// EndpointShare is the most attempts to one endpoint in flight at
	// once; SlowShare is that of a slow endpoint, one whose last attempt
	// took SlowAfter or longer, and FailingShare that of a failing one,
	// whose last attempt failed and scheduled a retry (see fairness.go).
	// Defaults: Workers (no limit), EndpointShare, EndpointShare, and 1 s.
	EndpointShare int
	SlowShare     int
	FailingShare  int
	SlowAfter     time.Duration
	// Gather is how long a delivery that came due by itself (a retry)
	// may wait for others to come due, so that they are claimed together:
	// a retry storm then costs a claim (a write) per batch rather than
	// per retry. A dispatch is claimed at once. Default 0.
	Gather time.Duration
	// Hold is the most new deliveries held in memory and not started
	// (see Hold); beyond it, new deliveries are stored due and claimed
	// like the others. Default 64 per worker, at most maxHold; negative,
	// or without an AttemptTimeout under Lease, nothing is held.
	Hold int
	// HoldBytes bounds the payloads that held deliveries keep in memory
	// with what Publish read for them (webhook.Loaded): beyond it a held
	// delivery keeps only its reference, and its attempt reads the
	// store. A payload is counted once per delivery. Default 64 MiB.
	HoldBytes int64
}

// maxHold bounds the default Hold: the buffer is allocated up front.
const maxHold = 1 << 14

// Queue runs due deliveries on a pool of workers.
type Queue struct {
	store   Store
	attempt AttemptFunc
	clock   webhook.Clock
	log     *slog.Logger
	cfg     Config
	wake    chan struct{} // a dispatch: claim now
	soon    chan struct{} // an attempt scheduled a retry before wakeAt

	mu     sync.Mutex
	wakeAt time.Time // when the sleeping loop wakes by itself; zero while it is awake

	held      chan claimed // new deliveries handed over by Hold
	holding   atomic.Int64 // room of held reserved or in use
	heldBytes atomic.Int64 // payload bytes of the held deliveries' Loaded
	stopped   atomic.Bool  // Run has returned: hold nothing more
}

var _ webhook.Dispatcher = (*Queue)(nil)

// New returns a Queue; call Run to start its workers.
func New(store Store, attempt AttemptFunc, clock webhook.Clock, log *slog.Logger, cfg Config) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.EndpointShare <= 0 || cfg.EndpointShare > cfg.Workers {
		cfg.EndpointShare = cfg.Workers
	}
	if cfg.SlowShare <= 0 || cfg.SlowShare > cfg.EndpointShare {
		cfg.SlowShare = cfg.EndpointShare
	}
	if cfg.FailingShare <= 0 || cfg.FailingShare > cfg.EndpointShare {
		cfg.FailingShare = cfg.EndpointShare
	}
	if cfg.SlowAfter <= 0 {
		cfg.SlowAfter = time.Second
	}
	if cfg.AttemptTimeout <= 0 || cfg.AttemptTimeout >= cfg.Lease || cfg.Hold < 0 {
		cfg.Hold = 0 // an attempt could outlast a held delivery's claim
	} else if cfg.Hold == 0 {
		cfg.Hold = min(64*cfg.Workers, maxHold)
	}
	if cfg.HoldBytes <= 0 {
		cfg.HoldBytes = 64 << 20
	}
	return &Queue{store: store, attempt: attempt, clock: clock, log: log, cfg: cfg,
		wake: make(chan struct{}, 1), soon: make(chan struct{}, 1), held: make(chan claimed, cfg.Hold)}
}

// Hold implements delivery.Holder: it reserves room for n new deliveries
// claimed at now, whose claim ends a Lease later. The workers take held
// deliveries ahead of those claimed from the store, like those subject to
// the fair shares, and attempt none that has waited so long that its
// attempt could outlast its claim (it is due again when the claim ends).
// A held delivery keeps its room until its attempt ends (or it goes to
// wait in the store): the room bounds those waiting in the channel and
// those parked for their endpoint's share alike (see fairness.go).
// Without room, or once Run's context has ended, it holds nothing. What
// it holds and has not started when Run returns stays claimed in the
// store, as after a crash: the next start makes it due.
func (q *Queue) Hold(n int, now time.Time) (time.Time, func([]webhook.Loaded), bool) {
	if q.stopped.Load() {
		return time.Time{}, nil, false
	}
	if q.holding.Add(int64(n)) > int64(cap(q.held)) {
		q.holding.Add(-int64(n))
		return time.Time{}, nil, false
	}
	take := func(held []webhook.Loaded) {
		q.holding.Add(int64(len(held) - n)) // room not used
		for i := range held {
			c := claimed{ref: held[i].Delivery.Ref(), at: now, held: true}
			if size := int64(len(held[i].Message.Payload)); q.heldBytes.Add(size) <= q.cfg.HoldBytes {
				c.loaded, c.bytes = &held[i], size
			} else {
				q.heldBytes.Add(-size)
			}
			q.held <- c // never blocks: the room is reserved
		}
	}
	return now.Add(q.cfg.Lease), take, true
}

// Dispatch wakes the workers and takes every run: the delivery rows are
// already in the store and due, so there is nothing else to schedule.
func (q *Queue) Dispatch(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	q.kick()
	return refs, nil
}

// kick wakes the loop that claims deliveries, if it sleeps.
func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run claims and attempts due deliveries until ctx ends, then waits for
// the attempts in flight to finish. Deliveries claimed or held and not
// attempted by then stay claimed in the store: the next start makes them
// due. Workers are shared fairly between endpoints (fairness.go).
//
// The workers are long-lived goroutines: an attempt runs deep in the
// SQLite driver, and a fresh goroutine per attempt would grow its stack
// to that depth, by copying, every time.
func (q *Queue) Run(ctx context.Context) error {
	r := newRunner(ctx, q)
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(r.work)
	}
	stopHolding := context.AfterFunc(ctx, func() { q.stopped.Store(true) })
	defer func() {
		stopHolding()
		q.stopped.Store(true)
		close(r.ready)
		wg.Wait()
		r.sleepers.Wait()
	}()
	r.loop()
	return nil
}

// runner is the state of one Run: the loop that claims, the workers that
// attempt, and what they share.
type runner struct {
	q    *Queue
	ctx  context.Context
	fair *shares
	// ready holds claimed deliveries for the workers; with an
	// AttemptTimeout it buffers up to Workers of them (prefetch), so that
	// a worker that finishes starts its next attempt at once instead of
	// waiting for a claim (a write).
	ready    chan claimed
	prefetch int
	// maxWait is how long a claimed delivery may wait in memory and still
	// be attempted: its attempt must end before its claim does.
	maxWait time.Duration
	// done wakes the loop when an attempt ends while it waits for a free
	// worker.
	done chan struct{}
	// outstanding counts the claimed deliveries not finished: ready,
	// parked or in flight; a held one only while it is not parked.
	outstanding atomic.Int64

	// woken hands the deliveries its throttle held back to a worker once
	// their reservation is due (sleep); sleepers are those waiting.
	woken    chan claimed
	sleepers sync.WaitGroup

	mu     sync.Mutex
	toWait map[string]map[webhook.Ref]time.Time // by endpoint: the runs to put back in the store, and their claims' ends
}

func newRunner(ctx context.Context, q *Queue) *runner {
	r := &runner{q: q, ctx: ctx, done: make(chan struct{}, 1), toWait: map[string]map[webhook.Ref]time.Time{}, woken: make(chan claimed)}
	if r.maxWait = q.cfg.Lease - q.cfg.AttemptTimeout; q.cfg.AttemptTimeout > 0 && r.maxWait > 0 {
		r.prefetch = q.cfg.Workers
	}
	r.ready = make(chan claimed, r.prefetch)
	r.fair = newShares(q.cfg.EndpointShare, q.cfg.SlowShare, q.cfg.FailingShare, q.cfg.SlowAfter, q.kick)
	return r
}

// loop claims deliveries for the workers until ctx ends: those waiting
// in the store for endpoints that have room again, then due ones.
func (r *runner) loop() {
	q := r.q
	// With deliveries ready, claim only once half of them are taken: one
	// claim (a write) per batch rather than per finished attempt.
	batch := max(1, r.prefetch/2)
	for {
		r.putBack(q.clock.Now())
		free := q.cfg.Workers + r.prefetch - int(r.outstanding.Load())
		if free < batch {
			// Every worker is busy and deliveries are ready: wait for
			// some to finish, or for an endpoint to turn out slow.
			t := time.NewTimer(q.cfg.SlowAfter)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return
			case <-r.done:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		for _, rf := range r.fair.refills(q.clock.Now(), free) {
			now := q.clock.Now()
			refs, err := q.store.ClaimWaiting(r.ctx, rf.endpointID, now, q.cfg.Lease, rf.n)
			if err != nil && r.ctx.Err() == nil {
				q.log.Error("claim deliveries waiting for their endpoint", "endpoint_id", rf.endpointID, "err", err)
			}
			r.fair.refilled(rf, len(refs), err != nil)
			r.hand(refs, now, true)
			free -= len(refs)
		}
		now := q.clock.Now()
		refs, err := q.store.ClaimDue(r.ctx, now, q.cfg.Lease, free)
		if err != nil && r.ctx.Err() == nil {
			q.log.Error("claim due deliveries", "err", err)
		}
		r.hand(refs, now, false)
		if len(refs) > 0 && len(refs) == free {
			continue // there may be more due right now
		}
		if err := q.sleep(r.ctx); err != nil {
			return
		}
	}
}

// hand gives deliveries claimed at now to the workers.
func (r *runner) hand(refs []webhook.Ref, now time.Time, fromStore bool) {
	for _, ref := range refs {
		r.outstanding.Add(1)
		r.ready <- claimed{ref: ref, at: now, fromStore: fromStore} // room, or a worker about to take one
	}
}

// putBack puts the deliveries that overflowed their endpoint's share, or
// waited too long, back in the store to wait for a slot of it (with those
// that shed takes from endpoints turned slow or failing).
func (r *runner) putBack(now time.Time) {
	for _, c := range r.fair.shed(now) {
		r.unpark(c, true)
		r.toStore(c)
	}
	r.mu.Lock()
	toWait := r.toWait
	r.toWait = map[string]map[webhook.Ref]time.Time{}
	r.mu.Unlock()
	for id, claims := range toWait {
		if err := r.q.store.Wait(r.ctx, id, claims, now); err != nil && r.ctx.Err() == nil {
			r.q.log.Error("deliveries not put back to wait for their endpoint; they are due when their claims end",
				"endpoint_id", id, "deliveries", len(claims), "err", err)
		}
		r.fair.stored(id, len(claims))
	}
}

// work is a worker: it takes deliveries, held ones first, and attempts
// each one its endpoint's share admits, then those parked for the
// endpoint that the slot passes to. A delivery its endpoint's throttle
// holds back is kept aside until its reservation (sleep), and the slot
// passes on.
func (r *runner) work() {
	for pick := 0; ; pick++ {
		c, counted, ok := r.q.next(r.ready, r.woken, pick)
		if !ok {
			return
		}
		if !counted {
			r.outstanding.Add(1)
		}
		if r.ctx.Err() != nil {
			r.finished(c) // stopping: it stays claimed for the next start
			continue
		}
		start := r.q.clock.Now()
		switch r.fair.admit(c, start, r.fresh(c)) {
		case parked:
			r.park(c)
			continue // a worker done with its endpoint runs it
		case overflow:
			r.toStore(c)
			continue
		}
		for ok := true; ok; {
			retry, until := r.q.run(r.ctx, c)
			end := r.q.clock.Now()
			if !until.IsZero() {
				r.sleep(c, until)
				c, ok = r.fair.throttled(c.ref.EndpointID, start, end)
			} else {
				r.finished(c)
				c, ok = r.fair.done(c.ref.EndpointID, start, end, retry)
			}
			r.unpark(c, ok)
			start = end
			for ok && (r.ctx.Err() != nil || !r.fresh(c)) {
				stopping, stale, now := r.ctx.Err() != nil, c, r.q.clock.Now()
				c, ok = r.fair.skip(stale.ref.EndpointID, start, now, !stopping)
				if stopping {
					r.finished(stale)
				} else {
					r.toStore(stale)
				}
				r.unpark(c, ok)
				start = now
			}
		}
	}
}

// sleep keeps aside a delivery its endpoint's throttle holds back until
// until, and hands it to a worker then (through woken), to be admitted
// again. Meanwhile it takes no worker and is not outstanding (its
// endpoint counts it as sleeping, within its room: fairness.go), so that
// a throttled backlog does not stop the claims for other endpoints; a
// held one keeps its room of Hold. When the queue stops first, it stays
// claimed in the store, for the next start.
func (r *runner) sleep(c claimed, until time.Time) {
	c.slept = true
	r.outstanding.Add(-1)
	select {
	case r.done <- struct{}{}:
	default:
	}
	r.sleepers.Add(1)
	t := time.NewTimer(until.Sub(r.q.clock.Now()))
	go func() {
		defer r.sleepers.Done()
		defer t.Stop()
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		select {
		case <-r.ctx.Done():
		case r.woken <- c:
		}
	}()
}

// fresh reports whether a claimed delivery may still be attempted: not
// so old that its attempt could outlast its claim.
func (r *runner) fresh(c claimed) bool {
	return r.prefetch == 0 || r.q.clock.Now().Sub(c.at) <= r.maxWait
}

// finished ends what the queue keeps for a delivery that was attempted,
// or is given up: the room of a held one, and its count as outstanding.
func (r *runner) finished(c claimed) {
	r.q.unhold(c)
	r.outstanding.Add(-1)
	select {
	case r.done <- struct{}{}:
	default: // the loop is awake already
	}
}

// toStore sends a claimed delivery that will not be attempted from memory
// to wait in the store for a slot of its endpoint; the loop puts it there.
func (r *runner) toStore(c claimed) {
	r.mu.Lock()
	claims := r.toWait[c.ref.EndpointID]
	if claims == nil {
		claims = map[webhook.Ref]time.Time{}
		r.toWait[c.ref.EndpointID] = claims
	}
	_, dup := claims[c.ref] // a copy of a run claimed again after its claim ran out
	claims[c.ref] = c.at.Add(r.q.cfg.Lease)
	r.mu.Unlock()
	if dup {
		r.fair.stored(c.ref.EndpointID, 1) // counted twice, put back once
	}
	r.finished(c)
	r.q.kick()
}

// A held delivery parked for its endpoint's share takes no worker and no
// room of ready, and the room of Hold bounds those: it does not count as
// outstanding, so that a burst of new messages to one endpoint does not
// stop the claims for the others.
func (r *runner) park(c claimed) {
	if c.held {
		r.outstanding.Add(-1)
		select {
		case r.done <- struct{}{}:
		default:
		}
	}
}

// unpark counts a parked delivery that got a slot (ok) as outstanding
// again, if it was held.
func (r *runner) unpark(c claimed, ok bool) {
	if ok && c.held {
		r.outstanding.Add(1)
	}
}

// next returns a worker's next delivery, and whether it is counted as
// outstanding already (one from ready is; a held one, or one woken from
// its throttle's wait, is not yet); false once ready is closed. Woken
// deliveries come first (their reservation is due), then held ones,
// except at every fourth pick, which prefers one claimed from the store:
// a stream of new messages cannot starve retries.
func (q *Queue) next(ready <-chan claimed, woken <-chan claimed, pick int) (claimed, bool, bool) {
	select {
	case c := <-woken:
		return c, false, true
	default:
	}
	if pick%4 == 3 {
		select {
		case c, ok := <-ready:
			return c, true, ok
		default:
		}
	}
	select {
	case c := <-q.held:
		return c, false, true
	default:
	}
	select {
	case c := <-woken:
		return c, false, true
	case c := <-q.held:
		return c, false, true
	case c, ok := <-ready:
		return c, true, ok
	}
}

// claimed is a delivery claimed at a time, waiting for or in its attempt;
// a held one comes with what Publish read for it, within HoldBytes.
type claimed struct {
	ref       webhook.Ref
	at        time.Time
	held      bool            // handed over by Hold
	fromStore bool            // claimed back from those waiting for their endpoint
	slept     bool            // woken from its throttle's wait (sleep), not admitted yet
	loaded    *webhook.Loaded // what Publish read; nil beyond HoldBytes
	bytes     int64           // of loaded's payload
}

// unhold gives back what a held delivery kept of Hold's room and
// HoldBytes, once its attempt has ended or it went to wait in the store.
func (q *Queue) unhold(c claimed) {
	if c.held {
		q.holding.Add(-1)
		q.heldBytes.Add(-c.bytes)
	}
}

// run makes one attempt and reports whether it scheduled a retry, or, if
// the endpoint's throttle held it back (see AttemptFunc), until when. The
// attempt outlives a shutdown request: it is bounded by the sender's
// budget, and finishing it avoids a duplicate POST after restart.
func (q *Queue) run(ctx context.Context, c claimed) (retry bool, throttledUntil time.Time) {
	ref := c.ref
	next, err := q.attempt(context.WithoutCancel(ctx), ref, c.loaded)
	var th throttled
	if errors.As(err, &th) {
		return false, th.ThrottledUntil()
	}
	if err != nil {
		q.log.Error("attempt failed; it will be retried after the lease",
			"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "err", err)
		return false, time.Time{}
	}
	if next.IsZero() {
		return false, time.Time{}
	}
	q.dueAt(next)
	return true, time.Time{}
}

// throttled is the error of an attempt that its endpoint's throttle held
// back (delivery.ThrottledError).
type throttled interface {
	error
	ThrottledUntil() time.Time
}

// dueAt tells the loop that a delivery is due at t, if it would sleep
// past t (and Gather).
func (q *Queue) dueAt(t time.Time) {
	q.mu.Lock()
	sooner := q.wakeAt.IsZero() || t.Add(q.cfg.Gather).Before(q.wakeAt)
	q.mu.Unlock()
	if sooner {
		select {
		case q.soon <- struct{}{}:
		default:
		}
	}
}

// sleep waits until the earliest unfinished delivery has been due for
// Gather, a dispatch wakes the queue, or Poll has passed. An attempt that
// ends does not wake it (nothing it could claim became due); one that
// schedules a retry before the wake-up makes it look at the store again
// (a read), not claim.
func (q *Queue) sleep(ctx context.Context) error {
	deadline := q.clock.Now().Add(q.cfg.Poll)
	defer func() {
		q.mu.Lock()
		q.wakeAt = time.Time{}
		q.mu.Unlock()
	}()
	// A report from before this look at the store is in what it reads:
	// an attempt reports its retry once it is stored.
	select {
	case <-q.soon:
	default:
	}
	wakeAt := deadline
	for {
		// Awake while reading: a retry stored after the read wakes the
		// loop whatever it was going to sleep until.
		q.mu.Lock()
		q.wakeAt = time.Time{}
		q.mu.Unlock()
		if next, ok, err := q.store.NextDue(ctx); err == nil {
			wakeAt = deadline
			if at := next.Add(q.cfg.Gather); ok && at.Before(wakeAt) {
				wakeAt = at
			}
		} // on error, keep the last wake-up
		wait := wakeAt.Sub(q.clock.Now())
		if wait <= 0 {
			return nil
		}
		q.mu.Lock()
		q.wakeAt = wakeAt
		q.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-q.wake:
			t.Stop()
			return nil
		case <-t.C:
			return nil
		case <-q.soon:
			t.Stop()
		}
	}
}
