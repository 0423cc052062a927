package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// maxUsageApps bounds AppUsageStatsIn.appIds: the task keeps them in its
// state, and its data holds one entry per app.
const maxUsageApps = 1000

// appUsageStatsOut is AppUsageStatsOut: the application.stats task a
// POST /api/v1/stats/usage/app started, and the appIds that name no app.
type appUsageStatsOut struct {
	ID               string    `json:"id"`
	Status           string    `json:"status"`
	Task             string    `json:"task"`
	UnresolvedAppIDs []string  `json:"unresolvedAppIds"`
	UpdatedAt        timestamp `json:"updatedAt"`
}

// aggregateAppStats answers POST /api/v1/stats/usage/app (Svix's
// AggregateAppStats, AppUsageStatsIn): a background task that counts, per
// app, the deliveries ("messageDestinations") created in [since, until),
// for the apps appIds names (ids or uids) or every app. Ids and uids that
// name no customer app (the operational webhooks' reserved app is none)
// are returned as unresolvedAppIds; when none resolves, 422.
// Admin only: the stats span the whole organization.
func (s *Server) aggregateAppStats(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	since, hasSince := required[time.Time](f, "since")
	until, hasUntil := required[time.Time](f, "until")
	if hasSince && hasUntil && !until.After(since) {
		p.Add(loc("body", "until"), "must be after since")
	}
	var refs []string
	if ids := field[[]string](f, "appIds"); ids.Value() {
		if len(ids.V) > maxUsageApps {
			p.Add(loc("body", "appIds"), "at most %d apps", maxUsageApps)
		}
		for _, id := range ids.V {
			if id == "" || len(id) > maxPathValue {
				p.Add(loc("body", "appIds"), "each must be an app id or uid")
				break
			}
		}
		refs = ids.V
	}
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	var appIDs []string
	unresolved := []string{}
	for _, ref := range refs {
		app, err := s.customerApp(ctx, ref)
		switch {
		case webhook.IsNotFound(err):
			unresolved = append(unresolved, ref)
		case err != nil:
			return err
		case !slices.Contains(appIDs, app.ID):
			appIDs = append(appIDs, app.ID)
		}
	}
	if len(refs) > 0 && len(appIDs) == 0 {
		return webhook.Invalid(loc("body", "appIds"), "None of the given app ids or uids exists")
	}
	task, err := s.deliveries.AppStats(ctx, appIDs, since, until)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusAccepted, appUsageStatsOut{
		ID: task.ID, Status: string(task.Status), Task: string(task.Kind),
		UnresolvedAppIDs: unresolved, UpdatedAt: timestamp(task.UpdatedAt),
	})
	return nil
}

// aggregateEventTypesOut is AggregateEventTypesOut: the
// event-type.aggregate task a PUT /api/v1/stats/usage/event-types started.
type aggregateEventTypesOut struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	Task      string    `json:"task"`
	UpdatedAt timestamp `json:"updatedAt"`
}

// aggregateEventTypes answers PUT /api/v1/stats/usage/event-types (Svix's
// AggregateEventTypes, no body): a background task that lists, per app,
// the event types its endpoints subscribe to explicitly and whether one
// of them takes every type. Admin only, as the app stats.
func (s *Server) aggregateEventTypes(w http.ResponseWriter, r *http.Request) error {
	task, err := s.deliveries.AggregateEventTypes(r.Context())
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusAccepted, aggregateEventTypesOut{
		ID: task.ID, Status: string(task.Status), Task: string(task.Kind), UpdatedAt: timestamp(task.UpdatedAt),
	})
	return nil
}
