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
// the attempts in flight to finish.
func (q *Queue) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, q.cfg.Workers)
	done := make(chan struct{}, 1)
	for {
		free := q.cfg.Workers - len(slots)
		var refs []webhook.Ref
		if free > 0 {
			var err error
			refs, err = q.store.ClaimDue(ctx, q.clock.Now(), q.cfg.Lease, free)
			if err != nil && ctx.Err() == nil {
				q.log.Error("claim due deliveries", "err", err)
			}
		}
		for _, ref := range refs {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The attempt outlives a shutdown request: it is bounded
				// by the sender's budget, and finishing it avoids a
				// duplicate POST after restart.
				if err := q.attempt(context.WithoutCancel(ctx), ref); err != nil {
					q.log.Error("attempt failed; it will be retried after the lease",
						"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "err", err)
				}
				<-slots
				select {
				case done <- struct{}{}:
				default: // the loop is awake already
				}
			}()
		}
		if len(refs) > 0 && len(refs) == free {
			continue // there may be more due right now
		}
		if err := q.sleep(ctx, done); err != nil {
			return nil
		}
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
