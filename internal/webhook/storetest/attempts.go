package storetest

import (
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// storeAttempt stores an attempt without changing its delivery: no
// delivery ever has the attempt count it claims.
func (e *env) storeAttempt(t *testing.T, att webhook.Attempt) {
	t.Helper()
	res := webhook.AttemptResult{Attempt: att, Attempts: 1000, Status: webhook.StatusFail}
	if _, err := e.s.RecordAttempt(e.ctx, res); err != nil {
		t.Fatalf("RecordAttempt(%s): %v", att.ID, err)
	}
}

func testAttempts(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	msg := e.createMessage(t, app.ID, nil, ep.ID)
	msg2 := e.createMessage(t, app.ID, nil, ep.ID)

	att := e.newAttempt(msg, ep.ID, webhook.StatusFail, 0)
	att.Trigger = webhook.TriggerManual
	att.Response = ""
	att.ResponseDurationMs = 15000
	e.storeAttempt(t, att)

	got, err := e.s.GetAttempt(e.ctx, app.ID, msg.ID, att.ID)
	if err != nil {
		t.Fatalf("GetAttempt: %v", err)
	}
	if d := diff(&att, got); d != "" {
		t.Errorf("GetAttempt mismatch (-want +got):\n%s", d)
	}
	for _, tc := range []struct{ name, app, msg, id string }{
		{"OtherMessage", app.ID, msg2.ID, att.ID},
		{"OtherApp", other.ID, msg.ID, att.ID},
		{"Missing", app.ID, msg.ID, "atmpt_missing"},
	} {
		_, err := e.s.GetAttempt(e.ctx, tc.app, tc.msg, tc.id)
		wantNotFound(t, "GetAttempt("+tc.name+")", err)
	}
}

func testListAttempts(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep0 := e.createEndpoint(t, app.ID)
	ep1 := e.createEndpoint(t, app.ID)
	otherEp := e.createEndpoint(t, other.ID)
	m0 := e.createMessage(t, app.ID, func(m *webhook.Message) { m.EventType = "a" }, ep0.ID, ep1.ID)
	m1 := e.createMessage(t, app.ID, func(m *webhook.Message) { m.EventType = "b" }, ep0.ID, ep1.ID)
	otherMsg := e.createMessage(t, other.ID, func(m *webhook.Message) { m.EventType = "a" }, otherEp.ID)

	specs := []struct {
		msg    *webhook.Message
		ep     string
		status webhook.Status
		code   int
	}{
		{m0, ep0.ID, webhook.StatusFail, 500},
		{m0, ep0.ID, webhook.StatusSuccess, 200},
		{m0, ep1.ID, webhook.StatusFail, 0},
		{m1, ep0.ID, webhook.StatusFail, 404},
		{m1, ep1.ID, webhook.StatusSuccess, 299},
		{m1, ep0.ID, webhook.StatusFail, 302},
		{m0, ep1.ID, webhook.StatusFail, 503},
	}
	var atts []webhook.Attempt
	for _, sp := range specs {
		att := e.newAttempt(sp.msg, sp.ep, sp.status, sp.code)
		e.storeAttempt(t, att)
		atts = append(atts, att)
		e.storeAttempt(t, e.newAttempt(otherMsg, otherEp.ID, sp.status, sp.code))
		e.clock.Advance(time.Second)
	}
	ts := func(i int) time.Time { return atts[i].Timestamp }
	fail, success := webhook.StatusFail, webhook.StatusSuccess

	list := func(f webhook.AttemptFilter) func(webhook.ListOptions) (webhook.Page[webhook.Attempt], error) {
		return func(opts webhook.ListOptions) (webhook.Page[webhook.Attempt], error) {
			f.ListOptions = opts
			if f.AppID == "" {
				f.AppID = app.ID
			}
			return e.s.ListAttempts(e.ctx, f)
		}
	}
	want := []webhook.Attempt{atts[0], atts[1], atts[3], atts[5]}
	if d := diff(want, listAll(t, list(webhook.AttemptFilter{EndpointID: ep0.ID}))); d != "" {
		t.Errorf("ListAttempts mismatch (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name   string
		filter webhook.AttemptFilter
		want   []int // indexes into atts
	}{
		{"Endpoint", webhook.AttemptFilter{EndpointID: ep0.ID}, []int{0, 1, 3, 5}},
		{"StatusFail", webhook.AttemptFilter{EndpointID: ep0.ID, Status: &fail}, []int{0, 3, 5}},
		{"StatusSuccess", webhook.AttemptFilter{EndpointID: ep0.ID, Status: &success}, []int{1}},
		{"Class500", webhook.AttemptFilter{EndpointID: ep0.ID, StatusCodeClass: ptr(500)}, []int{0}},
		{"Class400", webhook.AttemptFilter{EndpointID: ep0.ID, StatusCodeClass: ptr(400)}, []int{3}},
		{"Class300", webhook.AttemptFilter{EndpointID: ep0.ID, StatusCodeClass: ptr(300)}, []int{5}},
		{"Class200", webhook.AttemptFilter{EndpointID: ep0.ID, StatusCodeClass: ptr(200)}, []int{1}},
		{"Class200Boundary", webhook.AttemptFilter{EndpointID: ep1.ID, StatusCodeClass: ptr(200)}, []int{4}},
		{"Class0", webhook.AttemptFilter{EndpointID: ep1.ID, StatusCodeClass: ptr(0)}, []int{2}},
		{"Class0None", webhook.AttemptFilter{EndpointID: ep0.ID, StatusCodeClass: ptr(0)}, nil},
		{"EventTypes", webhook.AttemptFilter{EndpointID: ep0.ID, EventTypes: []string{"b"}}, []int{3, 5}},
		{"After", webhook.AttemptFilter{EndpointID: ep0.ID, After: ts(1)}, []int{3, 5}},
		{"Before", webhook.AttemptFilter{EndpointID: ep0.ID, Before: ts(3)}, []int{0, 1}},
		{"Window", webhook.AttemptFilter{EndpointID: ep0.ID, After: ts(0), Before: ts(5)}, []int{1, 3}},
		{"Message", webhook.AttemptFilter{MsgID: m0.ID}, []int{0, 1, 2, 6}},
		{"MessageAndEndpoint", webhook.AttemptFilter{MsgID: m0.ID, EndpointID: ep1.ID}, []int{2, 6}},
		{"MessageStatus", webhook.AttemptFilter{MsgID: m0.ID, Status: &success}, []int{1}},
		{"MessageEventTypes", webhook.AttemptFilter{MsgID: m0.ID, EventTypes: []string{"b"}}, nil},
		{"OtherAppEndpoint", webhook.AttemptFilter{AppID: other.ID, EndpointID: ep0.ID}, nil},
		{"OtherAppMessage", webhook.AttemptFilter{AppID: other.ID, MsgID: m1.ID}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, i := range tc.want {
				keys = append(keys, atts[i].ID)
			}
			checkPaging(t, keys, listerOf(list(tc.filter), func(a webhook.Attempt) string { return a.ID }))
		})
	}
}
