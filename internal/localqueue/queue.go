// Package localqueue is the Dispatcher of local mode: a durable retry queue
// whose entries are the delivery rows of the SQLite store themselves. A
// delivery is due when it is Pending or Sending and its NextAttemptAt has
// come; workers claim due deliveries with a lease (pushing NextAttemptAt
// forward), make the attempt, and the attempt's result sets the real next
// time. A process killed mid-attempt loses nothing: its claims expire after
// the lease and are taken again; overdue deliveries run as soon as the
// process is back.
//
// New messages skip the claim: the queue is a delivery.Holder, so Publish
// stores a new message's deliveries claimed already and hands them to the
// queue in memory, and workers take those first attempts ahead of the
// deliveries claimed from the store (retries, resends, overdue ones). A
// first attempt thus waits for no write but the message's own, reads
// nothing (it comes with what Publish read), and a retry storm queues
// behind new messages instead of in front of them.
package localqueue

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Store is what the queue needs from storage.
type Store interface {
	// ClaimDue leases up to limit due deliveries until now+lease and
	// returns their current runs.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error)
	// NextDue returns the earliest NextAttemptAt of an unfinished
	// delivery, and false when there is none.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// Release makes claimed runs due at now again; runs settled or
	// superseded meanwhile are left alone.
	Release(ctx context.Context, refs []webhook.Ref, now time.Time) error
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
	// it is due again once its lease ends. Zero claims only for idle
	// workers.
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
// A held delivery keeps its room until its attempt ends (or it is left
// to its claim): the room bounds those waiting in the channel and those
// parked for their endpoint's share alike (see fairness.go).
// Without room, or once Run's context has ended, it holds nothing. What
// it holds and has not started when Run returns is released (made due)
// on the way out; after a crash, it is due when its claim ends.
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

// Dispatch wakes the workers: the delivery row is already in the store and
// due, so there is nothing else to schedule.
func (q *Queue) Dispatch(ctx context.Context, ref webhook.Ref) error {
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run claims and attempts due deliveries until ctx ends, then waits for
// the attempts in flight to finish. Claimed and held deliveries that are
// still waiting for a worker are released: due again at once, for the
// next start. Workers are shared
// fairly between endpoints (fairness.go).
//
// The workers are long-lived goroutines: an attempt runs deep in the
// SQLite driver, and a fresh goroutine per attempt would grow its stack
// to that depth, by copying, every time.
func (q *Queue) Run(ctx context.Context) error {
	prefetch := 0
	maxWait := q.cfg.Lease - q.cfg.AttemptTimeout
	if q.cfg.AttemptTimeout > 0 && maxWait > 0 {
		prefetch = q.cfg.Workers
	}
	ready := make(chan claimed, prefetch)
	done := make(chan struct{}, 1)
	// outstanding: claimed and not finished, ready, parked or in flight;
	// a held delivery only while it is not parked.
	var outstanding atomic.Int64
	wakeLoop := func() {
		select {
		case done <- struct{}{}:
		default: // the loop is awake already
		}
	}
	finished := func(c claimed) {
		q.unhold(c)
		outstanding.Add(-1)
		wakeLoop()
	}
	// A held delivery parked for its endpoint's share takes no worker and
	// no room of ready, and the room of Hold bounds those: it does not
	// count as outstanding, so that a burst of new messages to one
	// endpoint does not stop the claims for the others.
	park := func(c claimed) {
		if c.held {
			outstanding.Add(-1)
			wakeLoop()
		}
	}
	unpark := func(c claimed, ok bool) {
		if ok && c.held {
			outstanding.Add(1)
		}
	}
	// usable reports whether a claimed delivery may still be attempted:
	// not shutting down, and not so old that its attempt could outlast
	// its lease.
	usable := func(c claimed) bool {
		return ctx.Err() == nil && (prefetch == 0 || q.clock.Now().Sub(c.at) <= maxWait)
	}
	// What shutting down leaves unattempted is released on the way out.
	var leftMu sync.Mutex
	var left []webhook.Ref
	skip := func(c claimed) {
		if ctx.Err() != nil {
			leftMu.Lock()
			left = append(left, c.ref)
			leftMu.Unlock()
		}
		finished(c)
	}
	fair := newShares(q.cfg.EndpointShare, q.cfg.SlowShare, q.cfg.FailingShare, q.cfg.SlowAfter)
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() {
			for pick := 0; ; pick++ {
				c, held, ok := q.next(ready, pick)
				if !ok {
					return
				}
				if held {
					outstanding.Add(1)
				}
				if !usable(c) {
					skip(c)
					continue
				}
				start := time.Now()
				switch fair.admit(c, start) {
				case parked:
					park(c)
					continue // a worker done with its endpoint runs it
				case dropped:
					q.leaveToLease(c)
					finished(c)
					continue
				}
				// Attempt it, then the deliveries parked for its endpoint
				// that the slot passes to.
				for ok := true; ok; {
					retry := q.run(ctx, c)
					finished(c)
					end := time.Now()
					c, ok = fair.done(c.ref.EndpointID, start, end, retry)
					unpark(c, ok)
					start = end
					for ok && !usable(c) {
						skip(c)
						now := time.Now()
						c, ok = fair.skip(c.ref.EndpointID, start, now)
						unpark(c, ok)
						start = now
					}
				}
			}
		})
	}
	stopHolding := context.AfterFunc(ctx, func() { q.stopped.Store(true) })
	defer func() {
		stopHolding()
		q.stopped.Store(true)
		close(ready)
		wg.Wait()
		q.release(ctx, append(left, q.drainHeld()...))
	}()
	// With deliveries ready, claim only once half of them are taken: one
	// claim (a write) per batch rather than per finished attempt.
	batch := max(1, prefetch/2)
	for {
		for _, c := range fair.shed(time.Now()) {
			unpark(c, true)
			q.leaveToLease(c)
			finished(c)
		}
		free := q.cfg.Workers + prefetch - int(outstanding.Load())
		if free < batch {
			// Every worker is busy and deliveries are ready: wait for
			// some to finish, or for an endpoint to turn out slow.
			t := time.NewTimer(q.cfg.SlowAfter)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-done:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		now := q.clock.Now()
		refs, err := q.store.ClaimDue(ctx, now, q.cfg.Lease, free)
		if err != nil && ctx.Err() == nil {
			q.log.Error("claim due deliveries", "err", err)
		}
		for _, ref := range refs {
			outstanding.Add(1)
			ready <- claimed{ref: ref, at: now} // room, or a worker about to take one
		}
		if len(refs) > 0 && len(refs) == free {
			continue // there may be more due right now
		}
		if err := q.sleep(ctx); err != nil {
			return nil
		}
	}
}

// drainHeld empties the held deliveries no worker took.
func (q *Queue) drainHeld() []webhook.Ref {
	var refs []webhook.Ref
	for {
		select {
		case c := <-q.held:
			q.unhold(c)
			refs = append(refs, c.ref)
		default:
			return refs
		}
	}
}

// release gives back, on the way out, the claimed and held deliveries
// that were not attempted, so that after a restart they are due at once
// rather than when their claims end. Failing that, the claims end as
// after a crash.
func (q *Queue) release(ctx context.Context, refs []webhook.Ref) {
	if len(refs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := q.store.Release(ctx, refs, q.clock.Now()); err != nil {
		q.log.Warn("claimed deliveries not released; they are due when their claims end",
			"deliveries", len(refs), "err", err)
		return
	}
	q.log.Info("released claimed deliveries not attempted before shutdown", "deliveries", len(refs))
}

// next returns a worker's next delivery, and whether it was held (not
// counted as outstanding yet); false once ready is closed. Held
// deliveries come first, except at every fourth pick, which prefers one
// claimed from the store: a stream of new messages cannot starve retries.
func (q *Queue) next(ready <-chan claimed, pick int) (claimed, bool, bool) {
	if pick%4 == 3 {
		select {
		case c, ok := <-ready:
			return c, false, ok
		default:
		}
	}
	select {
	case c := <-q.held:
		return c, true, true
	default:
	}
	select {
	case c := <-q.held:
		return c, true, true
	case c, ok := <-ready:
		return c, false, ok
	}
}

// claimed is a delivery claimed at a time, waiting for or in its attempt;
// a held one comes with what Publish read for it, within HoldBytes.
type claimed struct {
	ref    webhook.Ref
	at     time.Time
	held   bool            // handed over by Hold
	loaded *webhook.Loaded // what Publish read; nil beyond HoldBytes
	bytes  int64           // of loaded's payload
}

// unhold gives back what a held delivery kept of Hold's room and
// HoldBytes, once its attempt has ended or it is left to its claim.
func (q *Queue) unhold(c claimed) {
	if c.held {
		q.holding.Add(-1)
		q.heldBytes.Add(-c.bytes)
	}
}

// leaveToLease gives up a claimed delivery of a slow endpoint: it stays
// claimed until its lease ends, and is due again then.
func (q *Queue) leaveToLease(c claimed) {
	q.log.Debug("slow endpoint at its share; the delivery waits for its lease",
		"msg_id", c.ref.MsgID, "endpoint_id", c.ref.EndpointID)
}

// run makes one attempt and reports whether it scheduled a retry. The
// attempt outlives a shutdown request: it is bounded by the sender's
// budget, and finishing it avoids a duplicate POST after restart.
func (q *Queue) run(ctx context.Context, c claimed) bool {
	ref := c.ref
	next, err := q.attempt(context.WithoutCancel(ctx), ref, c.loaded)
	if err != nil {
		q.log.Error("attempt failed; it will be retried after the lease",
			"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "err", err)
		return false
	}
	if next.IsZero() {
		return false
	}
	q.dueAt(next)
	return true
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
