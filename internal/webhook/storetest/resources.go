package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func testApps(t *testing.T, e *env) {
	app := e.createApp(t, "acme")
	app2 := e.createApp(t, "")

	for _, key := range []string{app.ID, app.UID} {
		got, err := e.s.GetApp(e.ctx, key)
		if err != nil {
			t.Fatalf("GetApp(%q): %v", key, err)
		}
		if d := diff(app, got); d != "" {
			t.Errorf("GetApp(%q) mismatch (-want +got):\n%s", key, d)
		}
	}
	_, err := e.s.GetApp(e.ctx, "app_missing")
	wantNotFound(t, "GetApp(missing id)", err)
	_, err = e.s.GetApp(e.ctx, "nobody")
	wantNotFound(t, "GetApp(missing uid)", err)

	// uids are unique across apps; apps without one never clash.
	dup := *app
	dup.ID = webhook.NewID(webhook.PrefixApp)
	wantConflict(t, "CreateApp(taken uid)", e.s.CreateApp(e.ctx, &dup))
	sameID := *app2
	sameID.UID = "fresh"
	wantConflict(t, "CreateApp(existing id)", e.s.CreateApp(e.ctx, &sameID))
	e.createApp(t, "")

	// Update replaces every field.
	e.clock.Advance(time.Minute)
	upd := *app
	upd.UID = "acme-2"
	upd.Name = "Acme Inc."
	upd.Metadata = map[string]string{"tier": "gold"}
	upd.ThrottleRate = ptr(10)
	upd.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateApp(e.ctx, &upd, app.UpdatedAt); err != nil {
		t.Fatalf("UpdateApp: %v", err)
	}
	got, err := e.s.GetApp(e.ctx, "acme-2")
	if err != nil {
		t.Fatalf("GetApp(new uid): %v", err)
	}
	if d := diff(&upd, got); d != "" {
		t.Errorf("GetApp after UpdateApp mismatch (-want +got):\n%s", d)
	}
	_, err = e.s.GetApp(e.ctx, "acme")
	wantNotFound(t, "GetApp(old uid)", err)

	clash := *app2
	clash.UID = "acme-2"
	wantUIDConflict(t, "UpdateApp(uid of another app)", e.s.UpdateApp(e.ctx, &clash, app2.UpdatedAt))
	if got, err := e.s.GetApp(e.ctx, app2.ID); err != nil || got.UID != "" {
		t.Errorf("GetApp after conflicting update: got %+v, %v; want uid unchanged", got, err)
	}
	missing := *app
	missing.ID = webhook.NewID(webhook.PrefixApp)
	missing.UID = ""
	wantNotFound(t, "UpdateApp(missing)", e.s.UpdateApp(e.ctx, &missing, missing.UpdatedAt))

	// An update made from a stale read changes nothing, even one that
	// would take a free uid.
	lost := *app
	lost.UID = "lost"
	lost.Name = "Lost update"
	lost.UpdatedAt = e.clock.Now().Add(time.Minute)
	wantStale(t, "UpdateApp(stale)", e.s.UpdateApp(e.ctx, &lost, app.UpdatedAt))
	if d := diff(&upd, e.getApp(t, upd.ID)); d != "" {
		t.Errorf("GetApp after stale UpdateApp mismatch (-want +got):\n%s", d)
	}
	if _, err := e.s.GetApp(e.ctx, "lost"); !webhook.IsNotFound(err) {
		t.Errorf("GetApp(uid of a stale update): got %v, want NotFound", err)
	}

	// An update in the millisecond of the last one still moves UpdatedAt
	// on, so that a writer that read the last one is stale.
	same := upd
	same.Name = "Acme, same millisecond"
	if err := e.s.UpdateApp(e.ctx, &same, upd.UpdatedAt); err != nil {
		t.Fatalf("UpdateApp(same millisecond): %v", err)
	}
	if want := upd.UpdatedAt.Add(time.Millisecond); !same.UpdatedAt.Equal(want) {
		t.Errorf("UpdatedAt after an update in the same millisecond = %v, want %v", same.UpdatedAt, want)
	}
	if d := diff(&same, e.getApp(t, upd.ID)); d != "" {
		t.Errorf("GetApp after same-millisecond UpdateApp mismatch (-want +got):\n%s", d)
	}
	wantStale(t, "UpdateApp(read before a same-millisecond update)", e.s.UpdateApp(e.ctx, &upd, upd.UpdatedAt))

	// Delete frees the uid.
	if err := e.s.DeleteApp(e.ctx, app.ID); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	_, err = e.s.GetApp(e.ctx, app.ID)
	wantNotFound(t, "GetApp(deleted)", err)
	wantNotFound(t, "DeleteApp(deleted)", e.s.DeleteApp(e.ctx, app.ID))
	e.createApp(t, "acme-2")
}

func testListApps(t *testing.T, e *env) {
	var want []webhook.App
	for i := range 5 {
		want = append(want, *e.createApp(t, fmt.Sprintf("app-%d", i)))
	}
	gone := e.createApp(t, "gone")
	if err := e.s.DeleteApp(e.ctx, gone.ID); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}
	list := func(opts webhook.ListOptions) (webhook.Page[webhook.App], error) {
		return e.s.ListApps(e.ctx, opts)
	}
	if d := diff(want, listAll(t, list)); d != "" {
		t.Errorf("ListApps mismatch (-want +got):\n%s", d)
	}
	var keys []string
	for _, a := range want {
		keys = append(keys, a.ID)
	}
	checkPaging(t, keys, listerOf(list, func(a webhook.App) string { return a.ID }))

	t.Run("DefaultLimit", func(t *testing.T) {
		for i := len(want); i <= 50; i++ {
			e.createApp(t, "")
		}
		p, err := e.s.ListApps(e.ctx, webhook.ListOptions{})
		if err != nil {
			t.Fatalf("ListApps: %v", err)
		}
		if len(p.Items) != 50 || !p.More {
			t.Errorf("ListApps(Limit 0) of 51 apps: got %d items, More=%v; want 50, true", len(p.Items), p.More)
		}
	})
}

func testEventTypes(t *testing.T, e *env) {
	now := e.clock.Now()
	et := &webhook.EventType{
		Name:         "user.created",
		Description:  "A user was created",
		Schemas:      json.RawMessage(`{"1":{"type":"object"}}`),
		GroupName:    "user",
		FeatureFlags: []string{"beta"},
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	if err := e.s.CreateEventType(e.ctx, et); err != nil {
		t.Fatalf("CreateEventType: %v", err)
	}
	got, err := e.s.GetEventType(e.ctx, et.Name)
	if err != nil {
		t.Fatalf("GetEventType: %v", err)
	}
	if d := diff(et, got); d != "" {
		t.Errorf("GetEventType mismatch (-want +got):\n%s", d)
	}
	_, err = e.s.GetEventType(e.ctx, "user.missing")
	wantNotFound(t, "GetEventType(missing)", err)
	wantConflict(t, "CreateEventType(existing)", e.s.CreateEventType(e.ctx, et))

	// Archiving is an update; archived types are still found and still
	// taken.
	e.clock.Advance(time.Minute)
	upd := *et
	upd.Description = "Archived"
	upd.Archived = true
	upd.Deprecated = true
	upd.Schemas = nil
	upd.FeatureFlags = nil
	upd.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateEventType(e.ctx, &upd, et.UpdatedAt); err != nil {
		t.Fatalf("UpdateEventType: %v", err)
	}
	got, err = e.s.GetEventType(e.ctx, et.Name)
	if err != nil {
		t.Fatalf("GetEventType(archived): %v", err)
	}
	if d := diff(&upd, got); d != "" {
		t.Errorf("GetEventType after update mismatch (-want +got):\n%s", d)
	}
	wantConflict(t, "CreateEventType(archived name)", e.s.CreateEventType(e.ctx, et))
	missing := upd
	missing.Name = "user.missing"
	wantNotFound(t, "UpdateEventType(missing)", e.s.UpdateEventType(e.ctx, &missing, upd.UpdatedAt))
	lost := *et
	lost.Description = "Lost update"
	lost.UpdatedAt = e.clock.Now().Add(time.Minute)
	wantStale(t, "UpdateEventType(stale)", e.s.UpdateEventType(e.ctx, &lost, et.UpdatedAt))
	if got, err := e.s.GetEventType(e.ctx, et.Name); err != nil || diff(&upd, got) != "" {
		t.Errorf("GetEventType after stale update: got %+v, %v; want it unchanged:\n%s", got, err, diff(&upd, got))
	}

	if err := e.s.DeleteEventType(e.ctx, et.Name); err != nil {
		t.Fatalf("DeleteEventType: %v", err)
	}
	_, err = e.s.GetEventType(e.ctx, et.Name)
	wantNotFound(t, "GetEventType(deleted)", err)
	wantNotFound(t, "DeleteEventType(deleted)", e.s.DeleteEventType(e.ctx, et.Name))
	if err := e.s.CreateEventType(e.ctx, et); err != nil {
		t.Errorf("CreateEventType(expunged name): %v", err)
	}
}

func testListEventTypes(t *testing.T, e *env) {
	now := e.clock.Now()
	var all, active []string
	for _, name := range []string{"user.updated", "conv.ended", "a", "user.created", "conv.started", "b-2"} {
		et := &webhook.EventType{Name: name, Description: name, CreatedAt: now, UpdatedAt: now}
		et.Archived = name == "a" || name == "user.updated"
		if err := e.s.CreateEventType(e.ctx, et); err != nil {
			t.Fatalf("CreateEventType(%s): %v", name, err)
		}
		all = append(all, name)
		if !et.Archived {
			active = append(active, name)
		}
	}
	for _, tc := range []struct {
		name     string
		archived bool
		want     []string
	}{
		{"Active", false, active},
		{"IncludeArchived", true, all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := func(opts webhook.ListOptions) (webhook.Page[webhook.EventType], error) {
				return e.s.ListEventTypes(e.ctx, webhook.EventTypeFilter{ListOptions: opts, IncludeArchived: tc.archived})
			}
			checkPaging(t, tc.want, listerOf(list, func(et webhook.EventType) string { return et.Name }))
		})
	}
}

func testEndpoints(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	now := e.clock.Now()
	ep := e.createEndpoint(t, app.ID, func(ep *webhook.Endpoint) {
		ep.UID = "primary"
		ep.Description = "main hook"
		ep.FilterTypes = []string{"user.created", "user.updated"}
		ep.Channels = []string{"eu", "us"}
		ep.Keys = []webhook.SigningKey{
			{Key: []byte("current-key-0123456789")},
			{Key: []byte("old-key-0123456789"), ExpiresAt: now.Add(24 * time.Hour)},
		}
		ep.Headers = map[string]string{"X-Tenant": "42"}
		ep.Metadata = map[string]string{"owner": "ops"}
		ep.ThrottleRate = ptr(5)
		ep.Version = 2
	})

	for _, key := range []string{ep.ID, ep.UID} {
		got, err := e.s.GetEndpoint(e.ctx, app.ID, key)
		if err != nil {
			t.Fatalf("GetEndpoint(%q): %v", key, err)
		}
		if d := diff(ep, got); d != "" {
			t.Errorf("GetEndpoint(%q) mismatch (-want +got):\n%s", key, d)
		}
		_, err = e.s.GetEndpoint(e.ctx, other.ID, key)
		wantNotFound(t, "GetEndpoint(other app, "+key+")", err)
	}
	_, err := e.s.GetEndpoint(e.ctx, app.ID, "ep_missing")
	wantNotFound(t, "GetEndpoint(missing)", err)

	// uids are unique within an app only.
	dup := *ep
	dup.ID = webhook.NewID(webhook.PrefixEndpoint)
	wantConflict(t, "CreateEndpoint(taken uid)", e.s.CreateEndpoint(e.ctx, &dup))
	e.createEndpoint(t, other.ID, func(o *webhook.Endpoint) { o.UID = ep.UID })
	ep2 := e.createEndpoint(t, app.ID)
	e.createEndpoint(t, app.ID) // a second endpoint without uid

	// Update replaces every field but FailingSince, which only a re-enable
	// (clearing it) or RecordAttempt changes.
	failedAt := e.clock.Now()
	msg := e.createMessage(t, app.ID, nil, ep.ID)
	e.clock.Set(failedAt)
	e.record(t, msg, ep.ID, webhook.StatusFail, 500)
	e.clock.Advance(time.Hour)
	upd := *e.getEndpoint(t, app.ID, ep.ID)
	read := upd.UpdatedAt
	upd.UID = "renamed"
	upd.URL = "https://example.org/v2"
	upd.Disabled = true
	upd.DisabledAt = e.clock.Now()
	upd.DisabledWhy = webhook.DisabledManual
	upd.FilterTypes = nil
	upd.Channels = []string{"apac"}
	upd.Keys = upd.Keys[:1]
	upd.Headers = nil
	upd.Metadata = map[string]string{}
	upd.ThrottleRate = nil
	upd.Version = 3
	upd.FailingSince = time.Time{} // ignored
	upd.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateEndpoint(e.ctx, &upd, read); err != nil {
		t.Fatalf("UpdateEndpoint: %v", err)
	}
	want := upd
	want.FailingSince = failedAt
	if d := diff(&want, e.getEndpoint(t, app.ID, "renamed")); d != "" {
		t.Errorf("GetEndpoint after UpdateEndpoint mismatch (-want +got):\n%s", d)
	}
	_, err = e.s.GetEndpoint(e.ctx, app.ID, "primary")
	wantNotFound(t, "GetEndpoint(old uid)", err)

	// Re-enabling clears FailingSince.
	e.clock.Advance(time.Minute)
	enable := want
	enable.Disabled = false
	enable.DisabledAt = time.Time{}
	enable.DisabledWhy = ""
	enable.FailingSince = failedAt // ignored
	enable.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateEndpoint(e.ctx, &enable, want.UpdatedAt); err != nil {
		t.Fatalf("UpdateEndpoint(re-enable): %v", err)
	}
	enable.FailingSince = time.Time{}
	if d := diff(&enable, e.getEndpoint(t, app.ID, ep.ID)); d != "" {
		t.Errorf("GetEndpoint after re-enable mismatch (-want +got):\n%s", d)
	}

	clash := *ep2
	clash.UID = "renamed"
	wantUIDConflict(t, "UpdateEndpoint(uid of another endpoint)", e.s.UpdateEndpoint(e.ctx, &clash, ep2.UpdatedAt))
	missing := *ep2
	missing.ID = webhook.NewID(webhook.PrefixEndpoint)
	wantNotFound(t, "UpdateEndpoint(missing)", e.s.UpdateEndpoint(e.ctx, &missing, ep2.UpdatedAt))
	foreign := *ep2
	foreign.AppID = other.ID
	wantNotFound(t, "UpdateEndpoint(other app)", e.s.UpdateEndpoint(e.ctx, &foreign, ep2.UpdatedAt))

	// Delete removes the endpoint and its deliveries, and frees its uid.
	wantNotFound(t, "DeleteEndpoint(other app)", e.s.DeleteEndpoint(e.ctx, other.ID, ep.ID))
	if err := e.s.DeleteEndpoint(e.ctx, app.ID, ep.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	_, err = e.s.GetEndpoint(e.ctx, app.ID, ep.ID)
	wantNotFound(t, "GetEndpoint(deleted)", err)
	_, err = e.s.GetDelivery(e.ctx, app.ID, msg.ID, ep.ID)
	wantNotFound(t, "GetDelivery(of deleted endpoint)", err)
	wantNotFound(t, "DeleteEndpoint(deleted)", e.s.DeleteEndpoint(e.ctx, app.ID, ep.ID))
	e.createEndpoint(t, app.ID, func(ep *webhook.Endpoint) { ep.UID = "renamed" })
}

func testListEndpoints(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	var want []webhook.Endpoint
	var keys []string
	for range 5 {
		ep := e.createEndpoint(t, app.ID)
		e.createEndpoint(t, other.ID)
		want = append(want, *ep)
		keys = append(keys, ep.ID)
	}
	list := func(opts webhook.ListOptions) (webhook.Page[webhook.Endpoint], error) {
		return e.s.ListEndpoints(e.ctx, app.ID, opts)
	}
	if d := diff(want, listAll(t, list)); d != "" {
		t.Errorf("ListEndpoints mismatch (-want +got):\n%s", d)
	}
	checkPaging(t, keys, listerOf(list, func(ep webhook.Endpoint) string { return ep.ID }))
}

func testDeleteApp(t *testing.T, e *env) {
	type tenant struct {
		app *webhook.App
		ep  *webhook.Endpoint
		msg *webhook.Message
		att *webhook.Attempt
	}
	newTenant := func() tenant {
		app := e.createApp(t, "")
		ep := e.createEndpoint(t, app.ID)
		failing := e.createEndpoint(t, app.ID)
		msg := e.createMessage(t, app.ID, nil, ep.ID, failing.ID)
		e.createMessage(t, app.ID, nil, ep.ID) // stays undispatched
		e.record(t, msg, failing.ID, webhook.StatusFail, 500)
		att := e.newAttempt(msg, ep.ID, webhook.StatusSuccess, 200)
		_, err := e.s.RecordAttempt(e.ctx, webhook.AttemptResult{Attempt: att, Attempts: 1, Status: webhook.StatusSuccess})
		if err != nil {
			t.Fatalf("RecordAttempt: %v", err)
		}
		return tenant{app, ep, msg, &att}
	}
	gone, kept := newTenant(), newTenant()
	if err := e.s.DeleteApp(e.ctx, gone.app.ID); err != nil {
		t.Fatalf("DeleteApp: %v", err)
	}

	later := e.clock.Now().Add(time.Hour)
	for _, tn := range []struct {
		tenant
		exists bool
	}{{gone, false}, {kept, true}} {
		app, ep, msg := tn.app.ID, tn.ep.ID, tn.msg.ID
		var errs []error
		var counts []int
		_, err := e.s.GetEndpoint(e.ctx, app, ep)
		errs = append(errs, err)
		_, err = e.s.GetMessage(e.ctx, app, msg)
		errs = append(errs, err)
		_, err = e.s.GetDelivery(e.ctx, app, msg, ep)
		errs = append(errs, err)
		_, err = e.s.GetAttempt(e.ctx, app, msg, tn.att.ID)
		errs = append(errs, err)
		for i, err := range errs {
			if tn.exists && err != nil {
				t.Errorf("read %d of the kept app: %v", i, err)
			}
			if !tn.exists {
				wantNotFound(t, fmt.Sprintf("read %d of the deleted app", i), err)
			}
		}

		eps, err := e.s.ListEndpoints(e.ctx, app, webhook.ListOptions{})
		counts = append(counts, len(eps.Items))
		msgs, err2 := e.s.ListMessages(e.ctx, webhook.MessageFilter{AppID: app})
		counts = append(counts, len(msgs.Items))
		byMsg, err3 := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{AppID: app, MsgID: msg})
		counts = append(counts, len(byMsg.Items))
		byEp, err4 := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{AppID: app, EndpointID: ep})
		counts = append(counts, len(byEp.Items))
		atts, err5 := e.s.ListAttempts(e.ctx, webhook.AttemptFilter{AppID: app, MsgID: msg})
		counts = append(counts, len(atts.Items))
		for _, err := range []error{err, err2, err3, err4, err5} {
			if err != nil {
				t.Fatalf("list: %v", err)
			}
		}
		want := []int{0, 0, 0, 0, 0}
		if tn.exists {
			want = []int{2, 2, 2, 2, 2}
		}
		if d := diff(want, counts); d != "" {
			t.Errorf("list sizes (endpoints, messages, deliveries by msg, by endpoint, attempts), exists=%v (-want +got):\n%s", tn.exists, d)
		}
	}

	undispatched, err := e.s.ListUndispatched(e.ctx, later, 100)
	if err != nil {
		t.Fatalf("ListUndispatched: %v", err)
	}
	for _, d := range undispatched {
		if d.AppID == gone.app.ID {
			t.Errorf("ListUndispatched: got delivery %s of the deleted app", d.MsgID)
		}
	}
	failing, err := e.s.ListFailingEndpoints(e.ctx, later, 100)
	if err != nil {
		t.Fatalf("ListFailingEndpoints: %v", err)
	}
	if len(failing) != 1 || failing[0].AppID != kept.app.ID {
		t.Errorf("ListFailingEndpoints: got %d endpoints, want only the kept app's failing one", len(failing))
	}
}
