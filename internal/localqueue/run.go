package localqueue

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// What one Run is made of: a loop that claims deliveries (claimLoop), a
// pool of workers that attempt them (work), the count of what both have
// in hand (outstanding), and the fair shares of the workers between
// endpoints (fairness.go).

// runner is the state of one Run.
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
	maxWait     time.Duration
	outstanding *outstanding

	// woken hands the deliveries their throttle held back to a worker
	// once their reservation is due (keepAside); asleep counts those
	// waiting for it.
	woken  chan claimed
	asleep sync.WaitGroup

	mu     sync.Mutex
	toWait map[string]map[webhook.Ref]time.Time // by endpoint: the runs to put back in the store, and their claims' ends
}

func newRunner(ctx context.Context, q *Queue) *runner {
	r := &runner{q: q, ctx: ctx, outstanding: newOutstanding(), toWait: map[string]map[webhook.Ref]time.Time{}, woken: make(chan claimed)}
	if r.maxWait = q.cfg.Lease - q.cfg.AttemptTimeout; q.cfg.AttemptTimeout > 0 && r.maxWait > 0 {
		r.prefetch = q.cfg.Workers
	}
	r.ready = make(chan claimed, r.prefetch)
	r.fair = newShares(q.cfg.EndpointShare, q.cfg.SlowShare, q.cfg.FailingShare, q.cfg.SlowAfter, q.kick)
	return r
}

// outstanding counts the claimed deliveries the queue has in hand and
// not finished: ready, in flight, or parked for a slot of their endpoint.
// The loop claims no more than the workers and ready can take on top of
// them. Two kinds are left out, so that they do not stop the claims for
// other endpoints: a held delivery while it is parked (the room of Hold
// bounds those), and a delivery its throttle holds back while it is kept
// aside (its endpoint's room bounds those, fairness.go).
type outstanding struct {
	n atomic.Int64
	// fewer wakes the loop when the count drops while it waits for room.
	fewer chan struct{}
}

func newOutstanding() *outstanding {
	return &outstanding{fewer: make(chan struct{}, 1)}
}

// add counts one more delivery.
func (o *outstanding) add() { o.n.Add(1) }

// remove counts one fewer, and wakes the loop if it waits for room.
func (o *outstanding) remove() {
	o.n.Add(-1)
	select {
	case o.fewer <- struct{}{}:
	default: // the loop is awake already
	}
}

// park stops counting a held delivery parked for its endpoint's share.
func (o *outstanding) park(c claimed) {
	if c.held {
		o.remove()
	}
}

// unpark counts again a parked held delivery given a slot.
func (o *outstanding) unpark(c claimed) {
	if c.held {
		o.add()
	}
}

// room is how many more of capacity are free.
func (o *outstanding) room(capacity int) int {
	return capacity - int(o.n.Load())
}

// waitForFewer waits until the count drops, ctx ends (false) or d has
// passed.
func (o *outstanding) waitForFewer(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-o.fewer:
	case <-t.C:
	}
	return true
}

// claimLoop claims deliveries for the workers until ctx ends: those
// waiting in the store for endpoints that have room again, then due ones;
// and puts back in the store those sent to wait there.
func (r *runner) claimLoop() {
	q := r.q
	// With deliveries ready, claim only once half of them are taken: one
	// claim (a write) per batch rather than per finished attempt.
	batch := max(1, r.prefetch/2)
	for {
		r.storeWaiting(q.clock.Now())
		free := r.outstanding.room(q.cfg.Workers + r.prefetch)
		if free < batch {
			// Every worker is busy and deliveries are ready: wait for
			// some to finish, or for an endpoint to turn out slow.
			if !r.outstanding.waitForFewer(r.ctx, q.cfg.SlowAfter) {
				return
			}
			continue
		}
		for _, rf := range r.fair.refills(q.clock.Now(), free) {
			now := q.clock.Now()
			refs, err := q.store.ClaimWaiting(r.ctx, rf.endpointID, now, q.cfg.Lease, rf.n)
			if err != nil && r.ctx.Err() == nil {
				q.log.Error("claim deliveries waiting for their endpoint", "endpoint_id", rf.endpointID, "err", err)
			}
			r.fair.refilled(rf, len(refs), err != nil)
			r.toWorkers(refs, now, true)
			free -= len(refs)
		}
		now := q.clock.Now()
		refs, err := q.store.ClaimDue(r.ctx, now, q.cfg.Lease, free)
		if err != nil && r.ctx.Err() == nil {
			q.log.Error("claim due deliveries", "err", err)
		}
		r.toWorkers(refs, now, false)
		if len(refs) > 0 && len(refs) == free {
			continue // there may be more due right now
		}
		if err := q.sleepUntilDue(r.ctx); err != nil {
			return
		}
	}
}

// toWorkers gives deliveries claimed at now to the workers, through
// ready.
func (r *runner) toWorkers(refs []webhook.Ref, now time.Time, fromStore bool) {
	for _, ref := range refs {
		r.outstanding.add()
		r.ready <- claimed{ref: ref, at: now, fromStore: fromStore} // room, or a worker about to take one
	}
}

// storeWaiting puts the deliveries sent to wait for a slot of their
// endpoint (sendToWait) in the store, with those that shed takes from
// endpoints turned slow or failing.
func (r *runner) storeWaiting(now time.Time) {
	for _, c := range r.fair.shed(now) {
		r.outstanding.unpark(c)
		r.sendToWait(c)
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

// work is a worker: it takes deliveries (take) and attempts each one its
// endpoint's share admits in a slot of the endpoint, which then passes to
// the endpoint's parked deliveries (runSlot). One the share does not
// admit is parked, for a worker done with its endpoint to run, or sent to
// wait in the store.
func (r *runner) work() {
	for pick := 0; ; pick++ {
		c, ok := r.take(pick)
		if !ok {
			return
		}
		if r.ctx.Err() != nil {
			r.forget(c) // stopping: it stays claimed for the next start
			continue
		}
		start := r.q.clock.Now()
		switch r.fair.admit(c, start, r.fresh(c)) {
		case runNow:
			r.runSlot(c, start)
		case parked:
			r.outstanding.park(c)
		case overflow:
			r.sendToWait(c)
		}
	}
}

// take returns a worker's next delivery, counted as outstanding; false
// once ready is closed. Woken deliveries come first (their reservation
// is due), then held ones, except at every fourth pick, which prefers
// one claimed from the store: a stream of new messages cannot starve
// retries.
func (r *runner) take(pick int) (claimed, bool) {
	select {
	case c := <-r.woken:
		r.outstanding.add()
		return c, true
	default:
	}
	if pick%4 == 3 {
		select {
		case c, ok := <-r.ready:
			return c, ok // counted when it was claimed
		default:
		}
	}
	select {
	case c := <-r.q.held:
		r.outstanding.add()
		return c, true
	default:
	}
	select {
	case c := <-r.woken:
		r.outstanding.add()
		return c, true
	case c := <-r.q.held:
		r.outstanding.add()
		return c, true
	case c, ok := <-r.ready:
		return c, ok
	}
}

// runSlot attempts c in the slot of its endpoint it took at start, then,
// as long as the endpoint's share passes the slot on, the parked
// deliveries it passes to; it skips those not to be attempted (skip).
func (r *runner) runSlot(c claimed, start time.Time) {
	for ok := true; ok; {
		c, ok, start = r.attemptInSlot(c, start)
		for ok && (r.ctx.Err() != nil || !r.fresh(c)) {
			c, ok, start = r.skip(c, start)
		}
	}
}

// attemptInSlot makes c's attempt in the slot taken at start, and
// returns the parked delivery the slot passes to, if any, and when it
// did. A delivery its throttle holds back is kept aside (keepAside).
func (r *runner) attemptInSlot(c claimed, start time.Time) (next claimed, ok bool, end time.Time) {
	retry, throttledUntil := r.q.makeAttempt(r.ctx, c)
	end = r.q.clock.Now()
	if !throttledUntil.IsZero() {
		r.keepAside(c, throttledUntil)
		next, ok = r.fair.throttled(c.ref.EndpointID, start, end)
	} else {
		r.forget(c)
		next, ok = r.fair.done(c.ref.EndpointID, start, end, retry)
	}
	if ok {
		r.outstanding.unpark(next)
	}
	return next, ok, end
}

// skip passes on the slot passed to c at start without attempting it: c
// is too old (its attempt could outlast its claim), and goes to wait in
// the store, or the queue is stopping, and c stays claimed for the next
// start. It returns the parked delivery the slot passes to next, if any.
func (r *runner) skip(c claimed, start time.Time) (next claimed, ok bool, now time.Time) {
	stopping := r.ctx.Err() != nil
	now = r.q.clock.Now()
	next, ok = r.fair.skip(c.ref.EndpointID, start, now, !stopping)
	if stopping {
		r.forget(c)
	} else {
		r.sendToWait(c)
	}
	if ok {
		r.outstanding.unpark(next)
	}
	return next, ok, now
}

// keepAside keeps aside a delivery its endpoint's throttle holds back
// until until, and hands it to a worker then (through woken), to be
// admitted again. Meanwhile it takes no worker and is not outstanding
// (its endpoint counts it as sleeping, within its room: fairness.go), so
// that a throttled backlog does not stop the claims for other endpoints;
// a held one keeps its room of Hold. When the queue stops first, it stays
// claimed in the store, for the next start.
func (r *runner) keepAside(c claimed, until time.Time) {
	c.slept = true
	r.outstanding.remove()
	r.asleep.Add(1)
	t := time.NewTimer(until.Sub(r.q.clock.Now()))
	go func() {
		defer r.asleep.Done()
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

// forget ends what the queue keeps for a delivery that was attempted, or
// is given up: the room of a held one, and its count as outstanding.
func (r *runner) forget(c claimed) {
	r.q.unhold(c)
	r.outstanding.remove()
}

// sendToWait sends a claimed delivery that will not be attempted from
// memory to wait in the store for a slot of its endpoint: the loop puts
// it there (storeWaiting), and it is forgotten here.
func (r *runner) sendToWait(c claimed) {
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
	r.forget(c)
	r.q.kick()
}

// makeAttempt makes one attempt and reports whether it scheduled a retry,
// or, if the endpoint's throttle held it back (see AttemptFunc), until
// when. The attempt outlives a shutdown request: it is bounded by the
// sender's budget, and finishing it avoids a duplicate POST after
// restart.
func (q *Queue) makeAttempt(ctx context.Context, c claimed) (retry bool, throttledUntil time.Time) {
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
