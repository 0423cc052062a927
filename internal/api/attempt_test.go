package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

var attemptKeys = []string{
	"id", "msgId", "endpointId", "url", "response", "responseStatusCode", "responseDurationMs",
	"status", "statusText", "triggerType", "timestamp",
}

// attemptFixture is an app with two endpoints, two messages and attempts:
// m1 → e1 failed (500) then succeeded (200); m2 → e1 failed without a
// response and is being retried; m1 → e2 canceled; m2 → e2 pending.
type attemptFixture struct {
	h                  *harness
	app, e1, e2        string
	m1, m2             string
	a500, a200, aNoRsp string
}

func newAttemptFixture(t *testing.T) attemptFixture {
	h := newHarness(t)
	f := attemptFixture{h: h}
	f.app = str(h.createApp(map[string]any{"name": "a"})["id"])
	f.e1 = str(h.createEndpoint(f.app, map[string]any{"uid": "e-one"})["id"])
	f.e2 = str(h.createEndpoint(f.app, map[string]any{})["id"])
	f.m1 = str(h.sendMessage(f.app, map[string]any{"eventType": "a.one", "eventId": "evt-1"})["id"])
	h.clock.Advance(time.Minute)
	f.m2 = str(h.sendMessage(f.app, map[string]any{"eventType": "a.two"})["id"])
	h.clock.Advance(time.Minute)
	f.a500 = h.recordAttempt(f.app, f.m1, f.e1, 500, webhook.StatusSending)
	h.clock.Advance(time.Minute)
	f.a200 = h.recordAttempt(f.app, f.m1, f.e1, 200, webhook.StatusSuccess)
	h.clock.Advance(time.Minute)
	f.aNoRsp = h.recordAttempt(f.app, f.m2, f.e1, 0, webhook.StatusSending)
	if err := h.store.FinishDelivery(context.Background(), webhook.Ref{AppID: f.app, MsgID: f.m1, EndpointID: f.e2}, webhook.StatusCanceled, h.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return f
}

func ids(data []map[string]any) []string {
	out := make([]string, len(data))
	for i, d := range data {
		out[i] = str(d["id"])
	}
	return out
}

func sameIDs(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestAttemptsByEndpoint(t *testing.T) {
	f := newAttemptFixture(t)
	h := f.h
	base := "/api/v1/app/" + f.app + "/attempt/endpoint/"
	data := h.must(http.StatusOK, "GET", base+f.e1, nil).Data(t)
	if !sameIDs(ids(data), f.aNoRsp, f.a200, f.a500) {
		t.Fatalf("attempts %v, want newest first", ids(data))
	}
	wantKeys(t, "MessageAttemptOut", data[1], attemptKeys...)
	a := data[1]
	if a["msgId"] != f.m1 || a["endpointId"] != f.e1 || a["responseStatusCode"] != 200.0 || a["status"] != 0.0 ||
		a["statusText"] != "success" || a["triggerType"] != 0.0 || a["response"] != `{"ok":true}` || a["responseDurationMs"] != 12.0 {
		t.Errorf("attempt %v", a)
	}
	if data[0]["responseStatusCode"] != 0.0 || data[0]["statusText"] != "fail" {
		t.Errorf("no-response attempt %v", data[0])
	}

	tests := []struct {
		query string
		want  []string
	}{
		{"?status=0", []string{f.a200}},
		{"?status=2", []string{f.aNoRsp, f.a500}},
		{"?status_code_class=500", []string{f.a500}},
		{"?status_code_class=0", []string{f.aNoRsp}},
		{"?event_types=a.two", []string{f.aNoRsp}},
		{"?order=ascending&limit=2", []string{f.a500, f.a200}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := ids(h.must(http.StatusOK, "GET", base+"e-one"+tt.query, nil).Data(t)); !sameIDs(got, tt.want...) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	// with_msg adds the message; with_content=false blanks the response.
	data = h.must(http.StatusOK, "GET", base+f.e1+"?with_msg=true&with_content=false", nil).Data(t)
	for _, a := range data {
		wantKeys(t, "MessageAttemptOut with msg", a, append(attemptKeys, "msg")...)
		if a["response"] != "" {
			t.Errorf("with_content=false: response %v", a["response"])
		}
		m := a["msg"].(map[string]any)
		if m["id"] != a["msgId"] || len(m["payload"].(map[string]any)) != 0 {
			t.Errorf("msg %v", m)
		}
	}
	wantError(t, h.do("GET", base+"ep_nope", nil), http.StatusNotFound, "not_found")
}

func TestAttemptsByMessage(t *testing.T) {
	f := newAttemptFixture(t)
	h := f.h
	base := "/api/v1/app/" + f.app + "/attempt/msg/"
	for _, ref := range []string{f.m1, "evt-1"} {
		if got := ids(h.must(http.StatusOK, "GET", base+ref, nil).Data(t)); !sameIDs(got, f.a200, f.a500) {
			t.Errorf("attempts of %s: %v", ref, got)
		}
	}
	if got := ids(h.must(http.StatusOK, "GET", base+f.m1+"?endpoint_id="+f.e2, nil).Data(t)); len(got) != 0 {
		t.Errorf("endpoint_id filter: %v", got)
	}
	if got := ids(h.must(http.StatusOK, "GET", base+f.m1+"?endpoint_id=e-one", nil).Data(t)); len(got) != 2 {
		t.Errorf("endpoint_id by uid: %v", got)
	}
	wantError(t, h.do("GET", base+f.m1+"?endpoint_id=no-such-uid", nil), http.StatusNotFound, "not_found")
}

func TestGetAttempt(t *testing.T) {
	f := newAttemptFixture(t)
	h := f.h
	got := h.must(http.StatusOK, "GET", "/api/v1/app/"+f.app+"/msg/"+f.m1+"/attempt/"+f.a500, nil).JSON(t)
	wantKeys(t, "MessageAttemptOut", got, attemptKeys...)
	if got["id"] != f.a500 || got["responseStatusCode"] != 500.0 || got["status"] != 2.0 {
		t.Errorf("attempt %v", got)
	}
	// An attempt of another message of the same app is not found here.
	wantError(t, h.do("GET", "/api/v1/app/"+f.app+"/msg/"+f.m2+"/attempt/"+f.a500, nil), http.StatusNotFound, "not_found")
	wantError(t, h.do("GET", "/api/v1/app/"+f.app+"/msg/"+f.m1+"/attempt/atmpt_nope", nil), http.StatusNotFound, "not_found")
}

func TestEndpointMessagesAndMessageEndpoints(t *testing.T) {
	f := newAttemptFixture(t)
	h := f.h

	// E/msg: newest first, with the delivery status.
	data := h.must(http.StatusOK, "GET", "/api/v1/app/"+f.app+"/endpoint/"+f.e1+"/msg", nil).Data(t)
	if !sameIDs(ids(data), f.m2, f.m1) {
		t.Fatalf("E/msg %v", ids(data))
	}
	wantKeys(t, "EndpointMessageOut", data[0], append(messageKeys, "status", "statusText", "nextAttempt")...)
	if data[0]["status"] != 3.0 || data[0]["statusText"] != "sending" || data[0]["nextAttempt"] != "2025-06-01T12:04:05.000Z" {
		t.Errorf("sending delivery: %v", data[0])
	}
	if data[1]["status"] != 0.0 || data[1]["nextAttempt"] != nil {
		t.Errorf("delivered message: %v", data[1])
	}
	if got := ids(h.must(http.StatusOK, "GET", "/api/v1/app/"+f.app+"/endpoint/"+f.e1+"/msg?status=0", nil).Data(t)); !sameIDs(got, f.m1) {
		t.Errorf("status=0: %v", got)
	}
	if got := ids(h.must(http.StatusOK, "GET", "/api/v1/app/"+f.app+"/endpoint/"+f.e1+"/msg?event_types=a.two", nil).Data(t)); !sameIDs(got, f.m2) {
		t.Errorf("event_types: %v", got)
	}

	// Canceled shows as fail unless expanded_statuses=true; status=2 finds
	// it. (m2 is still pending to e2.)
	e2 := "/api/v1/app/" + f.app + "/endpoint/" + f.e2 + "/msg"
	if d := h.must(http.StatusOK, "GET", e2, nil).Data(t); len(d) != 2 || d[1]["status"] != 2.0 || d[1]["statusText"] != "fail" {
		t.Errorf("canceled, not expanded: %v", d)
	}
	if d := h.must(http.StatusOK, "GET", e2+"?expanded_statuses=true", nil).Data(t); len(d) != 2 || d[1]["status"] != 4.0 || d[1]["statusText"] != "canceled" {
		t.Errorf("canceled, expanded: %v", d)
	}
	if got := ids(h.must(http.StatusOK, "GET", e2+"?status=2", nil).Data(t)); !sameIDs(got, f.m1) {
		t.Errorf("status=2 without expanded: %v", got)
	}
	if got := ids(h.must(http.StatusOK, "GET", e2+"?status=2&expanded_statuses=true", nil).Data(t)); len(got) != 0 {
		t.Errorf("status=2 expanded: %v", got)
	}
	if got := ids(h.must(http.StatusOK, "GET", e2+"?status=4&expanded_statuses=true", nil).Data(t)); !sameIDs(got, f.m1) {
		t.Errorf("status=4 expanded: %v", got)
	}

	// A/msg/{id}/endpoint: the endpoints with their delivery status.
	data = h.must(http.StatusOK, "GET", "/api/v1/app/"+f.app+"/msg/evt-1/endpoint?expanded_statuses=true", nil).Data(t)
	if !sameIDs(ids(data), f.e2, f.e1) {
		t.Fatalf("A/msg/endpoint %v", ids(data))
	}
	wantKeys(t, "MessageEndpointOut", data[0], append(endpointKeys, "status", "statusText", "nextAttempt")...)
	if data[0]["statusText"] != "canceled" || data[1]["statusText"] != "success" || data[1]["url"] != "https://example.com/hook" {
		t.Errorf("MessageEndpointOut %v", data)
	}
}
