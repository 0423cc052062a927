package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
)

// TestStoreErrorTextNeverReachesClients feeds writeError the errors a
// Store returns: their text (ids, keys) must not be in the response; the
// handlers' own errors keep theirs.
func TestStoreErrorTextNeverReachesClients(t *testing.T) {
	h := newHarness(t)
	secret := "app_3MfGZmgM7oBlspjT0d1hoJmXVbB"
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		detail string
	}{
		{"store NotFound", webhook.NotFound("app %s not found", secret), 404, "not_found", "Entity not found"},
		{"wrapped store NotFound", fmt.Errorf("sqlite: get app: %w", webhook.NotFound("app %s not found", secret)), 404, "not_found", "Entity not found"},
		{"store Conflict", webhook.Conflict("another app has uid %q", secret), 409, "conflict", "The request conflicts with the current state of the entity"},
		{"stale", fmt.Errorf("dynamo: update app %s: %w", secret, webhook.ErrStale), 409, "conflict", "The request conflicts with the current state of the entity"},
		{"handler NotFound", errNotFound("Application"), 404, "not_found", "Application not found"},
		{"handler Conflict", errUIDTaken("An application", "acme"), 409, "conflict", `An application with uid "acme" already exists`},
		{"handler BadRequest", webhook.BadRequest("limit_reached", "too many keys"), 400, "limit_reached", "too many keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.srv.writeError(rec, httptest.NewRequest("GET", "/api/v1/app/x", nil), tc.err)
			res := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
			wantError(t, res, tc.status, tc.code)
			if got := str(res.JSON(t)["detail"]); got != tc.detail {
				t.Errorf("detail %q, want %q", got, tc.detail)
			}
			if strings.Contains(string(res.Body), secret) {
				t.Errorf("response %s shows the store's text", res.Body)
			}
		})
	}
}

// TestNotFoundDetailsNameTheResource checks the handlers' 404 details, as
// Svix words them.
func TestNotFoundDetailsNameTheResource(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	msgID := webhook.NewID(webhook.PrefixMessage)
	epID := webhook.NewID(webhook.PrefixEndpoint)
	for _, tc := range []struct{ method, path, detail string }{
		{"GET", "/api/v1/app/app_3MfGZmgM7oBlspjT0d1hoJmXVbB", "Application not found"},
		{"GET", "/api/v1/app/" + app + "/endpoint/" + epID, "Endpoint not found"},
		{"PATCH", "/api/v1/app/" + app + "/endpoint/" + epID, "Endpoint not found"},
		{"GET", "/api/v1/app/" + app + "/msg/" + msgID, "Message not found"},
		{"GET", "/api/v1/event-type/nope", "Event type not found"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body any
			if tc.method == "PATCH" {
				body = map[string]any{"description": "x"}
			}
			res := h.do(tc.method, tc.path, body)
			wantError(t, res, http.StatusNotFound, "not_found")
			if got := str(res.JSON(t)["detail"]); got != tc.detail {
				t.Errorf("detail %q, want %q", got, tc.detail)
			}
		})
	}
}
