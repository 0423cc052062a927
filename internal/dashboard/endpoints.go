package dashboard

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// maxRecoverSpan is the longest recover window, as in the API.
const maxRecoverSpan = 14 * 24 * time.Hour

// catalog returns the event types of the catalog that are not archived
// and that the page's viewer may see: every one for the admin, those
// its token's feature flags allow in the portal
// (webhook.AppToken.SeesEventType). hidden says whether it left any out.
func (h *handler) catalog(ctx context.Context) (cat []webhook.EventType, hidden bool, err error) {
	tok := sessionOf(ctx)
	f := webhook.EventTypeFilter{ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}}
	for {
		page, err := h.store.ListEventTypes(ctx, f)
		if err != nil {
			return nil, false, err
		}
		for _, et := range page.Items {
			if tok.SeesEventType(&et) {
				cat = append(cat, et)
			} else {
				hidden = true
			}
		}
		if !page.More || len(page.Items) == 0 {
			return cat, hidden, nil
		}
		f.Cursor = page.Items[len(page.Items)-1].Name
	}
}

// typeChoice is one checkbox of an event-type list.
type typeChoice struct {
	Name, Description string
	Checked           bool
}

// choices returns the catalog as checkboxes, checked when selected says so.
func choices(catalog []webhook.EventType, selected func(name string) bool) []typeChoice {
	out := make([]typeChoice, len(catalog))
	for i, et := range catalog {
		out[i] = typeChoice{Name: et.Name, Description: et.Description, Checked: selected(et.Name)}
	}
	return out
}

// filterTypes checks the event types ticked in a form against the catalog
// and returns the endpoint filter: nil (every type, including types added
// later) when all are ticked and the catalog hides none from the viewer
// (else the ticked ones, so a portal never subscribes its customer to a
// type kept from it). Problems go to loc "event_types".
func filterTypes(p *webhook.Problems, catalog []webhook.EventType, hidden bool, ticked []string) []string {
	if len(catalog) == 0 {
		return nil
	}
	if len(ticked) == 0 {
		p.Add([]string{"event_types"}, "Choose at least one event type.")
		return nil
	}
	var out []string
	for _, name := range ticked {
		webhook.ValidateEventTypeName(p, []string{"event_types"}, name)
		if !slices.ContainsFunc(catalog, func(et webhook.EventType) bool { return et.Name == name }) {
			p.Add([]string{"event_types"}, "The event type %q does not exist.", name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == len(catalog) && !hidden {
		return nil
	}
	return out
}

type endpointForm struct {
	URL, Description, Channels string
	Types                      []typeChoice
}

type newEndpointData struct {
	layout
	App     *webhook.App
	Form    endpointForm
	PlayURL string // a fresh Play URL for the "Use Play" button
	Errors  map[string]string
}

func (h *handler) newEndpointPage(w http.ResponseWriter, r *http.Request) error {
	app, err := h.loadApp(r)
	if err != nil {
		return err
	}
	cat, _, err := h.catalog(r.Context())
	if err != nil {
		return err
	}
	form := endpointForm{Types: choices(cat, func(string) bool { return true })}
	return h.renderNewEndpoint(w, r, http.StatusOK, app, form, nil)
}

func (h *handler) renderNewEndpoint(w http.ResponseWriter, r *http.Request, status int, app *webhook.App, form endpointForm, errs map[string]string) error {
	data := newEndpointData{layout: h.newPage(w, r, "Add endpoint", "apps"), App: app, Form: form, Errors: errs}
	if h.play != nil {
		data.PlayURL = playURL(r, h.newPlayToken())
	}
	return h.render(w, r, status, "endpoint-new.html", &data)
}

// createEndpoint creates an endpoint from the Add Endpoint form, or, for
// the "Use Play" button without JavaScript, shows the form again with a
// fresh Play URL.
func (h *handler) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	app, err := h.loadApp(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cat, hidden, err := h.catalog(ctx)
	if err != nil {
		return err
	}
	ticked := r.PostForm["event_types"]
	form := endpointForm{
		URL:         strings.TrimSpace(r.PostFormValue("url")),
		Description: strings.TrimSpace(r.PostFormValue("description")),
		Channels:    r.PostFormValue("channels"),
		Types:       choices(cat, func(name string) bool { return slices.Contains(ticked, name) }),
	}
	if r.PostFormValue("action") == "use-play" && h.play != nil {
		form.URL = playURL(r, h.newPlayToken())
		if len(ticked) == 0 {
			form.Types = choices(cat, func(string) bool { return true })
		}
		return h.renderNewEndpoint(w, r, http.StatusOK, app, form, nil)
	}

	var p webhook.Problems
	h.checkURL(&p, form.URL)
	webhook.ValidateDescription(&p, []string{"description"}, form.Description)
	types := filterTypes(&p, cat, hidden, ticked)
	channels := splitList(form.Channels)
	if len(channels) > 0 {
		webhook.ValidateChannels(&p, []string{"channels"}, channels, true)
	}
	if errs := fieldErrors(p.Err()); errs != nil {
		return h.renderNewEndpoint(w, r, http.StatusUnprocessableEntity, app, form, errs)
	}

	key, err := signing.GenerateSecret()
	if err != nil {
		return err
	}
	now := h.clock.Now()
	ep := &webhook.Endpoint{
		ID:          webhook.NewID(webhook.PrefixEndpoint),
		AppID:       app.ID,
		URL:         form.URL,
		Description: form.Description,
		FilterTypes: types,
		Channels:    channels,
		Keys:        []webhook.SigningKey{{Key: key}},
		Metadata:    map[string]string{},
		Version:     1,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if err := h.store.CreateEndpoint(ctx, ep); err != nil {
		return err
	}
	h.ops.Endpoint(ctx, operational.EndpointCreated, app, ep)
	if token := h.playTokenOf(r, ep.URL); token != "" && h.playLinkFree(ctx, token, app.ID) {
		if err := h.play.Link(ctx, token, play.Link{AppID: app.ID, EndpointID: ep.ID}); err != nil {
			// The endpoint stands; Play will say it cannot check signatures.
			h.log.WarnContext(ctx, "play: link endpoint", "endpoint_id", ep.ID, "err", err)
		}
	}
	return redirect(w, r, "/app/"+app.ID+"/endpoint/"+ep.ID+"?done=created")
}

// checkURL checks an endpoint URL with webhook.ValidateURL, whose error
// text is written to be shown to whoever typed the URL.
func (h *handler) checkURL(p *webhook.Problems, raw string) {
	if raw == "" {
		p.Add([]string{"url"}, "Enter the URL that should receive the webhooks.")
		return
	}
	if err := webhook.ValidateURL(raw, h.urlPolicy); err != nil {
		p.Add([]string{"url"}, "%s", err.Error())
	}
}

// splitList splits a comma- or space-separated list, dropping empty items.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

type endpointData struct {
	layout
	App       *webhook.App
	Endpoint  *webhook.Endpoint
	PlayToken string // set when the URL is a Play URL of this dashboard
	Types     []typeChoice
	AllTypes  bool
	Secret    string // the current secret, when revealed
	Headers   []headerRow
	Header    headerRow // the add-header form
	Errors    map[string]string
	Rate      successRate
	Stats     stats
	Examples  []string // event types with an example payload
	attemptsList
}

// stats counts an endpoint's deliveries by status.
type stats struct {
	Success, Fail, Pending, Sending, Canceled int
}

type headerRow struct {
	Name, Value string
	Sensitive   bool
}

// attemptsList is a page of the Message Attempts log.
type attemptsList struct {
	Path      string // the page's path, without the base path
	ByMessage bool   // the log of one message (shows endpoints, not event types)
	Attempts  []attemptRow
	Status    string // the filter: "", "success" or "fail"
	Before    string // the cursor of this page
	Older     string // the cursor of the next page, "" at the end
}

// attemptRow is an attempt with the request body it sent.
type attemptRow struct {
	webhook.Attempt
	Payload  []byte // nil when the message is no longer kept or was expunged
	Expunged bool   // the message's payload was expunged
}

func (h *handler) endpointPage(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	return h.renderEndpoint(w, r, http.StatusOK, app, ep, headerRow{}, nil)
}

// renderEndpoint renders the endpoint details page; header and errs carry
// a rejected form back to it.
func (h *handler) renderEndpoint(w http.ResponseWriter, r *http.Request, status int, app *webhook.App, ep *webhook.Endpoint, header headerRow, errs map[string]string) error {
	ctx := r.Context()
	q := r.URL.Query()
	data := endpointData{
		layout: h.newPage(w, r, "Endpoint", "apps"), App: app, Endpoint: ep,
		PlayToken: h.playTokenOf(r, ep.URL), Header: header, Errors: errs,
		AllTypes: len(ep.FilterTypes) == 0,
	}
	cat, _, err := h.catalog(ctx)
	if err != nil {
		return err
	}
	data.Types = choices(cat, func(name string) bool { return data.AllTypes || slices.Contains(ep.FilterTypes, name) })
	for _, et := range cat {
		if examplePayload(et.Schemas) != nil {
			data.Examples = append(data.Examples, et.Name)
		}
	}
	if q.Get("reveal") == "secret" && len(ep.Keys) > 0 && can(ctx, webhook.CapViewEndpointSecret) {
		data.Secret = signing.FormatSecret(ep.Keys[0].Key)
	}
	for _, name := range slices.Sorted(maps.Keys(ep.Headers)) {
		row := headerRow{Name: name, Value: ep.Headers[name], Sensitive: webhook.IsSensitiveHeader(name)}
		if row.Sensitive {
			row.Value = ""
		}
		data.Headers = append(data.Headers, row)
	}
	rate, counts, err := h.rateSince(ctx, ep, h.clock.Now().Add(-24*time.Hour))
	if err != nil {
		return err
	}
	data.Rate = rate
	data.Stats = stats{Success: counts[webhook.StatusSuccess], Fail: counts[webhook.StatusFail],
		Pending: counts[webhook.StatusPending], Sending: counts[webhook.StatusSending], Canceled: counts[webhook.StatusCanceled]}
	f := webhook.AttemptFilter{AppID: app.ID, EndpointID: ep.ID}
	if data.attemptsList, err = h.attempts(ctx, r, f); err != nil {
		return err
	}
	return h.render(w, r, status, "endpoint.html", &data)
}

// attempts reads a page of attempts, newest first, filtered by the
// request's status and paged by its before cursor, with the payload each
// attempt sent.
func (h *handler) attempts(ctx context.Context, r *http.Request, f webhook.AttemptFilter) (attemptsList, error) {
	q := r.URL.Query()
	list := attemptsList{Path: r.URL.Path, ByMessage: f.MsgID != "", Status: q.Get("status"), Before: q.Get("before")}
	switch list.Status {
	case "success":
		s := webhook.StatusSuccess
		f.Status = &s
	case "fail":
		s := webhook.StatusFail
		f.Status = &s
	default:
		list.Status = ""
	}
	if !strings.HasPrefix(list.Before, webhook.PrefixAttempt) {
		list.Before = ""
	}
	f.ListOptions = webhook.ListOptions{Limit: listLimit, Cursor: list.Before}
	page, err := h.store.ListAttempts(ctx, f)
	if err != nil {
		return list, err
	}
	bodies := map[string]attemptRow{} // by message id, without the attempt
	for _, a := range page.Items {
		row, ok := bodies[a.MsgID]
		if !ok {
			msg, err := h.store.GetMessage(ctx, a.AppID, a.MsgID)
			switch {
			case err == nil:
				row.Payload, row.Expunged = msg.Payload, msg.Expunged()
			case !webhook.IsNotFound(err):
				return list, err
			}
			bodies[a.MsgID] = row
		}
		row.Attempt = a
		list.Attempts = append(list.Attempts, row)
	}
	if page.More && len(page.Items) > 0 {
		list.Older = page.Items[len(page.Items)-1].ID
	}
	return list, nil
}

// updateEndpoint applies change to a fresh copy of the endpoint and stores
// it, reading it again and retrying when a concurrent write made the copy
// stale, then announces the change to the operational webhooks (ep is an
// endpoint of app). It returns the stored endpoint.
func (h *handler) updateEndpoint(ctx context.Context, app *webhook.App, ep *webhook.Endpoint, change func(ep *webhook.Endpoint) error) (*webhook.Endpoint, error) {
	for try := 0; ; try++ {
		read := ep.UpdatedAt
		next := *ep
		if err := change(&next); err != nil {
			return nil, err
		}
		next.UpdatedAt = h.clock.Now()
		err := h.store.UpdateEndpoint(ctx, &next, read)
		if err == nil {
			h.ops.Changed(ctx, app, &next, ep.Disabled)
			return &next, nil
		}
		if !errors.Is(err, webhook.ErrStale) || try == 2 {
			return nil, err
		}
		if ep, err = h.store.GetEndpoint(ctx, ep.AppID, ep.ID); err != nil {
			return nil, err
		}
	}
}

// saveEventTypes replaces the endpoint's event-type filter.
func (h *handler) saveEventTypes(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cat, hidden, err := h.catalog(ctx)
	if err != nil {
		return err
	}
	var p webhook.Problems
	types := filterTypes(&p, cat, hidden, r.PostForm["event_types"])
	if errs := fieldErrors(p.Err()); errs != nil {
		return h.renderEndpoint(w, r, http.StatusUnprocessableEntity, app, ep, headerRow{}, errs)
	}
	if _, err := h.updateEndpoint(ctx, app, ep, func(ep *webhook.Endpoint) error {
		ep.FilterTypes = types
		return nil
	}); err != nil {
		return err
	}
	return redirect(w, r, endpointPath(ep)+"?done=saved")
}

func endpointPath(ep *webhook.Endpoint) string {
	return "/app/" + ep.AppID + "/endpoint/" + ep.ID
}

// rotateSecret makes a new current secret; the previous one keeps signing
// for webhook.DefaultRotationGrace, and secrets past their grace period are dropped.
func (h *handler) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	key, err := signing.GenerateSecret()
	if err != nil {
		return err
	}
	_, err = h.updateEndpoint(r.Context(), app, ep, func(ep *webhook.Endpoint) error {
		err := ep.RotateKey(key, webhook.DefaultRotationGrace, h.clock.Now())
		if webhook.ErrorKind(err) == webhook.KindBadRequest {
			return badRequest("This endpoint already has " + strconv.Itoa(webhook.MaxOldKeys) +
				" previous secrets in their grace period. Wait for one to expire before rotating again.")
		}
		return err
	})
	if err != nil {
		return err
	}
	return redirect(w, r, endpointPath(ep)+"?done=rotated")
}

// saveHeader adds or replaces a custom header (names match without regard
// to case, as on the wire).
func (h *handler) saveHeader(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	row := headerRow{Name: strings.TrimSpace(r.PostFormValue("name")), Value: r.PostFormValue("value")}
	headers := map[string]*string{}
	for name, v := range withHeader(ep.Headers, row.Name, row.Value) {
		headers[name] = &v
	}
	var p webhook.Problems
	if row.Name == "" {
		p.Add([]string{"header"}, "Enter the header's name.")
	} else {
		webhook.ValidateHeaders(&p, []string{"header"}, headers)
	}
	if errs := fieldErrors(p.Err()); errs != nil {
		return h.renderEndpoint(w, r, http.StatusUnprocessableEntity, app, ep, row, errs)
	}
	_, err = h.updateEndpoint(r.Context(), app, ep, func(ep *webhook.Endpoint) error {
		ep.Headers = withHeader(ep.Headers, row.Name, row.Value)
		return nil
	})
	if err != nil {
		return err
	}
	return redirect(w, r, endpointPath(ep)+"?done=header#headers")
}

// withHeader returns a copy of headers with name set to value, replacing
// a header of that name in any case.
func withHeader(headers map[string]string, name, value string) map[string]string {
	next := map[string]string{}
	for n, v := range headers {
		if !strings.EqualFold(n, name) {
			next[n] = v
		}
	}
	next[name] = value
	return next
}

// deleteHeader removes a custom header.
func (h *handler) deleteHeader(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	name := r.PostFormValue("name")
	_, err = h.updateEndpoint(r.Context(), app, ep, func(ep *webhook.Endpoint) error {
		next := maps.Clone(ep.Headers)
		delete(next, name)
		ep.Headers = next
		return nil
	})
	if err != nil {
		return err
	}
	return redirect(w, r, endpointPath(ep)+"?done=unheader#headers")
}

// disableEndpoint disables the endpoint by hand and cancels its unfinished
// deliveries, as the API's PATCH {disabled: true} does.
func (h *handler) disableEndpoint(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := h.clock.Now()
	ep, err = h.updateEndpoint(ctx, app, ep, func(ep *webhook.Endpoint) error {
		ep.SetDisabled(true, now)
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := h.store.CancelDeliveries(ctx, ep.AppID, ep.ID, now); err != nil {
		// The endpoint is disabled; the delivery engine also stops runs
		// of a disabled endpoint when it next looks at them.
		h.log.WarnContext(ctx, "cancel deliveries of disabled endpoint", "endpoint_id", ep.ID, "err", err)
	}
	return redirect(w, r, endpointPath(ep)+"?done=disabled")
}

// enableEndpoint re-enables the endpoint; the store clears FailingSince,
// so the week before the sweeper disables it again starts anew.
func (h *handler) enableEndpoint(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	_, err = h.updateEndpoint(r.Context(), app, ep, func(ep *webhook.Endpoint) error {
		ep.SetDisabled(false, h.clock.Now())
		return nil
	})
	if err != nil {
		return err
	}
	return redirect(w, r, endpointPath(ep)+"?done=enabled")
}

// recoverWindow is a choice of the Recover Failed Messages form.
type recoverWindow struct {
	Value, Label string
	Span         time.Duration
}

var recoverWindows = []recoverWindow{
	{"1h", "Last hour", time.Hour},
	{"6h", "Last 6 hours", 6 * time.Hour},
	{"24h", "Last 24 hours", 24 * time.Hour},
	{"7d", "Last 7 days", 7 * 24 * time.Hour},
}

type recoverData struct {
	layout
	App      *webhook.App
	Endpoint *webhook.Endpoint
	Windows  []recoverWindow
	Window   string
	Since    string // the custom time as typed
	Errors   map[string]string
}

func (h *handler) recoverPage(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	return h.renderRecover(w, r, http.StatusOK, app, ep, "1h", "", nil)
}

func (h *handler) renderRecover(w http.ResponseWriter, r *http.Request, status int, app *webhook.App, ep *webhook.Endpoint, window, since string, errs map[string]string) error {
	data := recoverData{layout: h.newPage(w, r, "Recover failed messages", "apps"), App: app, Endpoint: ep,
		Windows: recoverWindows, Window: window, Since: since, Errors: errs}
	return h.render(w, r, status, "recover.html", &data)
}

// recoverEndpoint re-sends the endpoint's messages that failed in the
// chosen window: a preset, or since a time typed in the viewer's time zone
// (the page's script sends its UTC offset; without it the time is UTC).
func (h *handler) recoverEndpoint(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	now := h.clock.Now()
	window, typed := r.PostFormValue("window"), strings.TrimSpace(r.PostFormValue("since"))
	var since time.Time
	var p webhook.Problems
	for _, w := range recoverWindows {
		if w.Value == window {
			since = now.Add(-w.Span)
		}
	}
	if window == "custom" {
		offset, _ := strconv.Atoi(r.PostFormValue("tz_offset")) // minutes behind UTC, as JavaScript says
		t, err := time.ParseInLocation("2006-01-02T15:04", typed, time.FixedZone("", -offset*60))
		switch {
		case err != nil:
			p.Add([]string{"since"}, "Enter a date and time.")
		case t.After(now):
			p.Add([]string{"since"}, "The start must not be in the future.")
		case now.Sub(t) > maxRecoverSpan:
			p.Add([]string{"since"}, "The window can be at most 14 days.")
		}
		since = t.UTC()
	} else if since.IsZero() {
		p.Add([]string{"window"}, "Choose a time window.")
	}
	if ep.Disabled {
		p.Add([]string{"form"}, "The endpoint is disabled. Enable it before recovering messages.")
	}
	if errs := fieldErrors(p.Err()); errs != nil {
		return h.renderRecover(w, r, http.StatusUnprocessableEntity, app, ep, window, typed, errs)
	}
	if _, err := h.deliveries.Recover(r.Context(), ep, since, now); err != nil {
		return err
	}
	return redirect(w, r, endpointPath(ep)+"?done=recover")
}

type deleteData struct {
	layout
	App      *webhook.App
	Endpoint *webhook.Endpoint
}

// deleteEndpointPage asks for confirmation.
func (h *handler) deleteEndpointPage(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	data := deleteData{layout: h.newPage(w, r, "Delete endpoint", "apps"), App: app, Endpoint: ep}
	return h.render(w, r, http.StatusOK, "endpoint-delete.html", &data)
}

func (h *handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := h.loadEndpoint(r)
	if err != nil {
		return err
	}
	if err := h.store.DeleteEndpoint(r.Context(), app.ID, ep.ID); err != nil {
		return err
	}
	h.ops.Endpoint(r.Context(), operational.EndpointDeleted, app, ep)
	return redirect(w, r, "/app/"+app.ID+"?done=deleted")
}
