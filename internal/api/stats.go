package api

import (
	"net/http"

	"github.com/hookstep/hookstep/internal/webhook"
)

// statsOut is EndpointStats: delivery counts by status.
type statsOut struct {
	Success  int `json:"success"`
	Pending  int `json:"pending"`
	Sending  int `json:"sending"`
	Fail     int `json:"fail"`
	Canceled int `json:"canceled"`
}

// endpointStats counts the endpoint's deliveries by status, for messages
// created in [since, until).
func (s *Server) endpointStats(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	since, until := q.time("since"), q.time("until")
	if !since.IsZero() && !until.IsZero() && !until.After(since) {
		p.Add(loc("query", "until"), "must be after since")
	}
	if err := p.Err(); err != nil {
		return err
	}
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	counts, err := s.store.EndpointStats(r.Context(), app.ID, ep.ID, since, until)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, statsOut{
		Success:  counts[webhook.StatusSuccess],
		Pending:  counts[webhook.StatusPending],
		Sending:  counts[webhook.StatusSending],
		Fail:     counts[webhook.StatusFail],
		Canceled: counts[webhook.StatusCanceled],
	})
	return nil
}
