package storetest

import (
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// testDeferredDeliveries: the deliveries an Early dispatcher took before
// the message was stored (Dispatched, not Claimed), which a store may
// defer writing, read and change like any other, by message: GetDelivery,
// ListDeliveries by message, a first attempt, a resend while the first
// run is in flight, a finish, a re-drive.
func testDeferredDeliveries(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep1 := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	ep3 := e.createEndpoint(t, app.ID)
	ep4 := e.createEndpoint(t, app.ID)
	msg := e.newMessage(app.ID)
	var ds []webhook.Delivery
	for _, ep := range []string{ep1.ID, ep2.ID, ep3.ID, ep4.ID} {
		ds = append(ds, webhook.Delivery{EndpointID: ep, Dispatched: true})
	}
	if err := e.s.CreateMessage(e.ctx, msg, ds); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	byMessage := func(opts webhook.ListOptions, statuses ...webhook.Status) ([]string, bool) {
		t.Helper()
		page, err := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{ListOptions: opts, AppID: app.ID, MsgID: msg.ID, Statuses: statuses})
		if err != nil {
			t.Fatalf("ListDeliveries: %v", err)
		}
		var eps []string
		for _, d := range page.Items {
			eps = append(eps, d.EndpointID)
		}
		return eps, page.More
	}
	if got, more := byMessage(webhook.ListOptions{Limit: 3, Ascending: true}); len(got) != 3 || !more || got[0] != ep1.ID {
		t.Errorf("first page by message: %v, more %v; want 3 of the 4 from %s on, more", got, more, ep1.ID)
	}
	if got, more := byMessage(webhook.ListOptions{Limit: 3, Cursor: ep3.ID, Ascending: true}); len(got) != 1 || more || got[0] != ep4.ID {
		t.Errorf("page after %s: %v, more %v; want %s alone", ep3.ID, got, more, ep4.ID)
	}
	if got, _ := byMessage(webhook.ListOptions{}, webhook.StatusSuccess); len(got) != 0 {
		t.Errorf("successful deliveries before any attempt: %v", got)
	}

	// The first attempt, a success, from the delivery as read.
	e.clock.Advance(time.Second)
	from := e.getDelivery(t, app.ID, msg.ID, ep1.ID)
	a := e.newAttempt(msg, ep1.ID, webhook.StatusSuccess, 200)
	after, err := e.s.RecordAttempt(e.ctx, webhook.AttemptResult{Attempt: a, Run: 0, Attempts: 1, Status: webhook.StatusSuccess, From: from, Endpoint: ep1})
	if err != nil {
		t.Fatalf("RecordAttempt: %v", err)
	}
	want := webhook.NewDelivery(msg, ep1.ID)
	want.Dispatched, want.Status, want.Attempts, want.UpdatedAt, want.NextAttemptAt = true, webhook.StatusSuccess, 1, a.Timestamp, time.Time{}
	for what, got := range map[string]*webhook.Delivery{"RecordAttempt": after, "GetDelivery": e.getDelivery(t, app.ID, msg.ID, ep1.ID)} {
		if d := diff(&want, got); d != "" {
			t.Errorf("%s after the first attempt (-want +got):\n%s", what, d)
		}
	}
	page, err := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{AppID: app.ID, EndpointID: ep1.ID})
	if err != nil || len(page.Items) != 1 || page.Items[0].Status != webhook.StatusSuccess {
		t.Errorf("ListDeliveries(endpoint) after the first attempt: %+v, %v; want the successful delivery", page.Items, err)
	}

	// A resend while the first run is in flight: run 1; the first run's
	// attempt is logged and changes nothing.
	inFlight := e.getDelivery(t, app.ID, msg.ID, ep2.ID)
	now := e.clock.Now()
	run1, err := e.s.StartRun(e.ctx, msg, ep2.ID, now)
	if err != nil || run1.Run != 1 || run1.Dispatched || run1.Trigger != webhook.TriggerManual {
		t.Fatalf("StartRun: %+v, %v; want run 1, manual, undispatched", run1, err)
	}
	late := e.newAttempt(msg, ep2.ID, webhook.StatusFail, 500)
	got, err := e.s.RecordAttempt(e.ctx, webhook.AttemptResult{Attempt: late, Run: 0, Attempts: 1, Status: webhook.StatusSending,
		NextAttemptAt: now.Add(time.Minute), From: inFlight})
	if err != nil || got.Run != 1 || got.Attempts != 0 || got.Status != webhook.StatusPending {
		t.Errorf("the superseded run's attempt: %+v, %v; want run 1 unchanged", got, err)
	}

	// A finish and a re-drive of deferred deliveries.
	if err := e.s.FinishDelivery(e.ctx, webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep3.ID}, webhook.StatusCanceled, now); err != nil {
		t.Fatalf("FinishDelivery: %v", err)
	}
	if d := e.getDelivery(t, app.ID, msg.ID, ep3.ID); d.Status != webhook.StatusCanceled || !d.UpdatedAt.Equal(now) {
		t.Errorf("finished deferred delivery: %+v; want canceled at %v", d, now)
	}
	redriven, err := e.s.Redrive(e.ctx, webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep4.ID}, now)
	if err != nil || redriven.Run != 1 || redriven.Dispatched || redriven.Attempts != 0 {
		t.Fatalf("Redrive: %+v, %v; want run 1, undispatched", redriven, err)
	}
	if got, err := e.s.ListUndispatched(e.ctx, now.Add(time.Hour), 10); err != nil || len(got) != 2 {
		t.Errorf("ListUndispatched: %v, %v; want the resent and the re-driven delivery", got, err)
	}
	if got, _ := byMessage(webhook.ListOptions{Ascending: true}, webhook.StatusPending); len(got) != 2 || got[0] > got[1] {
		t.Errorf("pending deliveries by message: %v; want the resent and the re-driven one, in order", got)
	}
}
