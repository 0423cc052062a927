package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
	"github.com/svix/svix-webhooks/go/utils"

	"github.com/hookstep/hookstep/internal/webhook"
)

// These tests drive local mode only through the official Svix Go SDK, as a
// customer of hookstep would.

func ptr[T any](v T) *T { return &v }

func payload(typ string, n int) map[string]any {
	return map[string]any{"type": typ, "data": map[string]any{"end_user_id": "u-42", "n": n}}
}

// verifier checks every received request with the SDK's Webhook.Verify.
func verify(t *testing.T, secret string, r received) {
	t.Helper()
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(r.Body, r.Header); err != nil {
		t.Errorf("Svix SDK rejects the signature of %s: %v", r.Header.Get("webhook-id"), err)
	}
	// Both header sets carry the same values.
	for _, h := range []string{"id", "timestamp", "signature"} {
		if a, b := r.Header.Get("webhook-"+h), r.Header.Get("svix-"+h); a == "" || a != b {
			t.Errorf("webhook-%s %q and svix-%s %q differ", h, a, h, b)
		}
	}
}

func TestSvixSDKEndToEnd(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, nil)
	c := s.Client
	rcv := newReceiver(t, nil)

	if err := c.Health.Get(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}

	// Apps: create, and get-or-create by uid returns the same one.
	uid := "acme-" + webhook.NewID("") // unique per run: a deployment keeps its data
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme", Uid: ptr(uid)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Application.GetOrCreate(ctx, models.ApplicationIn{Name: "Acme again", Uid: ptr(uid)}, nil)
	if err != nil || again.Id != app.Id || again.Name != "Acme" {
		t.Fatalf("get-or-create: got %+v, %v; want app %s", again, err, app.Id)
	}
	if got, err := c.Application.Get(ctx, uid); err != nil || got.Id != app.Id {
		t.Fatalf("get by uid: got %+v, %v", got, err)
	}

	// Event types: local mode seeds the catalog on first start (a
	// deployment may not have it: then the suite adds the two it uses).
	if os.Getenv("HOOKSTEP_E2E_URL") == "" {
		types, err := c.EventType.List(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, et := range types.Data {
			names = append(names, et.Name)
		}
		for _, want := range []string{"v1.end_user.created", "v1.end_user.updated", "v1.conversation.created", "v1.conversation.ended", "v1.conversation.message"} {
			if !slices.Contains(names, want) {
				t.Errorf("seeded catalog lacks %s (got %v)", want, names)
			}
		}
	}
	for _, name := range []string{"v1.end_user.created", "v1.end_user.updated", "v1.conversation.ended", "v1.test.ping"} {
		_, err := c.EventType.Create(ctx, models.EventTypeIn{Name: name, Description: "Used by the e2e suite"}, nil)
		var apiErr *svix.Error
		if err != nil && !(errors.As(err, &apiErr) && apiErr.Status() == 409) {
			t.Fatalf("event type %s: %v", name, err)
		}
	}

	// Endpoints: one for everything, one filtered by type, one by channel.
	all, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL + "/all", Uid: ptr("all")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL + "/typed", FilterTypes: []string{"v1.conversation.ended"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	channeled, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL + "/eu", Channels: []string{"eu"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, ep := range []*models.EndpointOut{all, typed, channeled} {
		sec, err := c.Endpoint.GetSecret(ctx, app.Id, ep.Id)
		if err != nil || !strings.HasPrefix(sec.Key, "whsec_") {
			t.Fatalf("secret of %s: got %+v, %v", ep.Id, sec, err)
		}
		secrets[strings.TrimPrefix(ep.Url, rcv.URL)] = sec.Key
	}

	// Messages: fan-out follows the filters and channels.
	created, err := c.Message.Create(ctx, uid, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1), EventId: ptr("evt-1")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ended, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.conversation.ended", Payload: payload("v1.conversation.ended", 2), Channels: []string{"eu"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "4 deliveries", func() bool { return rcv.count() >= 4 })
	time.Sleep(100 * time.Millisecond) // would a fifth, wrong delivery arrive?
	wantPaths := map[string][]string{created.Id: {"/all"}, ended.Id: {"/all", "/eu", "/typed"}}
	for id, want := range wantPaths {
		var got []string
		for _, r := range rcv.of(id) {
			got = append(got, r.Path)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("message %s went to %v, want %v", id, got, want)
		}
	}
	for _, r := range rcv.of(ended.Id) {
		verify(t, secrets[r.Path], r)
	}
	for _, r := range rcv.of(created.Id) {
		verify(t, secrets["/all"], r)
	}

	// The message reads back by id and by eventId.
	if got, err := c.Message.Get(ctx, app.Id, "evt-1", nil); err != nil || got.Id != created.Id {
		t.Errorf("get by eventId: got %+v, %v", got, err)
	}

	// Attempts by endpoint and by message.
	byEndpoint, err := c.MessageAttempt.ListByEndpoint(ctx, app.Id, all.Id, nil)
	if err != nil || len(byEndpoint.Data) != 2 {
		t.Fatalf("attempts of endpoint all: got %v, %v; want 2", byEndpoint, err)
	}
	if byEndpoint.Data[0].MsgId != ended.Id {
		t.Errorf("attempts not newest first: got %s first, want %s", byEndpoint.Data[0].MsgId, ended.Id)
	}
	byMsg, err := c.MessageAttempt.ListByMsg(ctx, app.Id, ended.Id, nil)
	if err != nil || len(byMsg.Data) != 3 {
		t.Fatalf("attempts of message: got %v, %v; want 3", byMsg, err)
	}
	for _, a := range byMsg.Data {
		if a.Status != models.MESSAGESTATUS_SUCCESS || a.ResponseStatusCode != 200 || a.TriggerType != models.MESSAGEATTEMPTTRIGGERTYPE_SCHEDULED {
			t.Errorf("attempt %s: got status %d code %d trigger %d", a.Id, a.Status, a.ResponseStatusCode, a.TriggerType)
		}
	}
	one, err := c.MessageAttempt.Get(ctx, app.Id, ended.Id, byMsg.Data[0].Id, nil)
	if err != nil || one.Id != byMsg.Data[0].Id {
		t.Errorf("get attempt: got %+v, %v", one, err)
	}
	dests, err := c.MessageAttempt.ListAttemptedDestinations(ctx, app.Id, ended.Id, nil)
	if err != nil || len(dests.Data) != 3 {
		t.Errorf("attempted destinations: got %v, %v; want 3", dests, err)
	}
	msgs, err := c.MessageAttempt.ListAttemptedMessages(ctx, app.Id, all.Id, nil)
	if err != nil || len(msgs.Data) != 2 || msgs.Data[0].Status != models.MESSAGESTATUS_SUCCESS {
		t.Errorf("attempted messages: got %+v, %v", msgs, err)
	}

	// Resend: one more request with the same webhook-id, a manual attempt.
	if _, err := c.MessageAttempt.Resend(ctx, app.Id, created.Id, all.Id, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the resend", func() bool { return len(rcv.of(created.Id)) == 2 })
	eventually(t, 5*time.Second, "the manual attempt", func() bool {
		l, err := c.MessageAttempt.ListByMsg(ctx, app.Id, created.Id, nil)
		return err == nil && len(l.Data) == 2 && l.Data[0].TriggerType == models.MESSAGEATTEMPTTRIGGERTYPE_MANUAL
	})

	// Rotate the secret: during the grace period both keys verify.
	old := secrets["/all"]
	if err := c.Endpoint.RotateSecret(ctx, app.Id, all.Id, models.EndpointSecretRotateIn{}, nil); err != nil {
		t.Fatal(err)
	}
	newSec, err := c.Endpoint.GetSecret(ctx, app.Id, all.Id)
	if err != nil || newSec.Key == old {
		t.Fatalf("secret after rotation: got %+v, %v", newSec, err)
	}
	rotated, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.updated", Payload: payload("v1.end_user.updated", 3)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "delivery after rotation", func() bool { return len(rcv.of(rotated.Id)) == 1 })
	r := rcv.of(rotated.Id)[0]
	if sigs := strings.Fields(r.Header.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("got %d signatures during the grace period, want 2", len(sigs))
	}
	verify(t, old, r)
	verify(t, newSec.Key, r)

	// Stats count the endpoint's deliveries by status (the last attempt
	// is recorded once the receiver has answered: a moment after it got
	// the request).
	eventually(t, 5*time.Second, "stats with 3 successes", func() bool {
		stats, err := c.Endpoint.GetStats(ctx, app.Id, all.Id, nil)
		return err == nil && stats.Success == 3 && stats.Fail == 0
	})
}

func TestSvixSDKRecoverAndHealth(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, map[string]string{"HOOKSTEP_RETRY_SCHEDULE": "0s"}) // 2 attempts, then fail
	c := s.Client
	var down atomic.Bool
	down.Store(true)
	rcv := newReceiver(t, func(string, int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	var ids []string
	for i := range 3 {
		m, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Id)
	}
	eventually(t, 10*time.Second, "every message to fail", func() bool {
		st, err := c.Endpoint.GetStats(ctx, app.Id, ep.Id, nil)
		return err == nil && st.Fail == 3
	})
	failed, err := c.MessageAttempt.ListByEndpoint(ctx, app.Id, ep.Id, &svix.MessageAttemptListByEndpointOptions{Status: ptr(models.MESSAGESTATUS_FAIL)})
	if err != nil || len(failed.Data) != 6 {
		t.Fatalf("failed attempts: got %d, %v; want 6 (2 per message)", len(failed.Data), err)
	}
	for _, a := range failed.Data {
		if a.ResponseStatusCode != 503 {
			t.Errorf("attempt %s: response code %d, want 503", a.Id, a.ResponseStatusCode)
		}
	}

	// The receiver is back: recover everything since a minute ago.
	down.Store(false)
	task, err := c.Endpoint.Recover(ctx, app.Id, ep.Id, models.RecoverIn{Since: since}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(task.Id, "qtask_") || task.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER {
		t.Errorf("recover task: got %+v", task)
	}
	for _, id := range ids {
		eventually(t, 10*time.Second, "recovered delivery of "+id, func() bool { return rcv.succeeded(id) })
	}
	eventually(t, 5*time.Second, "stats to show the recovery", func() bool {
		st, err := c.Endpoint.GetStats(ctx, app.Id, ep.Id, nil)
		return err == nil && st.Success == 3 && st.Fail == 0
	})

	// Disable, then re-enable, through PATCH.
	got, err := c.Endpoint.Patch(ctx, app.Id, ep.Id, models.EndpointPatch{Disabled: ptr(true), Channels: utils.NewUnsetNullable[[]string]()})
	if err != nil || got.Disabled == nil || !*got.Disabled {
		t.Fatalf("disable: got %+v, %v", got, err)
	}
	before := rcv.count()
	if _, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 9)}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if rcv.count() != before {
		t.Errorf("a disabled endpoint received a message")
	}
	got, err = c.Endpoint.Patch(ctx, app.Id, ep.Id, models.EndpointPatch{Disabled: ptr(false)})
	if err != nil || (got.Disabled != nil && *got.Disabled) {
		t.Fatalf("enable: got %+v, %v", got, err)
	}
}

func TestSvixSDKErrors(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, nil)
	bad := newClient(t, s.URL, "wrong-token")
	_, err := bad.Application.List(ctx, nil)
	var apiErr *svix.Error
	if !errors.As(err, &apiErr) || apiErr.Status() != 401 {
		t.Errorf("wrong token: got %v, want a 401", err)
	}
	_, err = s.Client.Application.Get(ctx, "app_nope")
	if !errors.As(err, &apiErr) || apiErr.Status() != 404 {
		t.Errorf("unknown app: got %v, want a 404", err)
	}
	app, _ := s.Client.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	_, err = s.Client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://ok.invalid", FilterTypes: []string{"no.such.type"}}, nil)
	if !errors.As(err, &apiErr) || apiErr.Status() != 422 {
		t.Errorf("unknown event type: got %v, want a 422", err)
	}
}
