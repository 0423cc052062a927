package main

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/hookstep/hookstep/internal/webhook"
)

// opsEvent is an operational webhook as received: Svix's {type, data}.
type opsEvent struct {
	Type string `json:"type"`
	Data struct {
		AppID       string  `json:"appId"`
		EndpointID  string  `json:"endpointId"`
		EndpointUID *string `json:"endpointUid"`
		MsgID       string  `json:"msgId"`
		TaskID      string  `json:"taskId"`
		Trigger     *string `json:"trigger"`
		FailSince   *string `json:"failSince"`
		LastAttempt *struct {
			ID                 string `json:"id"`
			ResponseStatusCode int    `json:"responseStatusCode"`
		} `json:"lastAttempt"`
	} `json:"data"`
	raw received
}

// opsEvents returns the operational webhooks rcv received about app (a
// deployment's other tests may make events of their own), each verified
// with secret by the SDK; and about a task, when taskID is not empty.
func opsEvents(t *testing.T, rcv *receiver, secret, app, taskID string) []opsEvent {
	t.Helper()
	rcv.mu.Lock()
	reqs := slices.Clone(rcv.requests)
	rcv.mu.Unlock()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var out []opsEvent
	for _, r := range reqs {
		var ev opsEvent
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			t.Fatalf("operational webhook %s is not JSON: %v", r.Body, err)
		}
		if ev.Data.AppID != app && (taskID == "" || ev.Data.TaskID != taskID) {
			continue
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Errorf("the operational endpoint's secret does not verify %s: %v", r.Body, err)
		}
		ev.raw = r
		out = append(out, ev)
	}
	return out
}

func typesOf(evs []opsEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// hasEvent reports whether evs has an event of type typ that match accepts.
func hasEvent(evs []opsEvent, typ string, match func(opsEvent) bool) bool {
	return slices.ContainsFunc(evs, func(e opsEvent) bool { return e.Type == typ && (match == nil || match(e)) })
}

// newOpsEndpoint creates an operational endpoint with the SDK, deleted
// when the test ends, and returns its id and secret.
func newOpsEndpoint(t *testing.T, c *svix.Svix, in models.OperationalWebhookEndpointIn) (string, string) {
	t.Helper()
	ctx := context.Background()
	ep, err := c.OperationalWebhookEndpoint.Create(ctx, in, nil)
	if err != nil {
		t.Fatalf("create operational endpoint: %v", err)
	}
	t.Cleanup(func() {
		if err := c.OperationalWebhookEndpoint.Delete(context.Background(), ep.Id); err != nil {
			t.Errorf("delete operational endpoint: %v", err)
		}
	})
	secret, err := c.OperationalWebhookEndpoint.GetSecret(ctx, ep.Id)
	if err != nil {
		t.Fatal(err)
	}
	return ep.Id, secret.Key
}

// TestSvixSDKOperationalWebhooks: through the SDK, an operational endpoint
// is managed (OperationalWebhookEndpoint) and receives, signed with its
// own secret, the events of a customer's endpoint changes (created,
// updated, disabled by hand, enabled, deleted) and of a background task;
// an operational endpoint with filterTypes receives only those types; the
// customer's endpoint receives its own messages and nothing else. It also
// runs against a deployment (HOOKSTEP_E2E_URL).
func TestSvixSDKOperationalWebhooks(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, nil)
	c := s.Client
	opsRcv := newReceiver(t, nil)
	filteredRcv := newReceiver(t, nil)
	customer := newReceiver(t, nil)

	opsID, opsSecret := newOpsEndpoint(t, c, models.OperationalWebhookEndpointIn{Url: opsRcv.URL, Description: ptr("pager")})
	_, filteredSecret := newOpsEndpoint(t, c, models.OperationalWebhookEndpointIn{
		Url: filteredRcv.URL, FilterTypes: []string{"endpoint.deleted", "background_task.finished"}})

	// The SDK's other calls on operational endpoints.
	got, err := c.OperationalWebhookEndpoint.Get(ctx, opsID)
	if err != nil || got.Url != opsRcv.URL || got.Description != "pager" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	list, err := c.OperationalWebhookEndpoint.List(ctx, &svix.OperationalWebhookEndpointListOptions{Limit: ptr(uint64(250))})
	if err != nil || !slices.ContainsFunc(list.Data, func(e models.OperationalWebhookEndpointOut) bool { return e.Id == opsID }) {
		t.Fatalf("list: %+v, %v; want %s in it", list, err, opsID)
	}
	if _, err := c.OperationalWebhookEndpoint.Update(ctx, opsID, models.OperationalWebhookEndpointUpdate{Url: opsRcv.URL, Description: ptr("pager v2")}); err != nil {
		t.Fatal(err)
	}
	if err := c.OperationalWebhookEndpoint.UpdateHeaders(ctx, opsID, models.OperationalWebhookEndpointHeadersIn{Headers: map[string]string{"X-Team": "sre"}}); err != nil {
		t.Fatal(err)
	}
	if h, err := c.OperationalWebhookEndpoint.GetHeaders(ctx, opsID); err != nil || h.Headers["X-Team"] != "sre" {
		t.Fatalf("headers: %+v, %v", h, err)
	}

	// A customer's endpoint, through its life.
	uid := "ops-acme-" + webhook.NewID("")
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme", Uid: ptr(uid)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: customer.URL, Uid: ptr("acme-hook")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "endpoint.created at the operational endpoint", func() bool {
		return hasEvent(opsEvents(t, opsRcv, opsSecret, app.Id, ""), "endpoint.created", func(e opsEvent) bool {
			return e.Data.EndpointID == ep.Id && e.Data.EndpointUID != nil && *e.Data.EndpointUID == "acme-hook"
		})
	})
	msg, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the customer's message delivered", func() bool { return customer.succeeded(msg.Id) })

	if _, err := c.Endpoint.Patch(ctx, app.Id, ep.Id, models.EndpointPatch{Disabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint.Patch(ctx, app.Id, ep.Id, models.EndpointPatch{Disabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	task, err := c.Endpoint.Recover(ctx, app.Id, ep.Id, models.RecoverIn{Since: time.Now().Add(-time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Endpoint.Delete(ctx, app.Id, ep.Id); err != nil {
		t.Fatal(err)
	}
	want := []string{"endpoint.created", "endpoint.updated", "endpoint.disabled", "endpoint.enabled", "endpoint.deleted", "background_task.finished"}
	var evs []opsEvent
	eventually(t, 10*time.Second, "every event at the operational endpoint", func() bool {
		evs = opsEvents(t, opsRcv, opsSecret, app.Id, task.Id)
		for _, typ := range want {
			if !hasEvent(evs, typ, nil) {
				return false
			}
		}
		return true
	})
	if !hasEvent(evs, "endpoint.disabled", func(e opsEvent) bool {
		return e.Data.EndpointID == ep.Id && e.Data.Trigger != nil && *e.Data.Trigger == "manual"
	}) {
		t.Errorf("no endpoint.disabled with trigger manual in %v", typesOf(evs))
	}
	if !hasEvent(evs, "background_task.finished", func(e opsEvent) bool { return e.Data.TaskID == task.Id }) {
		t.Errorf("no background_task.finished for task %s in %v", task.Id, typesOf(evs))
	}
	for _, e := range evs {
		if !slices.Contains(want, e.Type) {
			t.Errorf("unexpected operational event %s: %s", e.Type, e.raw.Body)
		}
	}
	// Decoded with the SDK's own event models.
	for _, e := range evs {
		if e.Type == "endpoint.disabled" {
			var m models.EndpointDisabledEvent
			if err := json.Unmarshal(e.raw.Body, &m); err != nil || m.Data.AppUid == nil || *m.Data.AppUid != uid {
				t.Errorf("endpoint.disabled as the SDK's EndpointDisabledEvent: %+v, %v", m, err)
			}
		}
	}

	// filterTypes: the filtered endpoint gets its two types only.
	var filtered []opsEvent
	eventually(t, 10*time.Second, "endpoint.deleted and background_task.finished at the filtered endpoint", func() bool {
		filtered = opsEvents(t, filteredRcv, filteredSecret, app.Id, task.Id)
		return hasEvent(filtered, "endpoint.deleted", nil) && hasEvent(filtered, "background_task.finished", nil)
	})
	for _, e := range filtered {
		if e.Type != "endpoint.deleted" && e.Type != "background_task.finished" {
			t.Errorf("the filtered operational endpoint received %s", e.Type)
		}
	}

	// The customer's endpoint received its message and nothing else.
	customer.mu.Lock()
	defer customer.mu.Unlock()
	for _, r := range customer.requests {
		if id := r.Header.Get("webhook-id"); id != msg.Id {
			t.Errorf("the customer's endpoint received %s: %s", id, r.Body)
		}
	}
}

// TestSvixSDKOperationalWebhooksOfFailures: with a compressed schedule (9
// attempts within a second), a two-second failure budget and a sweep
// every 100 ms, a customer endpoint that always fails makes
// message.attempt.failing (its fourth failure), message.attempt.exhausted
// (its ninth, the schedule's last) and endpoint.disabled (trigger
// automatic, from the sweeper); one that fails four times and then
// answers makes message.attempt.failing then message.attempt.recovered.
// Each is signed with the operational endpoint's secret. The operational
// endpoint's own deliveries make no events, and no customer endpoint
// receives one.
func TestSvixSDKOperationalWebhooksOfFailures(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, map[string]string{
		"HOOKSTEP_DISABLE_AFTER": "2s", "HOOKSTEP_SWEEP_INTERVAL": "100ms",
		"HOOKSTEP_RETRY_SCHEDULE": "0s,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
	})
	c := s.Client
	opsRcv := newReceiver(t, nil)
	_, opsSecret := newOpsEndpoint(t, c, models.OperationalWebhookEndpointIn{Url: opsRcv.URL})
	// An operational endpoint that fails always: its failures make no
	// events (no loop), and it does not hold up the others.
	broken := newReceiver(t, func(string, int) int { return 500 })
	newOpsEndpoint(t, c, models.OperationalWebhookEndpointIn{Url: broken.URL})

	failing := newReceiver(t, func(string, int) int { return 503 })
	flaky := newReceiver(t, func(_ string, n int) int {
		if n <= 4 {
			return 502
		}
		return 200
	})
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: failing.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recovering, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: flaky.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}

	of := func(ep string) func(opsEvent) bool {
		return func(e opsEvent) bool { return e.Data.EndpointID == ep }
	}
	var evs []opsEvent
	eventually(t, 15*time.Second, "failing, exhausted, disabled (automatic) and recovered", func() bool {
		evs = opsEvents(t, opsRcv, opsSecret, app.Id, "")
		return hasEvent(evs, "message.attempt.failing", of(bad.Id)) &&
			hasEvent(evs, "message.attempt.exhausted", of(bad.Id)) &&
			hasEvent(evs, "endpoint.disabled", of(bad.Id)) &&
			hasEvent(evs, "message.attempt.failing", of(recovering.Id)) &&
			hasEvent(evs, "message.attempt.recovered", of(recovering.Id))
	})
	// Which attempt each event names: failing the 4th, exhausted the
	// 9th (last), recovered the 5th (the success after failing).
	nth := func(ep string, n int) string {
		t.Helper()
		page, err := c.MessageAttempt.ListByEndpoint(ctx, app.Id, ep, &svix.MessageAttemptListByEndpointOptions{Limit: ptr(uint64(50))})
		if err != nil {
			t.Fatal(err)
		}
		atts := page.Data
		slices.SortFunc(atts, func(a, b models.MessageAttemptOut) int { return a.Timestamp.Compare(b.Timestamp) })
		if len(atts) < n {
			t.Fatalf("%s has %d attempts, want at least %d", ep, len(atts), n)
		}
		return atts[n-1].Id
	}
	wantAttempt := map[string]string{
		"message.attempt.failing " + bad.Id:          nth(bad.Id, 4),
		"message.attempt.exhausted " + bad.Id:        nth(bad.Id, 9),
		"message.attempt.failing " + recovering.Id:   nth(recovering.Id, 4),
		"message.attempt.recovered " + recovering.Id: nth(recovering.Id, 5),
	}
	for _, e := range evs {
		if want, ok := wantAttempt[e.Type+" "+e.Data.EndpointID]; ok && (e.Data.LastAttempt == nil || e.Data.LastAttempt.ID != want) {
			t.Errorf("%s of %s names attempt %+v, want %s", e.Type, e.Data.EndpointID, e.Data.LastAttempt, want)
		}
	}
	count := map[string]int{}
	for _, e := range evs {
		count[e.Type+" "+e.Data.EndpointID]++
		switch e.Type {
		case "message.attempt.failing", "message.attempt.exhausted", "message.attempt.recovered":
			var m models.MessageAttemptFailingEvent // the three share a shape
			if err := json.Unmarshal(e.raw.Body, &m); err != nil || m.Data.MsgId != msg.Id || m.Data.LastAttempt.Id == "" {
				t.Errorf("%s: %s (%v)", e.Type, e.raw.Body, err)
			}
			wantCode := map[string]int16{bad.Id: 503, recovering.Id: 502}[m.Data.EndpointId]
			if e.Type == "message.attempt.recovered" {
				wantCode = 200
			}
			if m.Data.LastAttempt.ResponseStatusCode != wantCode {
				t.Errorf("%s of %s: lastAttempt.responseStatusCode %d, want %d", e.Type, m.Data.EndpointId, m.Data.LastAttempt.ResponseStatusCode, wantCode)
			}
		case "endpoint.disabled":
			var m models.EndpointDisabledEvent
			if err := json.Unmarshal(e.raw.Body, &m); err != nil || m.Data.Trigger == nil || *m.Data.Trigger != models.ENDPOINTDISABLEDTRIGGER_AUTOMATIC || m.Data.FailSince == nil {
				t.Errorf("endpoint.disabled: %s (%v), want trigger automatic with failSince", e.raw.Body, err)
			}
		}
	}
	for key, n := range count {
		if n != 1 && key != "endpoint.created "+bad.Id {
			t.Errorf("%d × %s, want 1", n, key)
		}
	}
	if count["endpoint.created "+bad.Id] != 1 || count["endpoint.created "+recovering.Id] != 1 {
		t.Errorf("endpoint.created: %v", count)
	}
	// The failing receiver got 9 attempts, the flaky one 5: only the
	// customer's message, never an operational event.
	if n := len(failing.of(msg.Id)); n != 9 || failing.count() != 9 {
		t.Errorf("the failing endpoint received %d requests (%d of the message), want the message's 9 attempts", failing.count(), n)
	}
	if n := len(flaky.of(msg.Id)); n != 5 || flaky.count() != 5 {
		t.Errorf("the flaky endpoint received %d requests (%d of the message), want the message's 5 attempts", flaky.count(), n)
	}
	// The broken operational endpoint got the same events (it has no
	// filter) and none about itself.
	for _, e := range opsEvents(t, opsRcv, opsSecret, "app_operational", "") {
		t.Errorf("an event about the operational endpoints themselves: %s", e.raw.Body)
	}
}
