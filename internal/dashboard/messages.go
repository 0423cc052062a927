package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/hookstep/hookstep/internal/webhook"
)

// maxMessageScan bounds how many messages one page of the log reads when
// it filters by delivery status, which the Store cannot filter on.
const maxMessageScan = 500

// messageRow is a message with the summary of its deliveries.
type messageRow struct {
	webhook.Message
	Status  string // "success", "fail", "pending" or "none" (no endpoint)
	Summary string
}

// summarize sums up a message's deliveries: pending while any is still
// being tried, else fail if any failed (or was canceled), else success.
func summarize(ds []webhook.Delivery) (status, summary string) {
	var ok, failed, open int
	for _, d := range ds {
		switch d.Status {
		case webhook.StatusSuccess:
			ok++
		case webhook.StatusFail, webhook.StatusCanceled:
			failed++
		default:
			open++
		}
	}
	switch {
	case len(ds) == 0:
		return "none", "no endpoint"
	case open > 0:
		status = "pending"
	case failed > 0:
		status = "fail"
	default:
		status = "success"
	}
	summary = fmt.Sprintf("%d of %d delivered", ok, len(ds))
	if failed > 0 {
		summary += fmt.Sprintf(", %d failed", failed)
	}
	if open > 0 {
		summary += fmt.Sprintf(", %d in progress", open)
	}
	return status, summary
}

// deliveries lists the deliveries of a message (every endpoint it went to).
func (h *handler) deliveriesOf(ctx context.Context, appID, msgID string) ([]webhook.Delivery, error) {
	page, err := h.store.ListDeliveries(ctx, webhook.DeliveryFilter{
		ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}, AppID: appID, MsgID: msgID})
	return page.Items, err
}

type messagesData struct {
	layout
	App       *webhook.App
	Messages  []messageRow
	Endpoints []webhook.Endpoint // the choices of each row's Resend menu
	Types     []webhook.EventType
	EventType string // filter
	Status    string // filter
	Before    string
	Older     string
}

// messagesPage is the app's message log, newest first, filtered by event
// type (in the Store) and by delivery status (here, reading on until a
// page is full or maxMessageScan messages were read).
func (h *handler) messagesPage(w http.ResponseWriter, r *http.Request) error {
	app, err := h.loadApp(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	data := messagesData{layout: h.newPage(w, r, "Messages", "apps"), App: app,
		EventType: q.Get("event_type"), Status: q.Get("status"), Before: q.Get("before")}
	data.Tab = "messages"
	if data.Types, _, err = h.catalog(ctx); err != nil {
		return err
	}
	if data.Endpoints, err = h.allEndpoints(ctx, app.ID); err != nil {
		return err
	}
	switch data.Status {
	case "success", "fail", "pending":
	default:
		data.Status = ""
	}
	if !strings.HasPrefix(data.Before, webhook.PrefixMessage) {
		data.Before = ""
	}
	f := webhook.MessageFilter{ListOptions: webhook.ListOptions{Limit: listLimit, Cursor: data.Before}, AppID: app.ID}
	if data.EventType != "" {
		var p webhook.Problems
		webhook.ValidateEventTypeName(&p, []string{"event_type"}, data.EventType)
		if p.Err() != nil {
			return badRequest("That is not an event type name.")
		}
		f.EventTypes = []string{data.EventType}
	}
	if data.Messages, data.Older, err = h.scanMessages(ctx, f, data.Status); err != nil {
		return err
	}
	return h.render(w, r, http.StatusOK, "messages.html", &data)
}

// scanMessages reads messages from f's cursor on and returns up to
// listLimit of them whose delivery status is status ("" for any), and the
// cursor to go on from ("" when no message is left).
func (h *handler) scanMessages(ctx context.Context, f webhook.MessageFilter, status string) ([]messageRow, string, error) {
	var rows []messageRow
	if status != "" {
		f.Limit = 50 // most may not match
	}
	for scanned := 0; scanned < maxMessageScan; {
		page, err := h.store.ListMessages(ctx, f)
		if err != nil {
			return nil, "", err
		}
		for i, m := range page.Items {
			scanned++
			ds, err := h.deliveriesOf(ctx, f.AppID, m.ID)
			if err != nil {
				return nil, "", err
			}
			row := messageRow{Message: m}
			row.Status, row.Summary = summarize(ds)
			if status != "" && row.Status != status {
				continue
			}
			if rows = append(rows, row); len(rows) == listLimit {
				if i < len(page.Items)-1 || page.More {
					return rows, m.ID, nil
				}
				return rows, "", nil
			}
		}
		if !page.More || len(page.Items) == 0 {
			return rows, "", nil
		}
		f.Cursor = page.Items[len(page.Items)-1].ID
	}
	return rows, f.Cursor, nil // scanned enough; the next page goes on
}

type messageData struct {
	layout
	App        *webhook.App
	Message    *webhook.Message
	Summary    string // of its deliveries
	Deliveries []deliveryRow
	Endpoints  []webhook.Endpoint // the choices of Resend
	attemptsList
}

// deliveryRow is a message's delivery to one endpoint.
type deliveryRow struct {
	webhook.Delivery
	Endpoint *webhook.Endpoint // nil when the endpoint was deleted
}

// loadMessage returns the app and its message named by {msg_id} (an id or
// an eventId).
func (h *handler) loadMessage(r *http.Request) (*webhook.App, *webhook.Message, error) {
	app, err := h.loadApp(r)
	if err != nil {
		return nil, nil, err
	}
	idOrEventID := r.PathValue("msg_id")
	if idOrEventID == "" || len(idOrEventID) > maxPathValue {
		return nil, nil, notFound()
	}
	msg, err := h.store.GetMessage(r.Context(), app.ID, idOrEventID)
	if webhook.IsNotFound(err) || (err == nil && msg.AppID != app.ID) {
		return nil, nil, notFound()
	}
	return app, msg, err
}

func (h *handler) messagePage(w http.ResponseWriter, r *http.Request) error {
	app, msg, err := h.loadMessage(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	data := messageData{layout: h.newPage(w, r, "Message", "apps"), App: app, Message: msg}
	if data.Endpoints, err = h.allEndpoints(ctx, app.ID); err != nil {
		return err
	}
	ds, err := h.deliveriesOf(ctx, app.ID, msg.ID)
	if err != nil {
		return err
	}
	_, data.Summary = summarize(ds)
	for _, d := range ds {
		row := deliveryRow{Delivery: d}
		for i := range data.Endpoints {
			if data.Endpoints[i].ID == d.EndpointID {
				row.Endpoint = &data.Endpoints[i]
			}
		}
		data.Deliveries = append(data.Deliveries, row)
	}
	if data.attemptsList, err = h.attempts(ctx, r, webhook.AttemptFilter{AppID: app.ID, MsgID: msg.ID}); err != nil {
		return err
	}
	return h.render(w, r, http.StatusOK, "message.html", &data)
}

// resend sends the message again to the endpoint chosen in the form.
func (h *handler) resend(w http.ResponseWriter, r *http.Request) error {
	app, msg, err := h.loadMessage(r)
	if err != nil {
		return err
	}
	epID := r.PostFormValue("endpoint_id")
	if epID == "" {
		return badRequest("Choose one of the app's endpoints to resend to.")
	}
	// Another app's endpoint is not found, as in a path.
	ep, err := h.appEndpoint(r.Context(), app, epID)
	if err != nil {
		return err
	}
	if ep.Disabled {
		return badRequest("That endpoint is disabled. Enable it before resending to it.")
	}
	if msg.Expunged() {
		return badRequest("This message's payload was expunged: it can no longer be resent.")
	}
	if err := h.deliveries.Resend(r.Context(), msg, ep); err != nil {
		return err
	}
	return redirect(w, r, "/app/"+app.ID+"/msg/"+msg.ID+"?done=resent")
}
