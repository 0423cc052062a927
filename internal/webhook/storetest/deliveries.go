package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
)

// setStatus brings the delivery of msg to the endpoint, still Pending, to
// the status by the means the store offers for it.
func (e *env) setStatus(t *testing.T, msg *webhook.Message, endpointID string, status webhook.Status) {
	t.Helper()
	switch status {
	case webhook.StatusPending:
	case webhook.StatusSuccess:
		e.record(t, msg, endpointID, webhook.StatusSuccess, 200)
	case webhook.StatusSending:
		e.record(t, msg, endpointID, webhook.StatusFail, 503)
	case webhook.StatusFail, webhook.StatusCanceled:
		ref := webhook.Ref{AppID: msg.AppID, MsgID: msg.ID, EndpointID: endpointID}
		if err := e.s.FinishDelivery(e.ctx, ref, status, e.clock.Now()); err != nil {
			t.Fatalf("FinishDelivery: %v", err)
		}
	}
	if got := e.getDelivery(t, msg.AppID, msg.ID, endpointID).Status; got != status {
		t.Fatalf("delivery status: got %v, want %v", got, status)
	}
}

// fullStats returns m with every status present, so that stores may leave
// zero counts out.
func fullStats(m map[webhook.Status]int) map[webhook.Status]int {
	full := make(map[webhook.Status]int)
	for _, s := range []webhook.Status{webhook.StatusSuccess, webhook.StatusPending, webhook.StatusFail, webhook.StatusSending, webhook.StatusCanceled} {
		full[s] = m[s]
	}
	return full
}

func testListDeliveriesByEndpoint(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	otherEp := e.createEndpoint(t, other.ID)
	specs := []struct {
		eventType string
		channels  []string
		status    webhook.Status
	}{
		{"a", []string{"x"}, webhook.StatusSuccess},
		{"b", []string{"y"}, webhook.StatusFail},
		{"a", []string{"x", "y"}, webhook.StatusPending},
		{"c", nil, webhook.StatusSending},
		{"b", []string{"x"}, webhook.StatusCanceled},
		{"a", nil, webhook.StatusPending},
	}
	var msgs []*webhook.Message
	for _, sp := range specs {
		msg := e.createMessage(t, app.ID, func(m *webhook.Message) {
			m.EventType = sp.eventType
			m.Channels = sp.channels
		}, ep.ID, ep2.ID)
		e.setStatus(t, msg, ep.ID, sp.status)
		msgs = append(msgs, msg)
		e.createMessage(t, other.ID, nil, otherEp.ID)
	}
	ts := func(i int) time.Time { return msgs[i].Timestamp }

	list := func(f webhook.DeliveryFilter) func(webhook.ListOptions) (webhook.Page[webhook.Delivery], error) {
		return func(opts webhook.ListOptions) (webhook.Page[webhook.Delivery], error) {
			f.ListOptions = opts
			f.AppID = app.ID
			f.EndpointID = ep.ID
			return e.s.ListDeliveries(e.ctx, f)
		}
	}
	var want []webhook.Delivery
	for _, m := range msgs {
		want = append(want, *e.getDelivery(t, app.ID, m.ID, ep.ID))
	}
	if d := diff(want, listAll(t, list(webhook.DeliveryFilter{}))); d != "" {
		t.Errorf("ListDeliveries mismatch (-want +got):\n%s", d)
	}
	foreign, err := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{AppID: other.ID, EndpointID: ep.ID})
	if err != nil || len(foreign.Items) != 0 {
		t.Errorf("ListDeliveries(other app's id, endpoint): got %d items, %v; want none", len(foreign.Items), err)
	}

	for _, tc := range []struct {
		name   string
		filter webhook.DeliveryFilter
		want   []int // indexes into msgs
	}{
		{"All", webhook.DeliveryFilter{}, []int{0, 1, 2, 3, 4, 5}},
		{"Pending", webhook.DeliveryFilter{Statuses: []webhook.Status{webhook.StatusPending}}, []int{2, 5}},
		{"Statuses", webhook.DeliveryFilter{Statuses: []webhook.Status{webhook.StatusSuccess, webhook.StatusFail}}, []int{0, 1}},
		{"Canceled", webhook.DeliveryFilter{Statuses: []webhook.Status{webhook.StatusCanceled}}, []int{4}},
		{"EventTypes", webhook.DeliveryFilter{EventTypes: []string{"a"}}, []int{0, 2, 5}},
		{"Channel", webhook.DeliveryFilter{Channel: "x"}, []int{0, 2, 4}},
		{"SinceInclusive", webhook.DeliveryFilter{Since: ts(2)}, []int{2, 3, 4, 5}},
		{"UntilExclusive", webhook.DeliveryFilter{Until: ts(4)}, []int{0, 1, 2, 3}},
		{"Combined", webhook.DeliveryFilter{Since: ts(1), Until: ts(4), Statuses: []webhook.Status{webhook.StatusPending, webhook.StatusSending}}, []int{2, 3}},
		{"NoMatch", webhook.DeliveryFilter{EventTypes: []string{"zzz"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, i := range tc.want {
				keys = append(keys, msgs[i].ID)
			}
			checkPaging(t, keys, listerOf(list(tc.filter), func(d webhook.Delivery) string { return d.MsgID }))
		})
	}
}

func testListDeliveriesByMessage(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	statuses := []webhook.Status{webhook.StatusSuccess, webhook.StatusFail, webhook.StatusPending, webhook.StatusSending, webhook.StatusCanceled}
	var eps []string
	for range statuses {
		eps = append(eps, e.createEndpoint(t, app.ID).ID)
	}
	msg := e.createMessage(t, app.ID, func(m *webhook.Message) {
		m.EventType = "a"
		m.Channels = []string{"x"}
	}, eps...)
	e.createMessage(t, app.ID, nil, eps...) // another message to the same endpoints
	for i, s := range statuses {
		e.setStatus(t, msg, eps[i], s)
	}

	list := func(f webhook.DeliveryFilter) func(webhook.ListOptions) (webhook.Page[webhook.Delivery], error) {
		return func(opts webhook.ListOptions) (webhook.Page[webhook.Delivery], error) {
			f.ListOptions = opts
			f.AppID = app.ID
			f.MsgID = msg.ID
			return e.s.ListDeliveries(e.ctx, f)
		}
	}
	var want []webhook.Delivery
	for _, id := range eps {
		want = append(want, *e.getDelivery(t, app.ID, msg.ID, id))
	}
	if d := diff(want, listAll(t, list(webhook.DeliveryFilter{}))); d != "" {
		t.Errorf("ListDeliveries mismatch (-want +got):\n%s", d)
	}
	foreign, err := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{AppID: other.ID, MsgID: msg.ID})
	if err != nil || len(foreign.Items) != 0 {
		t.Errorf("ListDeliveries(other app's id, message): got %d items, %v; want none", len(foreign.Items), err)
	}

	for _, tc := range []struct {
		name   string
		filter webhook.DeliveryFilter
		want   []int // indexes into eps
	}{
		{"All", webhook.DeliveryFilter{}, []int{0, 1, 2, 3, 4}},
		{"Statuses", webhook.DeliveryFilter{Statuses: []webhook.Status{webhook.StatusFail, webhook.StatusCanceled}}, []int{1, 4}},
		{"EventType", webhook.DeliveryFilter{EventTypes: []string{"a", "b"}}, []int{0, 1, 2, 3, 4}},
		{"OtherEventType", webhook.DeliveryFilter{EventTypes: []string{"b"}}, nil},
		{"Channel", webhook.DeliveryFilter{Channel: "x"}, []int{0, 1, 2, 3, 4}},
		{"OtherChannel", webhook.DeliveryFilter{Channel: "y"}, nil},
		{"Since", webhook.DeliveryFilter{Since: msg.Timestamp}, []int{0, 1, 2, 3, 4}},
		{"Until", webhook.DeliveryFilter{Until: msg.Timestamp}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, i := range tc.want {
				keys = append(keys, eps[i])
			}
			checkPaging(t, keys, listerOf(list(tc.filter), func(d webhook.Delivery) string { return d.EndpointID }))
		})
	}
}

func testStartRun(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	msg := e.createMessage(t, app.ID, func(m *webhook.Message) { m.Channels = []string{"eu"} }, ep.ID)
	e.record(t, msg, ep.ID, webhook.StatusFail, 500)
	if err := e.s.MarkDispatched(e.ctx, webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID}); err != nil {
		t.Fatalf("MarkDispatched: %v", err)
	}

	for _, tc := range []struct {
		name     string
		endpoint string
		before   func(t *testing.T)
		wantRun  int
	}{
		{"AfterOriginalRun", ep.ID, nil, 1},
		{"AfterManualRun", ep.ID, nil, 2},
		{"AfterSuccess", ep.ID, func(t *testing.T) { e.setStatus(t, msg, ep.ID, webhook.StatusSuccess) }, 3},
		{"NeverDelivered", ep2.ID, nil, 1},
		{"AgainNeverDelivered", ep2.ID, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before(t)
			}
			now := e.clock.Advance(time.Minute)
			got, err := e.s.StartRun(e.ctx, msg, tc.endpoint, now)
			if err != nil {
				t.Fatalf("StartRun: %v", err)
			}
			want := webhook.NewRun(msg, tc.endpoint, tc.wantRun, now)
			if d := diff(&want, got); d != "" {
				t.Errorf("StartRun mismatch (-want +got):\n%s", d)
			}
			if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, tc.endpoint)); d != "" {
				t.Errorf("GetDelivery after StartRun mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func testMarkDispatched(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	msg := e.createMessage(t, app.ID, nil, ep.ID)
	ref := webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	ignoreUpdatedAt := cmpopts.IgnoreFields(webhook.Delivery{}, "UpdatedAt")

	mark := func(t *testing.T, ref webhook.Ref, wantDispatched bool) {
		t.Helper()
		before := e.getDelivery(t, app.ID, msg.ID, ep.ID)
		if err := e.s.MarkDispatched(e.ctx, ref); err != nil {
			t.Fatalf("MarkDispatched(run %d): %v", ref.Run, err)
		}
		want := *before
		want.Dispatched = wantDispatched
		if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, ep.ID), ignoreUpdatedAt); d != "" {
			t.Errorf("GetDelivery after MarkDispatched(run %d) mismatch (-want +got):\n%s", ref.Run, d)
		}
	}
	mark(t, ref, true)
	mark(t, ref, true) // again: harmless

	run, err := e.s.StartRun(e.ctx, msg, ep.ID, e.clock.Now())
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if run.Dispatched {
		t.Errorf("StartRun: got Dispatched, want a new undispatched run")
	}
	mark(t, ref, false) // stale run 0
	mark(t, run.Ref(), true)

	missing := ref
	missing.EndpointID = "ep_missing"
	wantNotFound(t, "MarkDispatched(missing)", e.s.MarkDispatched(e.ctx, missing))
}

func testMarkDispatchedBatch(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	m0 := e.createMessage(t, app.ID, nil, ep.ID, ep2.ID)
	m1 := e.createMessage(t, app.ID, nil, ep.ID)
	run, err := e.s.StartRun(e.ctx, m1, ep.ID, e.clock.Now())
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	refs := []webhook.Ref{
		{AppID: app.ID, MsgID: m0.ID, EndpointID: ep.ID},
		{AppID: app.ID, MsgID: m0.ID, EndpointID: ep2.ID},
		{AppID: app.ID, MsgID: m1.ID, EndpointID: ep.ID},        // stale: run 0, superseded by run 1
		{AppID: app.ID, MsgID: m1.ID, EndpointID: "ep_missing"}, // no such delivery
	}
	if err := e.s.MarkDispatchedBatch(e.ctx, refs); err != nil {
		t.Fatalf("MarkDispatchedBatch: %v", err)
	}
	for _, ref := range refs[:2] {
		if d := e.getDelivery(t, app.ID, ref.MsgID, ref.EndpointID); !d.Dispatched {
			t.Errorf("delivery of %s to %s: not dispatched after MarkDispatchedBatch", ref.MsgID, ref.EndpointID)
		}
	}
	if d := e.getDelivery(t, app.ID, m1.ID, ep.ID); d.Dispatched || d.Run != run.Run {
		t.Errorf("a stale run's mark changed the current run: %+v", d)
	}
	if err := e.s.MarkDispatchedBatch(e.ctx, nil); err != nil {
		t.Errorf("MarkDispatchedBatch(none): %v", err)
	}
	if err := e.s.MarkDispatchedBatch(e.ctx, []webhook.Ref{run.Ref()}); err != nil {
		t.Fatalf("MarkDispatchedBatch: %v", err)
	}
	if d := e.getDelivery(t, app.ID, m1.ID, ep.ID); !d.Dispatched {
		t.Errorf("current run not dispatched after MarkDispatchedBatch: %+v", d)
	}
}

func testRedrive(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	msg := e.createMessage(t, app.ID, nil, ep.ID)
	ref := webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	if err := e.s.MarkDispatched(e.ctx, ref); err != nil {
		t.Fatalf("MarkDispatched: %v", err)
	}
	e.setStatus(t, msg, ep.ID, webhook.StatusSending) // one failed attempt, a retry due
	before := *e.getDelivery(t, app.ID, msg.ID, ep.ID)

	now := e.clock.Advance(time.Hour)
	got, err := e.s.Redrive(e.ctx, ref, now)
	if err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	want := before
	want.Run, want.Dispatched, want.NextAttemptAt, want.UpdatedAt = 1, false, now, now
	if d := diff(&want, got); d != "" {
		t.Errorf("Redrive mismatch (-want +got):\n%s", d)
	}
	if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, ep.ID)); d != "" {
		t.Errorf("GetDelivery after Redrive mismatch (-want +got):\n%s", d)
	}
	// Undispatched again: the sweeper finds it.
	undispatched, err := e.s.ListUndispatched(e.ctx, now.Add(time.Millisecond), 10)
	if err != nil || len(undispatched) != 1 || undispatched[0].Run != 1 {
		t.Errorf("ListUndispatched after Redrive: %+v, %v; want the new run", undispatched, err)
	}

	// The old run is gone: a second Redrive of it conflicts, as does one
	// of a final delivery; a missing delivery is not found.
	if _, err := e.s.Redrive(e.ctx, ref, now); !webhook.IsConflict(err) {
		t.Errorf("Redrive of a superseded run: got %v, want Conflict", err)
	}
	e.record(t, msg, ep.ID, webhook.StatusSuccess, 200)
	if _, err := e.s.Redrive(e.ctx, got.Ref(), now); !webhook.IsConflict(err) {
		t.Errorf("Redrive of a final delivery: got %v, want Conflict", err)
	}
	missing := ref
	missing.EndpointID = "ep_missing"
	if _, err := e.s.Redrive(e.ctx, missing, now); !webhook.IsNotFound(err) {
		t.Errorf("Redrive of a missing delivery: got %v, want NotFound", err)
	}
}

func testListUndispatched(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	otherEp := e.createEndpoint(t, other.ID)

	m0 := e.createMessage(t, app.ID, nil, ep.ID)
	m1 := e.createMessage(t, app.ID, nil, ep.ID)
	m2 := e.createMessage(t, app.ID, nil, ep.ID)
	m3 := e.createMessage(t, other.ID, nil, otherEp.ID)
	m4 := e.createMessage(t, other.ID, nil, otherEp.ID)
	if err := e.s.MarkDispatched(e.ctx, webhook.Ref{AppID: app.ID, MsgID: m1.ID, EndpointID: ep.ID}); err != nil {
		t.Fatalf("MarkDispatched: %v", err)
	}
	e.setStatus(t, m2, ep.ID, webhook.StatusFail) // final: never listed

	d0 := *e.getDelivery(t, app.ID, m0.ID, ep.ID)
	d3 := *e.getDelivery(t, other.ID, m3.ID, otherEp.ID)
	d4 := *e.getDelivery(t, other.ID, m4.ID, otherEp.ID)

	check := func(t *testing.T, before time.Time, limit int, want []webhook.Delivery) {
		t.Helper()
		got, err := e.s.ListUndispatched(e.ctx, before, limit)
		if err != nil {
			t.Fatalf("ListUndispatched: %v", err)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("ListUndispatched(%v, %d) mismatch (-want +got):\n%s", before.Sub(Epoch), limit, d)
		}
	}
	check(t, m4.Timestamp.Add(time.Millisecond), 10, []webhook.Delivery{d0, d3, d4})
	check(t, m4.Timestamp, 10, []webhook.Delivery{d0, d3}) // strictly before
	check(t, m4.Timestamp, 1, []webhook.Delivery{d0})
	check(t, m0.Timestamp, 10, nil)

	// A new run is undispatched again, as of its start.
	now := e.clock.Advance(time.Minute)
	run, err := e.s.StartRun(e.ctx, m1, ep.ID, now)
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	check(t, now, 10, []webhook.Delivery{d0, d3, d4})
	check(t, now.Add(time.Millisecond), 10, []webhook.Delivery{d0, d3, d4, *run})
}

// testLoadRun: LoadRun returns a current run's delivery, endpoint and
// message as the Gets do, also for a delivery a store deferred; a stale or
// final run and a disabled endpoint at least with the delivery (and the
// endpoint), without error; NotFound, with nothing, for a run whose
// delivery is missing, in another app or expired with its message.
func testLoadRun(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	off := e.createEndpoint(t, app.ID)
	msg := e.createMessage(t, app.ID, func(m *webhook.Message) { m.ExpiresAt = m.Timestamp.Add(time.Hour) }, ep.ID, off.ID)
	deferred := e.newMessage(app.ID)
	if err := e.s.CreateMessage(e.ctx, deferred, []webhook.Delivery{{EndpointID: ep.ID, Dispatched: true}}); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	finished := e.createMessage(t, app.ID, nil, ep.ID)
	if err := e.s.FinishDelivery(e.ctx, webhook.Ref{AppID: app.ID, MsgID: finished.ID, EndpointID: ep.ID}, webhook.StatusFail, e.clock.Now()); err != nil {
		t.Fatalf("FinishDelivery: %v", err)
	}
	disabled := *off
	disabled.Disabled = true
	if err := e.s.UpdateEndpoint(e.ctx, &disabled, disabled.UpdatedAt); err != nil {
		t.Fatalf("UpdateEndpoint: %v", err)
	}
	ref := func(m *webhook.Message, endpointID string, run int) webhook.Ref {
		return webhook.Ref{AppID: app.ID, MsgID: m.ID, EndpointID: endpointID, Run: run}
	}

	for _, tc := range []struct {
		name string
		ref  webhook.Ref
		// wantEp and wantMsg: the endpoint and the message must come back
		// (the delivery always must).
		wantEp, wantMsg bool
	}{
		{"Current", ref(msg, ep.ID, 0), true, true},
		{"Deferred", ref(deferred, ep.ID, 0), true, true},
		{"StaleRun", ref(msg, ep.ID, 1), false, false},
		{"Final", ref(finished, ep.ID, 0), false, false},
		{"EndpointDisabled", ref(msg, off.ID, 0), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, gotEp, gotMsg, err := e.s.LoadRun(e.ctx, tc.ref)
			if err != nil {
				t.Fatalf("LoadRun: %v", err)
			}
			if diff := diff(e.getDelivery(t, app.ID, tc.ref.MsgID, tc.ref.EndpointID), d); diff != "" {
				t.Errorf("delivery mismatch with GetDelivery (-want +got):\n%s", diff)
			}
			if tc.wantEp || gotEp != nil {
				want, err := e.s.GetEndpoint(e.ctx, app.ID, tc.ref.EndpointID)
				sameAsGet(t, "GetEndpoint", want, err, gotEp)
			}
			if tc.wantMsg || gotMsg != nil {
				want, err := e.s.GetMessage(e.ctx, app.ID, tc.ref.MsgID)
				sameAsGet(t, "GetMessage", want, err, gotMsg)
			}
		})
	}

	other := e.createApp(t, "")
	for _, tc := range []struct {
		name  string
		ref   webhook.Ref
		setup func()
	}{
		{"NoDelivery", ref(finished, off.ID, 0), nil},
		{"OtherApp", webhook.Ref{AppID: other.ID, MsgID: msg.ID, EndpointID: ep.ID}, nil},
		{"Expired", ref(msg, ep.ID, 0), func() { e.clock.Set(msg.ExpiresAt.Add(time.Millisecond)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			d, gotEp, gotMsg, err := e.s.LoadRun(e.ctx, tc.ref)
			wantNotFound(t, "LoadRun", err)
			if d != nil || gotEp != nil || gotMsg != nil {
				t.Errorf("LoadRun: got %+v, %+v, %+v; want nothing", d, gotEp, gotMsg)
			}
		})
	}
}

// sameAsGet fails the test unless got is what the Get named get returned
// (want, err).
func sameAsGet[T any](t *testing.T, get string, want *T, err error, got *T) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", get, err)
	}
	if d := diff(want, got); d != "" {
		t.Errorf("LoadRun mismatch with %s (-want +got):\n%s", get, d)
	}
}
