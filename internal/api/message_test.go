package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

var messageKeys = []string{"id", "eventType", "eventId", "payload", "channels", "tags", "timestamp"}

func TestMessageCreateShape(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	res := h.must(http.StatusAccepted, "POST", "/api/v1/app/"+app+"/msg",
		`{"eventType": "never.declared", "payload": {"a": "<&>", "b": 2}}`)
	msg := res.JSON(t)
	wantKeys(t, "MessageOut", msg, messageKeys...)
	wantNull(t, "MessageOut", msg, "eventId", "channels", "tags")
	if !strings.HasPrefix(str(msg["id"]), "msg_") || msg["timestamp"] != "2025-06-01T12:00:00.000Z" {
		t.Errorf("MessageOut %v", msg)
	}
	// The payload comes back as stored, without HTML escaping.
	if !strings.Contains(string(res.Body), `"payload":{"a":"<&>","b":2}`) {
		t.Errorf("payload in %s", res.Body)
	}
	stored, err := h.store.GetMessage(context.Background(), app, str(msg["id"]))
	if err != nil {
		t.Fatal(err)
	}
	if !stored.ExpiresAt.Equal(t0.Add(90 * 24 * time.Hour)) {
		t.Errorf("ExpiresAt %v, want 90 days on", stored.ExpiresAt)
	}

	// with_content=false: payload {}.
	res = h.must(http.StatusAccepted, "POST", "/api/v1/app/"+app+"/msg?with_content=false", map[string]any{
		"eventType": "x", "payload": map[string]any{"secret": 1}, "eventId": "evt-1",
		"channels": []string{"ch1"}, "tags": []string{"t1"}, "payloadRetentionPeriod": 1,
	})
	if !strings.Contains(string(res.Body), `"payload":{}`) {
		t.Errorf("with_content=false: %s", res.Body)
	}
	msg = res.JSON(t)
	if msg["eventId"] != "evt-1" || msg["channels"].([]any)[0] != "ch1" || msg["tags"].([]any)[0] != "t1" {
		t.Errorf("MessageOut %v", msg)
	}
	stored, _ = h.store.GetMessage(context.Background(), app, "evt-1")
	if stored == nil || !stored.ExpiresAt.Equal(t0.Add(24*time.Hour)) {
		t.Errorf("retention of 1 day: %+v", stored)
	}
}

func TestMessageGetByIDOrEventID(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	msg := h.sendMessage(app, map[string]any{"eventId": "order-42", "payload": map[string]any{"x": 1}})
	for _, ref := range []string{str(msg["id"]), "order-42"} {
		got := h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/"+ref, nil).JSON(t)
		if got["id"] != msg["id"] || got["payload"].(map[string]any)["x"] != 1.0 {
			t.Errorf("GET %s: %v", ref, got)
		}
	}
	got := h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/order-42?with_content=false", nil).JSON(t)
	if len(got["payload"].(map[string]any)) != 0 {
		t.Errorf("with_content=false: %v", got["payload"])
	}
	wantError(t, h.do("GET", "/api/v1/app/"+app+"/msg/nope", nil), http.StatusNotFound, "not_found")
	// eventId reuse → 409.
	wantError(t, h.do("POST", "/api/v1/app/"+app+"/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "eventId": "order-42"}),
		http.StatusConflict, "conflict")
}

func TestMessageListFilters(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	var ids []string
	for i, tc := range []struct {
		eventType string
		channels  []string
	}{
		{"a.one", nil}, {"a.two", []string{"blue"}}, {"a.one", []string{"red"}}, {"a.three", nil},
	} {
		body := map[string]any{"eventType": tc.eventType}
		if tc.channels != nil {
			body["channels"] = tc.channels
		}
		ids = append(ids, str(h.sendMessage(app, body)["id"]))
		_ = i
		h.clock.Advance(time.Minute)
	}
	base := "/api/v1/app/" + app + "/msg"
	tests := []struct {
		query string
		want  []int // indexes into ids, in response order
	}{
		{"", []int{3, 2, 1, 0}},
		{"?order=ascending", []int{0, 1, 2, 3}},
		{"?event_types=a.one", []int{2, 0}},
		{"?event_types=a.one,a.two", []int{2, 1, 0}},
		{"?event_types=a.one&event_types=a.three", []int{3, 2, 0}},
		{"?channel=red", []int{2}},
		{"?before=2025-06-01T12:02:00Z", []int{1, 0}},
		{"?after=2025-06-01T12:01:00Z", []int{3, 2}},
		{"?after=2025-06-01T12:00:30%2B00:00&before=2025-06-01T12:02:30Z", []int{2, 1}},
		{"?after=2025-06-01T12:00:30+00:00", []int{3, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			data := h.must(http.StatusOK, "GET", base+tt.query, nil).Data(t)
			var got []string
			for _, m := range data {
				got = append(got, str(m["id"]))
			}
			var want []string
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	data := h.must(http.StatusOK, "GET", base+"?with_content=false", nil).Data(t)
	if len(data[0]["payload"].(map[string]any)) != 0 {
		t.Errorf("with_content=false list: payload %v", data[0]["payload"])
	}
}

func TestMessageFanOutAndResend(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.createEventType("user.created")
	all := str(h.createEndpoint(app, map[string]any{})["id"])
	filtered := str(h.createEndpoint(app, map[string]any{"filterTypes": []string{"user.created"}})["id"])
	msg := str(h.sendMessage(app, map[string]any{"eventType": "other.type"})["id"])

	dests := h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint", nil).Data(t)
	if len(dests) != 1 || dests[0]["id"] != all {
		t.Fatalf("destinations %v, want only %s", dests, all)
	}
	// Resend skips the filter.
	res := h.must(http.StatusAccepted, "POST", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint/"+filtered+"/resend", nil)
	if string(res.Body) != "{}\n" || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("resend body %q", res.Body)
	}
	// Resend takes no body and ignores one it gets.
	h.must(http.StatusAccepted, "POST", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint/"+filtered+"/resend", "not json")
	if len(h.dels.resent) != 2 || h.dels.resent[0] != msg+" "+filtered {
		t.Errorf("resent %v", h.dels.resent)
	}
	dests = h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint", nil).Data(t)
	if len(dests) != 2 {
		t.Errorf("after resend: %d destinations, want 2", len(dests))
	}
	wantError(t, h.do("POST", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint/nope/resend", nil), http.StatusNotFound, "not_found")
}

// TestMessageCreateRacingEndpointDelete deletes an endpoint after the
// fan-out listed it and before the message is stored: the message is
// still accepted, and goes to the other endpoints.
func TestMessageCreateRacingEndpointDelete(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	kept := str(h.createEndpoint(app, map[string]any{})["id"])
	gone := str(h.createEndpoint(app, map[string]any{})["id"])
	h.dels.beforeCreate = func() {
		if err := h.store.DeleteEndpoint(context.Background(), app, gone); err != nil {
			t.Errorf("DeleteEndpoint: %v", err)
		}
	}
	msg := str(h.sendMessage(app, map[string]any{})["id"])
	h.dels.beforeCreate = nil
	h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/"+msg, nil)
	if _, err := h.store.GetDelivery(context.Background(), app, msg, kept); err != nil {
		t.Errorf("delivery to the endpoint that was not deleted: %v", err)
	}
	dests := h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint", nil).Data(t)
	if len(dests) != 1 || dests[0]["id"] != kept {
		t.Errorf("destinations: %v, want only %s", dests, kept)
	}
}

// TestMessageCreateRacingAppDelete deletes the app after the handler read
// it: a 404 with the handler's own detail, not the store's text.
func TestMessageCreateRacingAppDelete(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.dels.beforeCreate = func() {
		if err := h.store.DeleteApp(context.Background(), app); err != nil {
			t.Errorf("DeleteApp: %v", err)
		}
	}
	res := h.do("POST", "/api/v1/app/"+app+"/msg", map[string]any{"eventType": "a", "payload": map[string]any{}})
	wantError(t, res, http.StatusNotFound, "not_found")
	if d := str(res.JSON(t)["detail"]); d != "Application not found" {
		t.Errorf("detail %q, want %q", d, "Application not found")
	}
}

// TestMessageDefaultRetention: a configured retention (the stack's
// retentionDays, HOOKSTEP_RETENTION) applies to a message that names
// none; one that names its own keeps it.
func TestMessageDefaultRetention(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Retention = 30 * 24 * time.Hour })
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	for _, tt := range []struct {
		body map[string]any
		want time.Duration
	}{
		{map[string]any{"eventType": "x", "payload": map[string]any{}}, 30 * 24 * time.Hour},
		{map[string]any{"eventType": "x", "payload": map[string]any{}, "payloadRetentionPeriod": 60}, 60 * 24 * time.Hour},
		{map[string]any{"eventType": "x", "payload": map[string]any{}, "payloadRetentionHours": 2}, 2 * time.Hour},
	} {
		id := str(h.must(http.StatusAccepted, "POST", "/api/v1/app/"+app+"/msg", tt.body).JSON(t)["id"])
		stored, err := h.store.GetMessage(context.Background(), app, id)
		if err != nil || !stored.ExpiresAt.Equal(t0.Add(tt.want)) {
			t.Errorf("%v: expires %v, %v; want %v on", tt.body, stored, err, tt.want)
		}
	}
}
