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
	// like the others. Default 512 per worker, at most maxHold; negative,
	// or without an AttemptTimeout under Lease, nothing is held.
	Hold int
	// HoldBytes bounds the payloads that held deliveries keep in memory
	// with what Publish read for them (webhook.Loaded): beyond it a held
	// delivery keeps only its reference, and its attempt reads the
	// store. A payload is counted once per delivery. Default 64 MiB.
	HoldBytes int64
}

// maxHold bounds the default Hold: the buffer is allocated up front.
const maxHold = 1 << 16

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
		cfg.Hold = min(512*cfg.Workers, maxHold)
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

// Polls implements delivery.Polling: the loop claims due deliveries from
// the store, dispatched or not.
func (q *Queue) Polls() {}

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
	var workers sync.WaitGroup
	for range q.cfg.Workers {
		workers.Go(r.work)
	}
	stopHolding := context.AfterFunc(ctx, func() { q.stopped.Store(true) })
	defer func() {
		stopHolding()
		q.stopped.Store(true)
		close(r.ready)
		workers.Wait()
		r.asleep.Wait()
	}()
	r.claimLoop()
	return nil
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

// sleepUntilDue waits until the earliest unfinished delivery has been
// due for Gather, a dispatch wakes the queue, or Poll has passed. An attempt that
// ends does not wake it (nothing it could claim became due); one that
// schedules a retry before the wake-up makes it look at the store again
// (a read), not claim.
func (q *Queue) sleepUntilDue(ctx context.Context) error {
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
