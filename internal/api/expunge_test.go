package api

import (
	"context"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
)

// TestSvixGoSDKExpungeContent drives Message.ExpungeContent through the
// official Go SDK on both stores: afterwards every view of the payload
// shows Svix's {"expired":true}, a resend is refused, the delivery log
// survives, and an unknown message is a 404.
func TestSvixGoSDKExpungeContent(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h, _, client := sdkHarness(t, open)
		sdk := client(testToken)
		ctx := context.Background()
		check := sdkCheck(t)
		expired := map[string]any{"expired": true}
		secret := map[string]any{"ssn": "123-45-6789"}

		app, err := sdk.Application.Create(ctx, models.ApplicationIn{Name: "expunge"}, nil)
		check("create app", err)
		ep, err := sdk.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/hook"}, nil)
		check("create endpoint", err)
		msg, err := sdk.Message.Create(ctx, app.Id, models.MessageIn{EventType: "user.created", EventId: ptr("evt-1"), Payload: secret}, nil)
		check("create message", err)
		kept, err := sdk.Message.Create(ctx, app.Id, models.MessageIn{EventType: "user.created", Payload: map[string]any{"n": 1.0}}, nil)
		check("create other message", err)
		attempt := h.recordAttempt(app.Id, msg.Id, ep.Id, 500, webhook.StatusFail)

		wantSDKStatus(t, "expunge unknown message", sdk.Message.ExpungeContent(ctx, app.Id, "msg_unknown"), http.StatusNotFound)
		check("expunge", sdk.Message.ExpungeContent(ctx, app.Id, "evt-1")) // by eventId, as every M route
		check("expunge again", sdk.Message.ExpungeContent(ctx, app.Id, msg.Id))

		got, err := sdk.Message.Get(ctx, app.Id, msg.Id, nil)
		check("get message", err)
		if !reflect.DeepEqual(got.Payload, expired) || got.EventType != "user.created" || got.EventId == nil || *got.EventId != "evt-1" {
			t.Errorf("get message after expunge: %+v, want payload %v and the rest kept", got, expired)
		}
		got, err = sdk.Message.Get(ctx, app.Id, msg.Id, &svix.MessageGetOptions{WithContent: ptr(false)})
		check("get message without content", err)
		if len(got.Payload) != 0 {
			t.Errorf("with_content=false: payload %v, want {}", got.Payload)
		}
		list, err := sdk.Message.List(ctx, app.Id, nil)
		check("list messages", err)
		payloads := map[string]map[string]any{}
		for _, m := range list.Data {
			payloads[m.Id] = m.Payload
		}
		if !reflect.DeepEqual(payloads, map[string]map[string]any{msg.Id: expired, kept.Id: {"n": 1.0}}) {
			t.Errorf("list messages: payloads %v, want the expunged one expired and the other kept", payloads)
		}
		msgs, err := sdk.MessageAttempt.ListAttemptedMessages(ctx, app.Id, ep.Id, nil)
		check("list attempted messages", err)
		for _, m := range msgs.Data {
			if m.Id == msg.Id && !reflect.DeepEqual(m.Payload, expired) {
				t.Errorf("attempted message %s: payload %v, want %v", m.Id, m.Payload, expired)
			}
		}

		// The delivery log survives.
		atts, err := sdk.MessageAttempt.ListByMsg(ctx, app.Id, msg.Id, nil)
		check("list attempts", err)
		if len(atts.Data) != 1 || atts.Data[0].Id != attempt {
			t.Errorf("attempts after expunge: %+v, want the one attempt %s", atts.Data, attempt)
		}
		res := h.must(http.StatusOK, "GET", "/api/v1/app/"+app.Id+"/msg/"+msg.Id+"/attempt/"+attempt+"?with_msg=true", nil).JSON(t)
		if m, _ := res["msg"].(map[string]any); m == nil || !reflect.DeepEqual(m["payload"], expired) {
			t.Errorf("attempt with_msg: msg %v, want payload %v", res["msg"], expired)
		}

		// An attempt's response body, expunged on its own.
		wantSDKStatus(t, "expunge an unknown attempt", sdk.MessageAttempt.ExpungeContent(ctx, app.Id, msg.Id, "atmpt_unknown"), http.StatusNotFound)
		check("expunge the attempt's response", sdk.MessageAttempt.ExpungeContent(ctx, app.Id, msg.Id, attempt))
		got2, err := sdk.MessageAttempt.Get(ctx, app.Id, msg.Id, attempt, nil)
		check("get the attempt", err)
		if got2.Response != "EXPUNGED" || got2.ResponseStatusCode != 500 {
			t.Errorf("attempt after its expunge: response %q, status %d; want EXPUNGED and the status kept", got2.Response, got2.ResponseStatusCode)
		}

		// Nothing left to send.
		_, err = sdk.MessageAttempt.Resend(ctx, app.Id, msg.Id, ep.Id, nil)
		wantSDKStatus(t, "resend expunged", err, http.StatusBadRequest)
		wantError(t, h.do("POST", "/api/v1/app/"+app.Id+"/msg/"+msg.Id+"/endpoint/"+ep.Id+"/resend", nil), http.StatusBadRequest, "missing_payload")
		_, err = sdk.MessageAttempt.Resend(ctx, app.Id, kept.Id, ep.Id, nil)
		check("resend the other message", err)
	})
}

// TestExpungeContentAccess: expunging is the platform's (Svix: an
// organization permission), so an app token with every capability is
// refused and the payload stays.
func TestExpungeContentAccess(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	msg := str(h.sendMessage(app, map[string]any{"payload": map[string]any{"k": "v"}})["id"])
	token := h.mint(app, nil)
	wantError(t, h.as(token, "DELETE", "/api/v1/app/"+app+"/msg/"+msg+"/content", nil), http.StatusForbidden, "insufficient access")
	got := h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/"+msg, nil).JSON(t)
	if !reflect.DeepEqual(got["payload"], map[string]any{"k": "v"}) {
		t.Errorf("payload after a refused expunge: %v", got["payload"])
	}
	h.must(http.StatusNoContent, "DELETE", "/api/v1/app/"+app+"/msg/"+msg+"/content", nil)
	wantError(t, h.do("DELETE", "/api/v1/app/nope/msg/"+msg+"/content", nil), http.StatusNotFound, "not_found")
}

// TestRetentionEndsAMessage: on both stores, a message past its
// payloadRetentionPeriod is gone from every view — the message, the
// lists, its attempts — while a message inside its retention stays.
func TestRetentionEndsAMessage(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open)
		app := str(h.createApp(map[string]any{"name": "a"})["id"])
		ep := str(h.createEndpoint(app, map[string]any{"url": "https://example.com/hook"})["id"])
		short := str(h.sendMessage(app, map[string]any{"payload": map[string]any{"k": "short"}, "payloadRetentionPeriod": 1})["id"])
		long := str(h.sendMessage(app, map[string]any{"payload": map[string]any{"k": "long"}})["id"])
		h.recordAttempt(app, short, ep, 500, webhook.StatusFail)
		keep := h.recordAttempt(app, long, ep, 200, webhook.StatusSuccess)

		h.clock.Advance(24*time.Hour + time.Millisecond)
		wantError(t, h.do("GET", "/api/v1/app/"+app+"/msg/"+short, nil), http.StatusNotFound, "not_found")
		wantError(t, h.do("GET", "/api/v1/app/"+app+"/attempt/msg/"+short, nil), http.StatusNotFound, "not_found")
		var ids []string
		for _, m := range h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg", nil).Data(t) {
			ids = append(ids, str(m["id"]))
		}
		if !slices.Equal(ids, []string{long}) {
			t.Errorf("messages after a day: %v, want only %s", ids, long)
		}
		ids = nil
		for _, a := range h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/attempt/endpoint/"+ep, nil).Data(t) {
			ids = append(ids, str(a["id"]))
		}
		if !slices.Equal(ids, []string{keep}) {
			t.Errorf("attempts after a day: %v, want only %s", ids, keep)
		}
	})
}
