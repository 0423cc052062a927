package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// The operational webhook endpoints (Svix's OperationalWebhookEndpoint) are
// the endpoints of the reserved app operational.AppID: their routes run
// the endpoint handlers on that app (opsRoute puts it in the request), which
// answer in the OperationalWebhookEndpointOut shape and check filterTypes
// against the operational event types instead of the catalog. Every
// other route answers 404 for the reserved app, as if it did not exist.

// opsEndpointOut is OperationalWebhookEndpointOut.
type opsEndpointOut struct {
	ID           string            `json:"id"`
	UID          *string           `json:"uid,omitempty"`
	URL          string            `json:"url"`
	Description  string            `json:"description"`
	Disabled     bool              `json:"disabled"`
	FilterTypes  []string          `json:"filterTypes,omitempty"`
	Metadata     map[string]string `json:"metadata"`
	ThrottleRate *int              `json:"throttleRate,omitempty"`
	RateLimit    *int              `json:"rateLimit,omitempty"`
	CreatedAt    timestamp         `json:"createdAt"`
	UpdatedAt    timestamp         `json:"updatedAt"`
}

func newOpsEndpointOut(ep *webhook.Endpoint) opsEndpointOut {
	return opsEndpointOut{
		ID:           ep.ID,
		UID:          stringOrNull(ep.UID),
		URL:          ep.URL,
		Description:  ep.Description,
		Disabled:     ep.Disabled,
		FilterTypes:  ep.FilterTypes,
		Metadata:     nonNilMap(ep.Metadata),
		ThrottleRate: ep.ThrottleRate,
		RateLimit:    ep.ThrottleRate,
		CreatedAt:    timestamp(ep.CreatedAt),
		UpdatedAt:    timestamp(ep.UpdatedAt),
	}
}

type opsKey struct{}

// opsApp returns the reserved app when r came in on an operational webhook
// route, else nil.
func opsApp(r *http.Request) *webhook.App {
	app, _ := r.Context().Value(opsKey{}).(*webhook.App)
	return app
}

// isOps reports whether r came in on an operational webhook route.
func isOps(r *http.Request) bool { return opsApp(r) != nil }

// opsRoute runs an endpoint handler on the reserved app, creating the app on
// first use. The handler's appFromPath returns the app read here.
func (s *Server) opsRoute(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		app, err := operational.EnsureApp(r.Context(), s.store, s.now())
		if err != nil {
			return err
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), opsKey{}, app)))
	}
}

// endpointView is the response body of an endpoint: EndpointOut, or
// OperationalWebhookEndpointOut on the operational routes.
func endpointView(r *http.Request) func(*webhook.Endpoint) any {
	if isOps(r) {
		return func(ep *webhook.Endpoint) any { return newOpsEndpointOut(ep) }
	}
	return func(ep *webhook.Endpoint) any { return newEndpointOut(ep) }
}

// checkFilterExists checks that a filter's event types exist: in the
// catalog, or among the operational event types on the operational routes.
func (s *Server) checkFilterExists(r *http.Request, name string, types []string) error {
	if !isOps(r) {
		return s.checkEventTypesExist(r.Context(), appTokenOf(r), name, types)
	}
	var missing []string
	for _, t := range types {
		if !slices.Contains(operational.EventTypes, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return webhook.Invalid(loc("body", name), "The following event types don't exist: %s (operational webhooks send %s)",
			strings.Join(missing, ", "), strings.Join(operational.EventTypes, ", "))
	}
	return nil
}

// checkOpsInput refuses what an operational endpoint does not have:
// channels (its events have none, so it would receive nothing).
func checkOpsInput(r *http.Request, p *webhook.Problems, in endpointInput) {
	if isOps(r) && in.channels.Value() && len(in.channels.V) > 0 {
		p.Add(loc("body", "channels"), "operational webhook endpoints have no channels")
	}
}
