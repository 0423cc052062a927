package main

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/hookstep/hookstep/internal/webhook"
)

// TestSvixSDKMessagesAndStats drives issue 15's message calls through the
// official SDK, in local mode or (HOOKSTEP_E2E_URL) against a deployment
// — functions/ runs it through the api function under the emulator: a
// message whose application creates its app, a delivered message whose
// payload is expunged (the views show {"expired":true}, its attempts stay,
// a resend is refused and sends nothing), and the app's usage stats
// counted by a background task.
func TestSvixSDKMessagesAndStats(t *testing.T) {
	ctx := context.Background()
	c := startServer(t, nil).Client
	rcv := newReceiver(t, nil)
	uid := "implicit-" + webhook.NewID("") // unique per run: a deployment keeps its data
	since := time.Now().Add(-time.Minute)

	first, err := c.Message.Create(ctx, uid, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1),
		Application: &models.ApplicationIn{Name: "Created by its first message"}}, nil)
	if err != nil {
		t.Fatalf("message creating its app: %v", err)
	}
	app, err := c.Application.Get(ctx, uid)
	if err != nil || app.Name != "Created by its first message" {
		t.Fatalf("the app the message created: %+v, %v", app, err)
	}
	if _, err := c.Message.Get(ctx, uid, first.Id, nil); err != nil {
		t.Errorf("the first message: %v", err)
	}

	ep, err := c.Endpoint.Create(ctx, uid, models.EndpointIn{Url: rcv.URL + "/hook"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := map[string]any{"type": "v1.end_user.created", "data": map[string]any{"email": "someone@example.com"}}
	msg, err := c.Message.Create(ctx, uid, models.MessageIn{EventType: "v1.end_user.created", Payload: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the message delivered", func() bool { return rcv.succeeded(msg.Id) })

	if err := c.Message.ExpungeContent(ctx, uid, msg.Id); err != nil {
		t.Fatalf("expunge: %v", err)
	}
	expired := map[string]any{"expired": true}
	got, err := c.Message.Get(ctx, uid, msg.Id, nil)
	if err != nil || !reflect.DeepEqual(got.Payload, expired) {
		t.Errorf("message after expunge: %+v, %v; want payload %v", got, err, expired)
	}
	atts, err := c.MessageAttempt.ListByMsg(ctx, uid, msg.Id, &svix.MessageAttemptListByMsgOptions{WithContent: ptr(true)})
	if err != nil || len(atts.Data) != 1 || atts.Data[0].ResponseStatusCode != http.StatusOK {
		t.Errorf("attempts after expunge: %+v, %v; want the one delivered", atts, err)
	}
	_, err = c.MessageAttempt.Resend(ctx, uid, msg.Id, ep.Id, nil)
	var se *svix.Error
	if !errors.As(err, &se) || se.Status() != http.StatusBadRequest {
		t.Errorf("resend of an expunged message: %v, want 400", err)
	}
	if n := len(rcv.of(msg.Id)); n != 1 {
		t.Errorf("the receiver got the message %d times, want once", n)
	}

	out, err := c.Statistics.AggregateAppStats(ctx, models.AppUsageStatsIn{AppIds: []string{uid}, Since: since, Until: time.Now().Add(time.Minute)}, nil)
	if err != nil {
		t.Fatalf("aggregate app stats: %v", err)
	}
	var task *models.BackgroundTaskOut
	eventually(t, 10*time.Second, "the stats task to finish", func() bool {
		task, err = c.BackgroundTask.Get(ctx, out.Id)
		return err == nil && task.Status != models.BACKGROUNDTASKSTATUS_RUNNING
	})
	want := map[string]any{"appStats": []any{map[string]any{"appId": app.Id, "appUid": uid, "messageDestinations": 1.0}}}
	if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED || !reflect.DeepEqual(task.Data, want) {
		t.Errorf("stats task: %s %v, want finished with %v", task.Status, task.Data, want)
	}
}
