package api

import (
	"context"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// attemptOut is MessageAttemptOut.
type attemptOut struct {
	ID                 string      `json:"id"`
	MsgID              string      `json:"msgId"`
	EndpointID         string      `json:"endpointId"`
	URL                string      `json:"url"`
	Response           string      `json:"response"`
	ResponseStatusCode int         `json:"responseStatusCode"`
	ResponseDurationMs int64       `json:"responseDurationMs"`
	Status             int         `json:"status"`
	StatusText         string      `json:"statusText"`
	TriggerType        int         `json:"triggerType"`
	Timestamp          timestamp   `json:"timestamp"`
	Msg                *messageOut `json:"msg,omitempty"`
}

// statusView is how a status is shown: Canceled only to callers that ask
// for expanded statuses, Fail to the others (older SDKs know four
// statuses).
func statusView(st webhook.Status, expanded bool) webhook.Status {
	if st == webhook.StatusCanceled && !expanded {
		return webhook.StatusFail
	}
	return st
}

// attemptView holds the query options that shape attempt output.
type attemptView struct {
	expanded    bool
	withContent bool
	withMsg     bool
}

func (v attemptView) out(a *webhook.Attempt) attemptOut {
	st := statusView(a.Status, v.expanded)
	out := attemptOut{
		ID:                 a.ID,
		MsgID:              a.MsgID,
		EndpointID:         a.EndpointID,
		URL:                a.URL,
		ResponseStatusCode: a.ResponseStatusCode,
		ResponseDurationMs: a.ResponseDurationMs,
		Status:             int(st),
		StatusText:         st.String(),
		TriggerType:        int(a.Trigger),
		Timestamp:          timestamp(a.Timestamp),
	}
	if v.withContent {
		out.Response = a.Response
	}
	return out
}

func readAttemptView(q query) attemptView {
	return attemptView{
		expanded:    q.bool("expanded_statuses", false),
		withContent: q.bool("with_content", true),
		withMsg:     q.bool("with_msg", false),
	}
}

// attemptFilter reads the filters shared by both attempt lists.
func attemptFilter(q query) webhook.AttemptFilter {
	return webhook.AttemptFilter{
		ListOptions:     q.listOptions(false, isID(webhook.PrefixAttempt)),
		Status:          q.status("status"),
		StatusCodeClass: q.statusCodeClass(),
		EventTypes:      q.eventTypes(),
		Before:          q.time("before"),
		After:           q.time("after"),
	}
}

// deliveryStatuses turns a status filter into the delivery statuses it
// selects: without expanded statuses "fail" also means canceled.
func deliveryStatuses(st *webhook.Status, expanded bool) []webhook.Status {
	switch {
	case st == nil:
		return nil
	case *st == webhook.StatusFail && !expanded:
		return []webhook.Status{webhook.StatusFail, webhook.StatusCanceled}
	}
	return []webhook.Status{*st}
}

// nextAttempt is when the next attempt is due while one is.
func nextAttempt(d *webhook.Delivery) *timestamp {
	if d.Status != webhook.StatusPending && d.Status != webhook.StatusSending {
		return nil
	}
	return timeOrNull(d.NextAttemptAt)
}

// listAttempts lists attempts with the filter and writes them.
func (s *Server) listAttempts(w http.ResponseWriter, r *http.Request, f webhook.AttemptFilter, view attemptView) error {
	ctx := r.Context()
	page, err := s.store.ListAttempts(ctx, f)
	if err != nil {
		return err
	}
	msgs := map[string]*messageOut{}
	conv := func(a *webhook.Attempt) (attemptOut, bool, error) {
		out := view.out(a)
		if !view.withMsg {
			return out, true, nil
		}
		m, seen := msgs[a.MsgID]
		if !seen {
			var err error
			if m, err = s.messageOut(ctx, f.AppID, a.MsgID, view.withContent); err != nil {
				return out, false, err
			}
			msgs[a.MsgID] = m
		}
		out.Msg = m
		return out, true, nil
	}
	key := func(a *webhook.Attempt) string { return a.ID }
	return writeList(s, w, r, f.ListOptions, page, key, conv)
}

// messageOut loads a message for output; nil when it no longer exists
// (its retention ended).
func (s *Server) messageOut(ctx context.Context, appID, msgID string, withContent bool) (*messageOut, error) {
	m, err := s.store.GetMessage(ctx, appID, msgID)
	if webhook.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := newMessageOut(m, withContent)
	return &out, nil
}

func (s *Server) listAttemptsByEndpoint(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	f := attemptFilter(q)
	view := readAttemptView(q)
	if err := p.Err(); err != nil {
		return err
	}
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	f.AppID, f.EndpointID = app.ID, ep.ID
	return s.listAttempts(w, r, f, view)
}

// listAttemptsByMessage lists a message's attempts, optionally to one
// endpoint (endpoint_id, an id or a uid; the id of a deleted endpoint
// still selects its attempts).
func (s *Server) listAttemptsByMessage(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	f := attemptFilter(q)
	view := readAttemptView(q)
	endpointID := q.str("endpoint_id")
	if err := p.Err(); err != nil {
		return err
	}
	app, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	f.AppID, f.MsgID = app.ID, msg.ID
	if endpointID != "" {
		ep, err := s.appEndpoint(r.Context(), app, endpointID)
		switch {
		case err == nil:
			f.EndpointID = ep.ID
		case webhook.IsNotFound(err) && isID(webhook.PrefixEndpoint)(endpointID):
			f.EndpointID = endpointID
		default:
			return err
		}
	}
	return s.listAttempts(w, r, f, view)
}

func (s *Server) getAttempt(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	view := readAttemptView(newQuery(r, &p))
	if err := p.Err(); err != nil {
		return err
	}
	app, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	id := r.PathValue("attempt_id")
	if !isID(webhook.PrefixAttempt)(id) {
		return errNotFound("Message attempt")
	}
	a, err := s.store.GetAttempt(r.Context(), app.ID, msg.ID, id)
	if webhook.IsNotFound(err) || (err == nil && (a.AppID != app.ID || a.MsgID != msg.ID)) {
		return errNotFound("Message attempt")
	}
	if err != nil {
		return err
	}
	out := view.out(a)
	if view.withMsg {
		m := newMessageOut(msg, view.withContent)
		out.Msg = &m
	}
	s.writeJSON(w, r, http.StatusOK, out)
	return nil
}

// endpointMessageOut is EndpointMessageOut: a message and its delivery
// state towards one endpoint.
type endpointMessageOut struct {
	messageOut
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	NextAttempt *timestamp `json:"nextAttempt"`
}

// listEndpointMessages lists the messages sent (or being sent) to an
// endpoint, newest first, with their delivery status.
func (s *Server) listEndpointMessages(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	expanded := q.bool("expanded_statuses", false)
	f := webhook.DeliveryFilter{
		ListOptions: q.listOptions(false, isID(webhook.PrefixMessage)),
		Statuses:    deliveryStatuses(q.status("status"), expanded),
		EventTypes:  q.eventTypes(),
		Channel:     q.channel(),
		Until:       q.time("before"),
	}
	if after := q.time("after"); !after.IsZero() {
		f.Since = after.Add(time.Nanosecond) // after is exclusive, Since inclusive
	}
	withContent := q.bool("with_content", true)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	f.AppID, f.EndpointID = app.ID, ep.ID
	page, err := s.store.ListDeliveries(ctx, f)
	if err != nil {
		return err
	}
	conv := func(d *webhook.Delivery) (endpointMessageOut, bool, error) {
		m, err := s.messageOut(ctx, app.ID, d.MsgID, withContent)
		if err != nil || m == nil { // nil: its retention ended
			return endpointMessageOut{}, false, err
		}
		st := statusView(d.Status, expanded)
		return endpointMessageOut{
			messageOut:  *m,
			Status:      int(st),
			StatusText:  st.String(),
			NextAttempt: nextAttempt(d),
		}, true, nil
	}
	key := func(d *webhook.Delivery) string { return d.MsgID }
	return writeList(s, w, r, f.ListOptions, page, key, conv)
}

// messageEndpointOut is MessageEndpointOut: an endpoint and the delivery
// state of one message towards it.
type messageEndpointOut struct {
	endpointOut
	Status      int        `json:"status"`
	StatusText  string     `json:"statusText"`
	NextAttempt *timestamp `json:"nextAttempt"`
}

// listMessageEndpoints lists the endpoints a message was sent (or is being
// sent) to, with its delivery status to each.
func (s *Server) listMessageEndpoints(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	expanded := q.bool("expanded_statuses", false)
	opts := q.listOptions(false, isID(webhook.PrefixEndpoint))
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	app, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	page, err := s.store.ListDeliveries(ctx, webhook.DeliveryFilter{ListOptions: opts, AppID: app.ID, MsgID: msg.ID})
	if err != nil {
		return err
	}
	conv := func(d *webhook.Delivery) (messageEndpointOut, bool, error) {
		ep, err := s.store.GetEndpoint(ctx, app.ID, d.EndpointID)
		if webhook.IsNotFound(err) {
			return messageEndpointOut{}, false, nil // deleted since
		}
		if err != nil {
			return messageEndpointOut{}, false, err
		}
		st := statusView(d.Status, expanded)
		return messageEndpointOut{
			endpointOut: newEndpointOut(ep),
			Status:      int(st),
			StatusText:  st.String(),
			NextAttempt: nextAttempt(d),
		}, true, nil
	}
	key := func(d *webhook.Delivery) string { return d.EndpointID }
	return writeList(s, w, r, opts, page, key, conv)
}
