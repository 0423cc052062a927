package api

import (
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// maxRecoverSpan is the longest window a recover may cover.
const maxRecoverSpan = 14 * 24 * time.Hour

// recoverOut is RecoverOut, the background task a recover started (GET
// /api/v1/background-task/{id} follows it).
type recoverOut struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Task      string    `json:"task"`
	UpdatedAt timestamp `json:"updatedAt"`
}

// recoverEndpoint re-sends the endpoint's failed messages of a window of
// at most 14 days that does not start in the future.
func (s *Server) recoverEndpoint(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	now := s.now()
	since, hasSince := required[time.Time](f, "since")
	untilIn := field[time.Time](f, "until")
	until := now
	if untilIn.Value() {
		until = untilIn.V
	}
	if hasSince {
		switch {
		case since.After(now):
			p.Add(loc("body", "since"), "must not be in the future")
		case !until.After(since):
			p.Add(loc("body", "until"), "must be after since")
		case until.Sub(since) > maxRecoverSpan:
			p.Add(loc("body", "since"), "the recovery window must be at most 14 days")
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	_, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	if ep.Disabled {
		return errEndpointDisabled("recovering")
	}
	task, err := s.deliveries.Recover(ctx, ep, since, until)
	if err != nil {
		if webhook.IsNotFound(err) {
			return errNotFound("Endpoint") // deleted meanwhile
		}
		return err
	}
	s.writeJSON(w, r, http.StatusAccepted, recoverOut{
		ID:        task.ID,
		Status:    string(task.Status),
		Task:      string(task.Kind),
		UpdatedAt: timestamp(task.UpdatedAt),
	})
	return nil
}
