// Package localqueue is the Dispatcher of local mode: a durable retry queue
// whose entries are the delivery rows of the SQLite store themselves. A
// delivery is due when it is Pending or Sending and its NextAttemptAt has
// come; workers claim due deliveries with a lease (pushing NextAttemptAt
// forward), make the attempt, and the attempt's result sets the real next
// time. A process killed mid-attempt loses nothing: its claims expire after
// the lease and are taken again; overdue deliveries run as soon as the
// process is back.
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
}

// AttemptFunc makes one attempt of a run; an error leaves the claim to
// expire so that the attempt is made again.
type AttemptFunc func(ctx context.Context, ref webhook.Ref) error

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
	// took SlowAfter or longer (see fairness.go). Defaults: Workers (no
	// limit), EndpointShare, and 1 s.
	EndpointShare int
	SlowShare     int
	SlowAfter     time.Duration
}

// Queue runs due deliveries on a pool of workers.
type Queue struct {
	store   Store
	attempt AttemptFunc
	clock   webhook.Clock
	log     *slog.Logger
	cfg     Config
	wake    chan struct{}
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
	if cfg.SlowAfter <= 0 {
		cfg.SlowAfter = time.Second
	}
	return &Queue{store: store, attempt: attempt, clock: clock, log: log, cfg: cfg, wake: make(chan struct{}, 1)}
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
// the attempts in flight to finish. Claimed deliveries that are still
// waiting for a worker are left to their lease. Workers are shared
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
	var outstanding atomic.Int64 // claimed and not finished: ready, parked or in flight
	finished := func() {
		outstanding.Add(-1)
		select {
		case done <- struct{}{}:
		default: // the loop is awake already
		}
	}
	// usable reports whether a claimed delivery may still be attempted:
	// not shutting down, and not so old that its attempt could outlast
	// its lease.
	usable := func(c claimed) bool {
		return ctx.Err() == nil && (prefetch == 0 || q.clock.Now().Sub(c.at) <= maxWait)
	}
	fair := newShares(q.cfg.EndpointShare, q.cfg.SlowShare, q.cfg.SlowAfter)
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() {
			for c := range ready {
				if !usable(c) {
					finished()
					continue
				}
				start := time.Now()
				switch fair.admit(c, start) {
				case parked:
					continue // a worker done with its endpoint runs it
				case dropped:
					q.leaveToLease(c)
					finished()
					continue
				}
				// Attempt it, then the deliveries parked for its endpoint
				// that the slot passes to.
				for ok := true; ok; {
					q.run(ctx, c.ref)
					finished()
					end := time.Now()
					c, ok = fair.done(c.ref.EndpointID, start, end)
					start = end
					for ok && !usable(c) {
						finished()
						now := time.Now()
						c, ok = fair.skip(c.ref.EndpointID, start, now)
						start = now
					}
				}
			}
		})
	}
	defer func() {
		close(ready)
		wg.Wait()
	}()
	// With deliveries ready, claim only once half of them are taken: one
	// claim (a write) per batch rather than per finished attempt.
	batch := max(1, prefetch/2)
	for {
		for _, c := range fair.shed(time.Now()) {
			q.leaveToLease(c)
			finished()
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
		if err := q.sleep(ctx, done); err != nil {
			return nil
		}
	}
}

// claimed is a delivery claimed at a time, waiting for or in its attempt.
type claimed struct {
	ref webhook.Ref
	at  time.Time
}

// leaveToLease gives up a claimed delivery of a slow endpoint: it stays
// claimed until its lease ends, and is due again then.
func (q *Queue) leaveToLease(c claimed) {
	q.log.Debug("slow endpoint at its share; the delivery waits for its lease",
		"msg_id", c.ref.MsgID, "endpoint_id", c.ref.EndpointID)
}

// run makes one attempt. The attempt outlives a shutdown request: it is
// bounded by the sender's budget, and finishing it avoids a duplicate
// POST after restart.
func (q *Queue) run(ctx context.Context, ref webhook.Ref) {
	if err := q.attempt(context.WithoutCancel(ctx), ref); err != nil {
		q.log.Error("attempt failed; it will be retried after the lease",
			"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "err", err)
	}
}

// sleep waits until the next delivery is due, a dispatch or a finished
// attempt wakes the queue, or Poll has passed.
func (q *Queue) sleep(ctx context.Context, done <-chan struct{}) error {
	wait := q.cfg.Poll
	if next, ok, err := q.store.NextDue(ctx); err == nil && ok {
		if d := next.Sub(q.clock.Now()); d < wait {
			wait = max(d, 0)
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-q.wake:
	case <-done:
	case <-t.C:
	}
	return nil
}
