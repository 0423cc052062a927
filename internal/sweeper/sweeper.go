// Package sweeper does the periodic housekeeping that keeps promises when
// no request is around to do it: it disables endpoints that have failed for
// too long (a week by default, as the seed page says) and cancels what was
// pending for them, and it re-drives deliveries whose dispatch never
// happened (the process died, or StartExecution failed, between storing a
// message and scheduling it). Each run does a bounded amount of work; the
// next run picks up where it stopped, because it queries the current state.
package sweeper

import (
	"context"
	"log/slog"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// DispatchFunc hands a run to the dispatcher and marks it dispatched.
type DispatchFunc func(ctx context.Context, ref webhook.Ref) error

// Sweeper disables week-failing endpoints and re-drives undispatched
// deliveries.
type Sweeper struct {
	Store    webhook.Store
	Dispatch DispatchFunc
	Clock    webhook.Clock
	Logger   *slog.Logger
	// DisableAfter is how long an endpoint may fail before it is disabled.
	DisableAfter time.Duration
	// RedriveAfter is how long a delivery may stay undispatched before it
	// is re-driven; it leaves time for a slow first dispatch to finish.
	RedriveAfter time.Duration
	// Batch bounds the endpoints disabled and the deliveries re-driven by
	// one run.
	Batch int
}

// Report says what one run did. More is true when a batch was full and
// another run would find more work.
type Report struct {
	Disabled int  `json:"disabled"`
	Redriven int  `json:"redriven"`
	More     bool `json:"more"`
}

// Sweep runs once.
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
		n, err := s.Store.CancelDeliveries(ctx, ep.AppID, ep.ID, now)
		if err != nil {
			return r, err
		}
		r.Disabled++
		s.Logger.Warn("endpoint disabled after failing too long",
			"app_id", ep.AppID, "endpoint_id", ep.ID, "failing_since", ep.FailingSince, "canceled", n)
	}

	stuck, err := s.Store.ListUndispatched(ctx, now.Add(-s.RedriveAfter), s.Batch)
	if err != nil {
		return r, err
	}
	r.More = r.More || len(stuck) == s.Batch
	for _, d := range stuck {
		if err := s.Dispatch(ctx, d.Ref()); err != nil {
			s.Logger.Warn("re-drive failed; next sweep tries again",
				"msg_id", d.MsgID, "endpoint_id", d.EndpointID, "run", d.Run, "err", err)
			continue
		}
		r.Redriven++
	}
	if r.Disabled > 0 || r.Redriven > 0 {
		s.Logger.Info("sweep", "disabled", r.Disabled, "redriven", r.Redriven, "more", r.More)
	}
	return r, nil
}
