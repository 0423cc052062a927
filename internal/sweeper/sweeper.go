// Package sweeper does the periodic housekeeping that keeps promises when
// no request is around to do it: it disables endpoints that have failed for
// too long (a week by default, as the seed page says) and cancels what was
// pending for them, and it makes sure every unfinished delivery has an
// owner. Each pass does a bounded amount of work and the next picks up
// where it stopped, because it queries the current state; SweepFor runs
// passes while there is work and time.
//
// Owners. A dispatched run belongs to its dispatcher: the local queue, or
// a Step Functions execution. An undispatched run belongs to the sweeper,
// which dispatches it once it has waited RedriveAfter (the process died,
// or the start failed or was throttled, between storing a message and
// dispatching it). On AWS an execution can also end without finishing its
// delivery (it was stopped, failed beyond its error handling, or handed
// the run back); with Overdue and Executions set, the sweeper also looks
// at dispatched runs whose next attempt is RedriveAfter overdue: if their
// execution still runs (slow, throttled, reconciling) it looks again after
// Recheck; if not, it re-drives the run as a new run (Store.Redrive) that
// keeps its attempts. So every unfinished delivery is owned by a running
// execution or by the sweeper, never by nothing.
//
// In the AWS queue mode a run's first attempt goes through an SQS queue
// before any execution exists: a dispatched run without an attempt is
// the queue's (QueueOwns), which keeps a message until the deliver
// function has handled it and moves one it failed too often to a
// dead-letter queue; the sweeper moves those back (DeadLetters). A
// queued run still without an attempt after QueueOwns is re-driven.
package sweeper

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// DispatchFunc hands runs to the dispatcher, marks those it took as
// dispatched, and returns them (delivery.Service.Dispatch).
type DispatchFunc func(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error)

// OverdueStore is what the sweeper needs to find runs whose execution may
// be gone (internal/dynamo).
type OverdueStore interface {
	// ListOverdue returns up to limit unfinished deliveries, dispatched
	// or not, that should have moved on before the given time.
	ListOverdue(ctx context.Context, before time.Time, limit int) ([]webhook.Delivery, error)
	// Postpone moves the sweeper's next look at a run to until.
	Postpone(ctx context.Context, ref webhook.Ref, until time.Time) error
}

// Executions tells whether a run's execution still runs (internal/sfn).
type Executions interface {
	Running(ctx context.Context, ref webhook.Ref) (bool, error)
}

// DeadLetters moves runs from a dead-letter queue back into the delivery
// queue (internal/sqs).
type DeadLetters interface {
	// Requeue moves up to max runs and says how many it moved, and how
	// many messages it dropped because they named no run.
	Requeue(ctx context.Context, max int) (moved, bad int, err error)
}

// Sweeper disables week-failing endpoints and keeps every unfinished
// delivery owned.
type Sweeper struct {
	Store    webhook.Store
	Dispatch DispatchFunc
	Clock    webhook.Clock
	Logger   *slog.Logger
	// DisableAfter is how long an endpoint may fail before it is disabled.
	DisableAfter time.Duration
	// RedriveAfter is how long a run may stay undispatched, or its next
	// attempt overdue, before the sweeper steps in, and how long after a
	// run's dispatch or attempt it does not ask after its execution; it
	// leaves time for a slow dispatch or attempt to finish.
	RedriveAfter time.Duration
	// Batch bounds the endpoints disabled and the deliveries looked at
	// by one pass.
	Batch int
	// Overdue and Executions, both set, make the sweeper check
	// dispatched runs whose next attempt is overdue (AWS). Without them
	// it re-drives undispatched runs only (local mode: the queue owns
	// every dispatched run in the store itself).
	Overdue    OverdueStore
	Executions Executions
	// Recheck is how long the sweeper leaves an overdue run whose
	// execution still runs before it looks again. Default 15 minutes.
	Recheck time.Duration
	// QueueOwns, when set (AWS queue mode), is how long a dispatched run
	// without an attempt belongs to the delivery queue: the sweeper
	// looks again after Recheck instead of asking after an execution
	// that does not exist yet, and re-drives the run only once it has
	// been queued this long.
	QueueOwns time.Duration
	// DeadLetters, when set, is drained back into the delivery queue,
	// up to Batch runs a pass.
	DeadLetters DeadLetters
	// Operational, when set, sends endpoint.disabled (trigger
	// automatic) for each endpoint the sweeper disables.
	Operational *operational.Emitter
}

// Report says what a sweep did. More is true when a batch was full and
// another pass would find more work; Backlog counts the runs the last
// pass found waiting for a dispatch and could not dispatch, plus a full
// batch when More is true: a lower bound of what is left.
type Report struct {
	Disabled  int  `json:"disabled"`
	Redriven  int  `json:"redriven"`  // runs dispatched
	Restarted int  `json:"restarted"` // of those, runs re-driven as a new run
	Postponed int  `json:"postponed"` // overdue runs whose execution still runs, or still queued
	Requeued  int  `json:"requeued"`  // runs moved from the dead-letter queue back to the delivery queue
	Backlog   int  `json:"backlog"`
	More      bool `json:"more"`
	// Incomplete: a dispatch failed in part (a start, or its mark), so
	// another pass now would find the same runs.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Sweep runs one pass.
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	var r Report
	now := s.Clock.Now()
	failing, err := s.Store.ListFailingEndpoints(ctx, now.Add(-s.DisableAfter), s.Batch)
	if err != nil {
		return r, err
	}
	r.More = len(failing) == s.Batch
	for _, ep := range failing {
		err := s.Store.DisableEndpoint(ctx, ep.AppID, ep.ID, ep.FailingSince, now)
		if webhook.IsConflict(err) || webhook.IsNotFound(err) {
			continue // it recovered, was changed or deleted meanwhile
		}
		if err != nil {
			return r, err
		}
		s.Operational.Disabled(ctx, nil, &ep, operational.TriggerAutomatic, ep.FailingSince)
		n, err := s.Store.CancelDeliveries(ctx, ep.AppID, ep.ID, now)
		if err != nil {
			return r, err
		}
		r.Disabled++
		s.Logger.Warn("endpoint disabled after failing too long",
			"app_id", ep.AppID, "endpoint_id", ep.ID, "failing_since", ep.FailingSince, "canceled", n)
	}

	if s.DeadLetters != nil {
		moved, bad, err := s.DeadLetters.Requeue(ctx, s.Batch)
		r.Requeued = moved
		r.More = r.More || moved+bad == s.Batch
		if bad > 0 {
			s.Logger.Error("dead-letter messages that name no run dropped", "count", bad)
		}
		if err != nil {
			return r, err
		}
	}

	var stuck []webhook.Delivery
	if s.checksExecutions() {
		stuck, err = s.Overdue.ListOverdue(ctx, now.Add(-s.RedriveAfter), s.Batch)
	} else {
		stuck, err = s.Store.ListUndispatched(ctx, now.Add(-s.RedriveAfter), s.Batch)
	}
	if err != nil {
		return r, err
	}
	r.More = r.More || len(stuck) == s.Batch
	var toDispatch []webhook.Ref
	for _, d := range stuck {
		ref, err := s.owner(ctx, d, now, &r)
		if err != nil {
			s.Logger.Warn("overdue run not checked; next sweep tries again",
				"msg_id", d.MsgID, "endpoint_id", d.EndpointID, "run", d.Run, "err", err)
			continue
		}
		if ref != nil {
			toDispatch = append(toDispatch, *ref)
		}
	}
	if len(toDispatch) > 0 {
		taken, err := s.Dispatch(ctx, toDispatch)
		if err != nil {
			r.Incomplete = true
			s.Logger.Warn("re-drive incomplete; next sweep tries again",
				"runs", len(toDispatch), "dispatched", len(taken), "err", err)
		}
		r.Redriven += len(taken)
		r.Backlog = len(toDispatch) - len(taken)
	}
	if r.More {
		r.Backlog += s.Batch
	}
	if r.Disabled > 0 || r.Redriven > 0 || r.Restarted > 0 || r.Requeued > 0 {
		s.Logger.Info("sweep", "disabled", r.Disabled, "redriven", r.Redriven, "restarted", r.Restarted,
			"postponed", r.Postponed, "requeued", r.Requeued, "backlog", r.Backlog, "more", r.More)
	}
	return r, nil
}

func (s *Sweeper) checksExecutions() bool { return s.Overdue != nil && s.Executions != nil }

// owner makes sure an overdue run has an owner and returns the run to
// dispatch, if any: an undispatched run as it is; a dispatched one whose
// execution has ended, re-driven as a new run; none when it was updated
// (dispatched, attempted) within RedriveAfter, when its execution still
// runs or the queue still owns it (the next look is postponed), or when
// it moved on meanwhile.
func (s *Sweeper) owner(ctx context.Context, d webhook.Delivery, now time.Time, r *Report) (*webhook.Ref, error) {
	ref := d.Ref()
	if !d.Dispatched {
		return &ref, nil
	}
	if now.Sub(d.UpdatedAt) < s.RedriveAfter {
		// Dispatched or attempted a moment ago: too soon to ask after
		// its execution, which DescribeExecution (eventually
		// consistent) may not show yet.
		return nil, nil
	}
	queued := s.QueueOwns > 0 && d.Attempts == 0 && now.Sub(d.UpdatedAt) < s.QueueOwns
	running := queued
	if !queued {
		var err error
		if running, err = s.Executions.Running(ctx, ref); err != nil {
			return nil, err
		}
	}
	if running {
		recheck := s.Recheck
		if recheck <= 0 {
			recheck = 15 * time.Minute
		}
		r.Postponed++
		return nil, s.Overdue.Postpone(ctx, ref, now.Add(recheck))
	}
	after, err := s.Store.Redrive(ctx, ref, now)
	if webhook.IsConflict(err) || webhook.IsNotFound(err) {
		return nil, nil // it moved on meanwhile
	}
	if err != nil {
		return nil, err
	}
	r.Restarted++
	s.Logger.Warn("run without a running execution re-driven as a new run",
		"msg_id", d.MsgID, "endpoint_id", d.EndpointID, "run", d.Run, "new_run", after.Run, "attempts", after.Attempts)
	next := after.Ref()
	return &next, nil
}

// Ended takes back a run whose dispatcher let it go without finishing
// it: on AWS, Step Functions says an execution failed, was aborted or
// timed out (an EventBridge rule invokes the sweeper with the event). A
// run still unfinished is re-driven as the next run and dispatched; one
// that moved on, finished or is gone is left alone. It reports whether
// it re-drove the run; a dispatch that fails leaves the new run
// undispatched, for the next sweep.
func (s *Sweeper) Ended(ctx context.Context, ref webhook.Ref) (bool, error) {
	after, err := s.Store.Redrive(ctx, ref, s.Clock.Now())
	if webhook.IsConflict(err) || webhook.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.Logger.Warn("run whose execution ended unfinished re-driven as a new run",
		"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "run", ref.Run, "new_run", after.Run, "attempts", after.Attempts)
	if _, err := s.Dispatch(ctx, []webhook.Ref{after.Ref()}); err != nil {
		s.Logger.Warn("re-drive not dispatched; next sweep tries again", "msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "err", err)
	}
	return true, nil
}

// SweepFor runs passes while the last one found more work, got some done,
// and there is time left before the deadline (a Lambda's, less a margin
// for the last pass), and returns what they did together; the backlog is
// the last pass's.
func (s *Sweeper) SweepFor(ctx context.Context, deadline time.Time) (Report, error) {
	var total Report
	for {
		r, err := s.Sweep(ctx)
		total.Disabled += r.Disabled
		total.Redriven += r.Redriven
		total.Restarted += r.Restarted
		total.Postponed += r.Postponed
		total.Requeued += r.Requeued
		total.Backlog, total.More, total.Incomplete = r.Backlog, r.More, r.Incomplete
		progress := r.Disabled + r.Redriven + r.Restarted + r.Postponed + r.Requeued
		if err != nil || !r.More || r.Incomplete || progress == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return total, err
		}
	}
}
