package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
)

// TestTenantIsolation uses the ids (and uids, eventIds) of app B's
// resources under app A on every route: each must be 404, never another
// app's data, and nothing of B's may change.
func TestTenantIsolation(t *testing.T) {
	h := newHarness(t)
	a := str(h.createApp(map[string]any{"name": "A", "uid": "tenant-a"})["id"])
	b := str(h.createApp(map[string]any{"name": "B", "uid": "tenant-b"})["id"])
	h.createEndpoint(a, map[string]any{"uid": "a-ep"})
	bEp := h.createEndpoint(b, map[string]any{"uid": "b-ep", "headers": map[string]string{"X-B": "b"}})
	bEpID := str(bEp["id"])
	h.sendMessage(a, map[string]any{"eventId": "a-evt"})
	bMsg := str(h.sendMessage(b, map[string]any{"eventId": "b-evt"})["id"])
	bAtt := h.recordAttempt(b, bMsg, bEpID, 500, webhook.StatusSending)

	A := "/api/v1/app/" + a
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", A + "/endpoint/" + bEpID, nil},
		{"GET", A + "/endpoint/b-ep", nil},
		{"PUT", A + "/endpoint/" + bEpID, map[string]any{"url": "https://evil.example"}},
		{"PATCH", A + "/endpoint/" + bEpID, map[string]any{"url": "https://evil.example"}},
		{"PATCH", A + "/endpoint/b-ep", map[string]any{"disabled": true}},
		{"DELETE", A + "/endpoint/" + bEpID, nil},
		{"GET", A + "/endpoint/" + bEpID + "/secret", nil},
		{"POST", A + "/endpoint/" + bEpID + "/secret/rotate", map[string]any{}},
		{"GET", A + "/endpoint/" + bEpID + "/headers", nil},
		{"PUT", A + "/endpoint/" + bEpID + "/headers", map[string]any{"headers": map[string]string{}}},
		{"PATCH", A + "/endpoint/" + bEpID + "/headers", map[string]any{"headers": map[string]any{"X-B": nil}}},
		{"GET", A + "/endpoint/" + bEpID + "/stats", nil},
		{"POST", A + "/endpoint/" + bEpID + "/recover", map[string]any{"since": "2025-06-01T11:00:00Z"}},
		{"GET", A + "/endpoint/" + bEpID + "/msg", nil},
		{"GET", A + "/msg/" + bMsg, nil},
		{"GET", A + "/msg/b-evt", nil},
		{"GET", A + "/msg/" + bMsg + "/endpoint", nil},
		{"GET", A + "/msg/" + bMsg + "/attempt/" + bAtt, nil},
		{"POST", A + "/msg/" + bMsg + "/endpoint/" + bEpID + "/resend", nil},
		{"POST", A + "/msg/a-evt/endpoint/" + bEpID + "/resend", nil},
		{"GET", A + "/attempt/endpoint/" + bEpID, nil},
		{"GET", A + "/attempt/msg/" + bMsg, nil},
	}
	for _, rt := range routes {
		t.Run(rt.method+" "+strings.TrimPrefix(rt.path, A), func(t *testing.T) {
			wantError(t, h.do(rt.method, rt.path, rt.body), http.StatusNotFound, "not_found")
		})
	}

	// B is untouched.
	got := h.must(http.StatusOK, "GET", "/api/v1/app/tenant-b/endpoint/b-ep", nil).JSON(t)
	if got["url"] != "https://example.com/hook" || got["disabled"] != false {
		t.Errorf("B's endpoint changed: %v", got)
	}
	hs := h.must(http.StatusOK, "GET", "/api/v1/app/tenant-b/endpoint/b-ep/headers", nil).JSON(t)
	if hs["headers"].(map[string]any)["X-B"] != "b" {
		t.Errorf("B's headers changed: %v", hs)
	}
	if len(h.dels.resent) != 0 || len(h.dels.recovered) != 0 {
		t.Errorf("deliveries started across tenants: %v %v", h.dels.resent, h.dels.recovered)
	}
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/app/"+b+"/attempt/endpoint/"+bEpID, nil).Data(t)); n != 1 {
		t.Errorf("B's attempts: %d, want 1", n)
	}
}
