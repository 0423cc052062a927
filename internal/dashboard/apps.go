package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// maxPathValue bounds an id or uid taken from a path.
const maxPathValue = 300

// listLimit is the number of rows of a dashboard list page.
const listLimit = 20

// loadApp returns the app named by {app_id}, an id or a uid.
func (h *handler) loadApp(r *http.Request) (*webhook.App, error) {
	idOrUID := r.PathValue("app_id")
	if idOrUID == "" || len(idOrUID) > maxPathValue {
		return nil, notFound()
	}
	app, err := h.store.GetApp(r.Context(), idOrUID)
	if webhook.IsNotFound(err) || (err == nil && (!inScope(r.Context(), app) || operational.Reserved(app.ID))) {
		return nil, notFound() // a portal session's other apps do not exist for it
	}
	return app, err
}

// loadEndpoint returns the app and its endpoint named by {app_id} and
// {endpoint_id}; another app's endpoint is not found.
func (h *handler) loadEndpoint(r *http.Request) (*webhook.App, *webhook.Endpoint, error) {
	app, err := h.loadApp(r)
	if err != nil {
		return nil, nil, err
	}
	ep, err := h.appEndpoint(r.Context(), app, r.PathValue("endpoint_id"))
	return app, ep, err
}

// appEndpoint returns app's endpoint by id or uid.
func (h *handler) appEndpoint(ctx context.Context, app *webhook.App, idOrUID string) (*webhook.Endpoint, error) {
	if idOrUID == "" || len(idOrUID) > maxPathValue {
		return nil, notFound()
	}
	ep, err := h.store.GetEndpoint(ctx, app.ID, idOrUID)
	if webhook.IsNotFound(err) || (err == nil && ep.AppID != app.ID) {
		return nil, notFound()
	}
	return ep, err
}

// allEndpoints lists an app's endpoints (up to webhook.MaxLimit: a
// dashboard page shows no more).
func (h *handler) allEndpoints(ctx context.Context, appID string) ([]webhook.Endpoint, error) {
	page, err := h.store.ListEndpoints(ctx, appID, webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true})
	return page.Items, err
}

type appsData struct {
	layout
	Apps   []webhook.App
	More   string // cursor of the next page, "" at the end
	Form   appForm
	Errors map[string]string
}

type appForm struct{ Name, UID string }

func (h *handler) appsPage(w http.ResponseWriter, r *http.Request) error {
	return h.renderApps(w, r, http.StatusOK, appForm{}, nil)
}

func (h *handler) renderApps(w http.ResponseWriter, r *http.Request, status int, form appForm, errs map[string]string) error {
	opts := webhook.ListOptions{Limit: 50, Ascending: true, Cursor: r.URL.Query().Get("after")}
	if !strings.HasPrefix(opts.Cursor, webhook.PrefixApp) {
		opts.Cursor = ""
	}
	page, err := h.store.ListApps(r.Context(), opts)
	if err != nil {
		return err
	}
	data := appsData{layout: h.newPage(w, r, "Apps", "apps"), Apps: customerApps(page.Items), Form: form, Errors: errs}
	if page.More && len(page.Items) > 0 {
		data.More = page.Items[len(page.Items)-1].ID
	}
	return h.render(w, r, status, "apps.html", &data)
}

// createApp creates an app from a name and an optional uid.
func (h *handler) createApp(w http.ResponseWriter, r *http.Request) error {
	form := appForm{Name: strings.TrimSpace(r.PostFormValue("name")), UID: strings.TrimSpace(r.PostFormValue("uid"))}
	var p webhook.Problems
	webhook.ValidateName(&p, []string{"name"}, form.Name)
	if form.UID != "" {
		webhook.ValidateUID(&p, []string{"uid"}, form.UID)
	}
	if errs := fieldErrors(p.Err()); errs != nil {
		return h.renderApps(w, r, http.StatusUnprocessableEntity, form, errs)
	}
	now := h.clock.Now()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), UID: form.UID, Name: form.Name,
		Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateApp(r.Context(), app); err != nil {
		if webhook.IsConflict(err) {
			return h.renderApps(w, r, http.StatusUnprocessableEntity, form, map[string]string{"uid": "Another app has this uid."})
		}
		return err
	}
	return redirect(w, r, "/app/"+app.ID+"?done=app")
}

// fieldErrors turns a validation error of webhook.Problems into messages
// by field (the first element of each Loc); nil when err is nil.
func fieldErrors(err error) map[string]string {
	var e *webhook.Error
	if !errors.As(err, &e) {
		return nil
	}
	out := map[string]string{}
	for _, f := range e.Fields {
		if len(f.Loc) == 0 {
			continue
		}
		if _, dup := out[f.Loc[0]]; !dup {
			out[f.Loc[0]] = f.Msg
		}
	}
	return out
}

type appData struct {
	layout
	App       *webhook.App
	Endpoints []endpointRow
}

// endpointRow is an endpoint with its health of the last 24 hours.
type endpointRow struct {
	webhook.Endpoint
	Rate successRate
}

// successRate is the share of an endpoint's finished deliveries that
// succeeded.
type successRate struct {
	OK, Finished int
}

func (s successRate) String() string {
	if s.Finished == 0 {
		return "no deliveries"
	}
	return fmt.Sprintf("%d%% (%d of %d)", s.OK*100/s.Finished, s.OK, s.Finished)
}

// rateSince counts an endpoint's deliveries created since the given time.
func (h *handler) rateSince(ctx context.Context, ep *webhook.Endpoint, since time.Time) (successRate, map[webhook.Status]int, error) {
	counts, err := h.store.EndpointStats(ctx, ep.AppID, ep.ID, since, time.Time{})
	if err != nil {
		return successRate{}, nil, err
	}
	ok := counts[webhook.StatusSuccess]
	return successRate{OK: ok, Finished: ok + counts[webhook.StatusFail]}, counts, nil
}

func (h *handler) appPage(w http.ResponseWriter, r *http.Request) error {
	app, err := h.loadApp(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	eps, err := h.allEndpoints(ctx, app.ID)
	if err != nil {
		return err
	}
	data := appData{layout: h.newPage(w, r, app.Name, "apps"), App: app}
	data.Tab = "endpoints"
	since := h.clock.Now().Add(-24 * time.Hour)
	for _, ep := range eps {
		rate, _, err := h.rateSince(ctx, &ep, since)
		if err != nil {
			return err
		}
		data.Endpoints = append(data.Endpoints, endpointRow{Endpoint: ep, Rate: rate})
	}
	return h.render(w, r, http.StatusOK, "app.html", &data)
}

// customerApps returns apps without the reserved app of the operational
// webhooks, which the dashboard does not show.
func customerApps(apps []webhook.App) []webhook.App {
	return slices.DeleteFunc(slices.Clone(apps), func(a webhook.App) bool { return operational.Reserved(a.ID) })
}
