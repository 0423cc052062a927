package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
	"github.com/svix/svix-webhooks/go/utils"

	"github.com/hookstep/hookstep/internal/webhook"
)

func ptr[T any](v T) *T { return &v }

// TestSvixGoSDK drives every route through the official Go SDK, pointed at
// the handler by a server URL that ends in "/" (so every path starts with
// "//"): its requests must be understood and its decoders must accept every
// response.
func TestSvixGoSDK(t *testing.T) {
	h := newHarness(t)
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	u, _ := url.Parse(ts.URL + "/")
	client, err := svix.New(testToken, &svix.SvixOptions{ServerUrl: u})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := sdkCheck(t)

	check("health", client.Health.Get(ctx))

	app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "SDK", Uid: ptr("sdk-app"), RateLimit: ptr(uint16(4))}, nil)
	check("create app", err)
	if app.ThrottleRate == nil || *app.ThrottleRate != 4 || app.Uid == nil || *app.Uid != "sdk-app" {
		t.Errorf("app %+v", app)
	}
	same, err := client.Application.GetOrCreate(ctx, models.ApplicationIn{Name: "ignored", Uid: ptr("sdk-app")}, nil)
	check("get or create app", err)
	if same.Id != app.Id {
		t.Errorf("GetOrCreate returned %s, want %s", same.Id, app.Id)
	}
	_, err = client.Application.Update(ctx, "sdk-app", models.ApplicationIn{Name: "SDK 2"})
	check("update app", err)
	patched, err := client.Application.Patch(ctx, app.Id, models.ApplicationPatch{ThrottleRate: utils.NewNullableFromPtr[uint16](nil)})
	check("patch app", err)
	if patched.ThrottleRate != nil || patched.Name != "SDK 2" {
		t.Errorf("patched app %+v", patched)
	}
	apps, err := client.Application.List(ctx, &svix.ApplicationListOptions{Limit: ptr(uint64(10)), Order: ptr(models.ORDERING_DESCENDING)})
	check("list apps", err)
	if len(apps.Data) != 1 || !apps.Done || apps.Iterator == nil {
		t.Errorf("apps %+v", apps)
	}

	_, err = client.EventType.Create(ctx, models.EventTypeIn{Name: "user.created", Description: "d", Schemas: &map[string]any{"1": map[string]any{"type": "object"}}}, nil)
	check("create event type", err)
	_, err = client.EventType.Update(ctx, "user.deleted", models.EventTypeUpdate{Description: "gone"})
	check("upsert event type", err)
	_, err = client.EventType.Patch(ctx, "user.deleted", models.EventTypePatch{GroupName: utils.NewNullable("users")})
	check("patch event type", err)
	_, err = client.EventType.Get(ctx, "user.created")
	check("get event type", err)
	check("archive event type", client.EventType.Delete(ctx, "user.deleted", nil))
	ets, err := client.EventType.List(ctx, &svix.EventTypeListOptions{IncludeArchived: ptr(true), WithContent: ptr(false)})
	check("list event types", err)
	if len(ets.Data) != 2 {
		t.Errorf("event types %+v", ets)
	}
	// The SDK echoes iterators as they were given, one item at a time.
	_, err = client.EventType.Create(ctx, models.EventTypeIn{Name: "-dash", Description: "d"}, nil)
	check("create event type -dash", err)
	var walked []string
	opts := &svix.EventTypeListOptions{Limit: ptr(uint64(1)), IncludeArchived: ptr(true)}
	for range 5 {
		page, err := client.EventType.List(ctx, opts)
		check("list event types one at a time", err)
		for _, et := range page.Data {
			walked = append(walked, et.Name)
		}
		if page.Done {
			break
		}
		opts.Iterator = page.Iterator
	}
	if want := []string{"-dash", "user.created", "user.deleted"}; !slices.Equal(walked, want) {
		t.Errorf("event types one at a time: got %v, want %v", walked, want)
	}

	ep, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{
		Url: "https://example.com/hook", Uid: ptr("sdk-ep"), FilterTypes: []string{"user.created"},
		Headers: &map[string]string{"X-Team": "core"}, Metadata: &map[string]string{"k": "v"},
	}, nil)
	check("create endpoint", err)
	if len(ep.FilterTypes) != 1 || ep.Disabled == nil || *ep.Disabled {
		t.Errorf("endpoint %+v", ep)
	}
	_, err = client.Endpoint.Update(ctx, app.Id, "sdk-ep", models.EndpointUpdate{Url: "https://example.com/v2", FilterTypes: []string{"user.created"}})
	check("update endpoint", err)
	_, err = client.Endpoint.Patch(ctx, app.Id, ep.Id, models.EndpointPatch{Description: ptr("patched"), Channels: utils.NewNullableFromPtr[[]string](nil)})
	check("patch endpoint", err)
	_, err = client.Endpoint.Get(ctx, app.Id, ep.Id)
	check("get endpoint", err)
	eps, err := client.Endpoint.List(ctx, app.Id, &svix.EndpointListOptions{Order: ptr(models.ORDERING_ASCENDING)})
	check("list endpoints", err)
	if len(eps.Data) != 1 || eps.Data[0].Description != "patched" {
		t.Errorf("endpoints %+v", eps)
	}
	secret, err := client.Endpoint.GetSecret(ctx, app.Id, ep.Id)
	check("get secret", err)
	check("rotate secret", client.Endpoint.RotateSecret(ctx, app.Id, ep.Id, models.EndpointSecretRotateIn{GracePeriodSeconds: ptr(uint32(60))}, nil))
	secret2, err := client.Endpoint.GetSecret(ctx, app.Id, ep.Id)
	check("get rotated secret", err)
	if secret2.Key == secret.Key {
		t.Errorf("rotation kept the secret")
	}
	check("update headers", client.Endpoint.UpdateHeaders(ctx, app.Id, ep.Id, models.EndpointHeadersIn{Headers: map[string]string{"X-A": "a", "Authorization": "x"}}))
	check("patch headers", client.Endpoint.PatchHeaders(ctx, app.Id, ep.Id, models.EndpointHeadersPatchIn{Headers: map[string]string{"X-B": "b"}, DeleteHeaders: []string{"X-A"}}))
	hs, err := client.Endpoint.GetHeaders(ctx, app.Id, ep.Id)
	check("get headers", err)
	if len(hs.Headers) != 1 || hs.Headers["X-B"] != "b" || len(hs.Sensitive) != 1 {
		t.Errorf("headers %+v", hs)
	}

	msg, err := client.Message.Create(ctx, app.Id, models.MessageIn{EventType: "user.created", Payload: map[string]any{"id": "u1"}, EventId: ptr("evt-sdk")}, nil)
	check("create message", err)
	_, err = client.Message.Get(ctx, app.Id, "evt-sdk", nil)
	check("get message", err)
	msgs, err := client.Message.List(ctx, app.Id, &svix.MessageListOptions{EventTypes: &[]string{"user.created", "other"}, WithContent: ptr(true)})
	check("list messages", err)
	if len(msgs.Data) != 1 || msgs.Data[0].Payload["id"] != "u1" {
		t.Errorf("messages %+v", msgs)
	}

	atID := h.recordAttempt(app.Id, msg.Id, ep.Id, 503, webhook.StatusSending)
	byEp, err := client.MessageAttempt.ListByEndpoint(ctx, app.Id, ep.Id, &svix.MessageAttemptListByEndpointOptions{
		WithMsg: ptr(true), Status: ptr(models.MESSAGESTATUS_FAIL), Before: ptr(time.Now().Add(time.Hour)),
	})
	check("attempts by endpoint", err)
	if len(byEp.Data) != 1 || byEp.Data[0].Msg == nil || byEp.Data[0].ResponseStatusCode != 503 {
		t.Errorf("attempts by endpoint %+v", byEp)
	}
	byMsg, err := client.MessageAttempt.ListByMsg(ctx, app.Id, msg.Id, &svix.MessageAttemptListByMsgOptions{EndpointId: ptr("sdk-ep")})
	check("attempts by message", err)
	if len(byMsg.Data) != 1 {
		t.Errorf("attempts by message %+v", byMsg)
	}
	_, err = client.MessageAttempt.Get(ctx, app.Id, msg.Id, atID, nil)
	check("get attempt", err)
	attempted, err := client.MessageAttempt.ListAttemptedMessages(ctx, app.Id, ep.Id, nil)
	check("attempted messages", err)
	if len(attempted.Data) != 1 || attempted.Data[0].Status != models.MESSAGESTATUS_SENDING || attempted.Data[0].NextAttempt == nil {
		t.Errorf("attempted messages %+v", attempted)
	}
	dests, err := client.MessageAttempt.ListAttemptedDestinations(ctx, app.Id, msg.Id, nil)
	check("attempted destinations", err)
	if len(dests.Data) != 1 || dests.Data[0].Id != ep.Id {
		t.Errorf("destinations %+v", dests)
	}
	_, err = client.MessageAttempt.Resend(ctx, app.Id, msg.Id, ep.Id, nil)
	check("resend", err)

	stats, err := client.Endpoint.GetStats(ctx, app.Id, ep.Id, &svix.EndpointGetStatsOptions{Since: ptr(t0.Add(-time.Hour))})
	check("stats", err)
	if stats.Pending+stats.Sending != 1 {
		t.Errorf("stats %+v", stats)
	}
	rec, err := client.Endpoint.Recover(ctx, app.Id, ep.Id, models.RecoverIn{Since: t0.Add(-time.Hour)}, nil)
	check("recover", err)
	if rec.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER || rec.Status != models.BACKGROUNDTASKSTATUS_RUNNING {
		t.Errorf("recover %+v", rec)
	}
	task, err := client.BackgroundTask.Get(ctx, rec.Id)
	check("get background task", err)
	if task.Id != rec.Id || task.Task != rec.Task || task.Status != rec.Status || task.Data == nil {
		t.Errorf("background task %+v, want the recover's %+v", task, rec)
	}
	tasks, err := client.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{
		Status: ptr(models.BACKGROUNDTASKSTATUS_RUNNING), Task: ptr(models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER),
		Limit: ptr(uint64(10)), Order: ptr(models.ORDERING_DESCENDING),
	})
	check("list background tasks", err)
	if len(tasks.Data) != 1 || tasks.Data[0].Id != rec.Id || !tasks.Done {
		t.Errorf("background tasks %+v", tasks)
	}

	// Errors reach the SDK with their status.
	_, err = client.Application.Get(ctx, "nope")
	var se *svix.Error
	if !errors.As(err, &se) || se.Status() != http.StatusNotFound {
		t.Errorf("get unknown app: %v", err)
	}
	_, err = client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "ftp://x"}, nil)
	if !errors.As(err, &se) || se.Status() != http.StatusUnprocessableEntity {
		t.Errorf("bad endpoint: %v", err)
	}

	check("delete endpoint", client.Endpoint.Delete(ctx, app.Id, ep.Id))
	check("delete app", client.Application.Delete(ctx, app.Id))
}

// sdkCheck returns a check that fails t on an SDK error, with the body of
// the API's answer.
func sdkCheck(t *testing.T) func(what string, err error) {
	return func(what string, err error) {
		t.Helper()
		if err != nil {
			var se *svix.Error
			if errors.As(err, &se) {
				t.Fatalf("%s: %v: %s", what, err, se.Body())
			}
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// sdkHarness serves a harness over the store open returns and gives its
// URL and a maker of official SDK clients of it, one per bearer token.
func sdkHarness(t *testing.T, open storeOpener) (*harness, string, func(token string) *svix.Svix) {
	t.Helper()
	h := newHarnessOn(t, open)
	ts := httptest.NewServer(h.srv)
	t.Cleanup(ts.Close)
	server, _ := url.Parse(ts.URL + "/")
	return h, ts.URL, func(token string) *svix.Svix {
		t.Helper()
		c, err := svix.New(token, &svix.SvixOptions{ServerUrl: server})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// wantSDKStatus fails t unless err is an API error of status.
func wantSDKStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var se *svix.Error
	if !errors.As(err, &se) || se.Status() != status {
		t.Errorf("%s: got %v, want status %d", what, err, status)
	}
}
