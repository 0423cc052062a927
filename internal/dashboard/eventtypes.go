package dashboard

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/hookstep/hookstep/internal/webhook"
)

// examplePayload returns the first example payload of an event type's
// schemas — Svix keeps them in schemas[version]["examples"], and the
// seeded catalog in schemas["1"]["examples"][0] — preferring version "1".
// It returns nil when there is none that is a JSON object.
func examplePayload(schemas json.RawMessage) json.RawMessage {
	var byVersion map[string]struct {
		Examples []json.RawMessage `json:"examples"`
	}
	if len(schemas) == 0 || json.Unmarshal(schemas, &byVersion) != nil {
		return nil
	}
	versions := slices.Sorted(maps.Keys(byVersion))
	if i := slices.Index(versions, "1"); i > 0 {
		versions = append([]string{"1"}, slices.Delete(versions, i, i+1)...)
	}
	for _, v := range versions {
		for _, ex := range byVersion[v].Examples {
			var p webhook.Problems
			if payload := webhook.ValidatePayload(&p, []string{"payload"}, ex); p.Err() == nil {
				return payload
			}
		}
	}
	return nil
}

// eventTypeRow is an event type of the catalog page.
type eventTypeRow struct {
	webhook.EventType
	Example json.RawMessage
}

// appEndpoints is an app with its endpoints, a group of the "Send example"
// choices.
type appEndpoints struct {
	App       webhook.App
	Endpoints []webhook.Endpoint
}

type eventTypesData struct {
	layout
	Types   []eventTypeRow
	Targets []appEndpoints
}

func (h *handler) eventTypesPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	cat, _, err := h.catalog(ctx)
	if err != nil {
		return err
	}
	data := eventTypesData{layout: h.newPage(w, r, "Event types", "event-types")}
	for _, et := range cat {
		data.Types = append(data.Types, eventTypeRow{EventType: et, Example: examplePayload(et.Schemas)})
	}
	var apps []webhook.App
	if p := portalOf(ctx); p != nil {
		apps = []webhook.App{*p.app} // the session's app only
	} else {
		page, err := h.store.ListApps(ctx, webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true})
		if err != nil {
			return err
		}
		apps = customerApps(page.Items)
	}
	for _, app := range apps {
		eps, err := h.allEndpoints(ctx, app.ID)
		if err != nil {
			return err
		}
		if len(eps) > 0 {
			data.Targets = append(data.Targets, appEndpoints{App: app, Endpoints: eps})
		}
	}
	return h.render(w, r, http.StatusOK, "eventtypes.html", &data)
}

// sendExample sends an event type's example payload to one endpoint: it
// stores a message of the type in the endpoint's app, without fanning it
// out, and starts a manual run of it to that endpoint only — a test of one
// endpoint must not reach the app's other endpoints. The endpoint is the
// one of the path, or, from the catalog page, the form's "endpoint"
// ("app_id/endpoint_id").
func (h *handler) sendExample(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var (
		app *webhook.App
		ep  *webhook.Endpoint
		err error
	)
	if r.PathValue("endpoint_id") != "" {
		app, ep, err = h.loadEndpoint(r)
	} else {
		app, ep, err = h.endpointByRef(ctx, r.PostFormValue("endpoint"))
	}
	if err != nil {
		return err
	}
	if ep.Disabled {
		return badRequest("That endpoint is disabled. Enable it before sending to it.")
	}
	et, err := h.store.GetEventType(ctx, r.PostFormValue("event_type"))
	if webhook.IsNotFound(err) || (err == nil && (et.Archived || !sessionOf(ctx).SeesEventType(et))) {
		return badRequest("Choose an event type of the catalog.")
	}
	if err != nil {
		return err
	}
	payload := examplePayload(et.Schemas)
	if payload == nil {
		return badRequest("The event type " + et.Name + " has no example payload.")
	}
	now := h.clock.Now()
	msg := &webhook.Message{
		ID:        webhook.NewID(webhook.PrefixMessage),
		AppID:     app.ID,
		EventType: et.Name,
		Payload:   payload,
		Timestamp: now,
		ExpiresAt: now.Add(h.retention),
	}
	if err := h.store.CreateMessage(ctx, msg, nil); err != nil {
		return err
	}
	if err := h.deliveries.Resend(ctx, msg, ep); err != nil {
		return err
	}
	return redirect(w, r, "/app/"+app.ID+"/msg/"+msg.ID+"?done=example")
}

// endpointByRef finds the endpoint of a "app_id/endpoint_id" form value:
// BadRequest when it is not one, not found when there is no such
// endpoint (or, in the portal, it is another app's).
func (h *handler) endpointByRef(ctx context.Context, ref string) (*webhook.App, *webhook.Endpoint, error) {
	appID, epID, ok := strings.Cut(ref, "/")
	if !ok || appID == "" || len(appID) > maxPathValue || epID == "" {
		return nil, nil, badRequest("Choose an endpoint to send the example to.")
	}
	app, err := h.store.GetApp(ctx, appID)
	if webhook.IsNotFound(err) || (err == nil && !inScope(ctx, app)) {
		return nil, nil, notFound()
	}
	if err != nil {
		return nil, nil, err
	}
	ep, err := h.appEndpoint(ctx, app, epID)
	if err != nil {
		return nil, nil, err
	}
	return app, ep, nil
}
