package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/webhook"
)

// mint asks for an access link to app (id or uid) with the admin token and
// returns its token.
func (h *harness) mint(app string, body map[string]any) string {
	h.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	res := h.must(http.StatusOK, "POST", "/api/v1/auth/app-portal-access/"+app, body).JSON(h.t)
	token := str(res["token"])
	if !strings.HasPrefix(token, authtoken.AppPrefix) {
		h.t.Fatalf("token %q: want prefix %q", token, authtoken.AppPrefix)
	}
	return token
}

// as sends a request with an app token instead of the admin token.
func (h *harness) as(token, method, path string, body any) response {
	h.t.Helper()
	return h.do(method, path, body, "Authorization", "Bearer "+token)
}

// portalFixture is one app with an endpoint, a message and an attempt.
type portalFixture struct {
	app, uid, ep, msg, attempt string
}

func (h *harness) portalFixture(uid string) portalFixture {
	h.t.Helper()
	f := portalFixture{uid: uid}
	f.app = str(h.createApp(map[string]any{"name": uid, "uid": uid})["id"])
	f.ep = str(h.createEndpoint(f.app, map[string]any{"uid": uid + "-ep"})["id"])
	f.msg = str(h.sendMessage(f.app, map[string]any{"eventId": uid + "-evt"})["id"])
	f.attempt = h.recordAttempt(f.app, f.msg, f.ep, 500, webhook.StatusSending)
	return f
}

// portalRoute is a route of the API with what an app token needs for it:
// "view", "secret" (ViewEndpointSecret), "rotate"
// (ManageEndpointSecret), "attempts" (CreateAttempts), "manage"
// (ManageEndpoint), "admin" (never an app token) or "any" (logout).
type portalRoute struct {
	pattern string
	need    string
	// path builds the request path for an app's fixture; it may create
	// what the request consumes (an endpoint to delete).
	path func(h *harness, f portalFixture) string
	body any
}

// portalRoutes lists every route of the API, as the matrix expects it
// (the spec, written apart from the table in routes).
func portalRoutes() []portalRoute {
	A := func(f portalFixture) string { return "/api/v1/app/" + f.app }
	E := func(f portalFixture) string { return A(f) + "/endpoint/" + f.ep }
	M := func(f portalFixture) string { return A(f) + "/msg/" + f.msg }
	fixed := func(p string) func(*harness, portalFixture) string {
		return func(*harness, portalFixture) string { return p }
	}
	app := func(suffix func(portalFixture) string) func(*harness, portalFixture) string {
		return func(_ *harness, f portalFixture) string { return suffix(f) }
	}
	freshEndpoint := func(h *harness, f portalFixture) string {
		return A(f) + "/endpoint/" + str(h.createEndpoint(f.app, map[string]any{})["id"])
	}
	since := map[string]any{"since": t0.Add(-time.Hour).Format(time.RFC3339)}
	return []portalRoute{
		{"GET /api/v1/app", "admin", fixed("/api/v1/app"), nil},
		{"POST /api/v1/app", "admin", fixed("/api/v1/app"), map[string]any{"name": "x"}},
		{"GET /api/v1/app/{app_id}", "view", app(A), nil},
		{"PUT /api/v1/app/{app_id}", "admin", app(A), map[string]any{"name": "renamed"}},
		{"PATCH /api/v1/app/{app_id}", "admin", app(A), map[string]any{"name": "renamed"}},
		{"DELETE /api/v1/app/{app_id}", "admin", app(A), nil},

		{"GET /api/v1/event-type", "view", fixed("/api/v1/event-type"), nil},
		{"POST /api/v1/event-type", "admin", fixed("/api/v1/event-type"), map[string]any{"name": "x.y", "description": "d"}},
		{"GET /api/v1/event-type/{event_type_name}", "view", fixed("/api/v1/event-type/user.created"), nil},
		{"PUT /api/v1/event-type/{event_type_name}", "admin", fixed("/api/v1/event-type/user.created"), map[string]any{"description": "d"}},
		{"PATCH /api/v1/event-type/{event_type_name}", "admin", fixed("/api/v1/event-type/user.created"), map[string]any{"description": "d"}},
		{"DELETE /api/v1/event-type/{event_type_name}", "admin", fixed("/api/v1/event-type/user.created"), nil},

		{"GET /api/v1/app/{app_id}/endpoint", "view", app(func(f portalFixture) string { return A(f) + "/endpoint" }), nil},
		{"POST /api/v1/app/{app_id}/endpoint", "manage", app(func(f portalFixture) string { return A(f) + "/endpoint" }), map[string]any{"url": "https://example.com/new"}},
		{"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}", "view", app(E), nil},
		{"PUT /api/v1/app/{app_id}/endpoint/{endpoint_id}", "manage", app(E), map[string]any{"url": "https://example.com/put"}},
		{"PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}", "manage", app(E), map[string]any{"description": "patched"}},
		{"DELETE /api/v1/app/{app_id}/endpoint/{endpoint_id}", "manage", freshEndpoint, nil},
		{"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret", "secret", app(func(f portalFixture) string { return E(f) + "/secret" }), nil},
		{"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate", "rotate", app(func(f portalFixture) string { return E(f) + "/secret/rotate" }), map[string]any{}},
		{"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", "view", app(func(f portalFixture) string { return E(f) + "/headers" }), nil},
		{"PUT /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", "manage", app(func(f portalFixture) string { return E(f) + "/headers" }), map[string]any{"headers": map[string]string{"X-A": "a"}}},
		{"PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}/headers", "manage", app(func(f portalFixture) string { return E(f) + "/headers" }), map[string]any{"headers": map[string]string{"X-B": "b"}}},
		{"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/stats", "view", app(func(f portalFixture) string { return E(f) + "/stats" }), nil},
		{"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/recover", "attempts", app(func(f portalFixture) string { return E(f) + "/recover" }), since},
		{"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/msg", "view", app(func(f portalFixture) string { return E(f) + "/msg" }), nil},

		{"GET /api/v1/app/{app_id}/msg", "view", app(func(f portalFixture) string { return A(f) + "/msg" }), nil},
		{"POST /api/v1/app/{app_id}/msg", "admin", app(func(f portalFixture) string { return A(f) + "/msg" }), map[string]any{"eventType": "user.created", "payload": map[string]any{}}},
		{"GET /api/v1/app/{app_id}/msg/{msg_id}", "view", app(M), nil},
		{"PUT /api/v1/stats/usage/event-types", "admin", fixed("/api/v1/stats/usage/event-types"), nil},
		{"POST /api/v1/stats/usage/app", "admin", fixed("/api/v1/stats/usage/app"), map[string]any{"since": "2025-06-01T00:00:00Z", "until": "2025-06-02T00:00:00Z"}},
		{"DELETE /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content", "admin", app(func(f portalFixture) string { return M(f) + "/attempt/" + f.attempt + "/content" }), nil},
		{"DELETE /api/v1/app/{app_id}/msg/{msg_id}/content", "admin", app(func(f portalFixture) string { return M(f) + "/content" }), nil},
		{"GET /api/v1/app/{app_id}/msg/{msg_id}/endpoint", "view", app(func(f portalFixture) string { return M(f) + "/endpoint" }), nil},
		{"GET /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}", "view", app(func(f portalFixture) string { return M(f) + "/attempt/" + f.attempt }), nil},
		{"POST /api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend", "attempts", app(func(f portalFixture) string { return M(f) + "/endpoint/" + f.ep + "/resend" }), nil},
		{"GET /api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}", "view", app(func(f portalFixture) string { return A(f) + "/attempt/endpoint/" + f.ep }), nil},
		{"GET /api/v1/app/{app_id}/attempt/msg/{msg_id}", "view", app(func(f portalFixture) string { return A(f) + "/attempt/msg/" + f.msg }), nil},

		{"GET /api/v1/background-task", "admin", fixed("/api/v1/background-task"), nil},
		{"GET /api/v1/background-task/{task_id}", "admin", fixed("/api/v1/background-task/qtask_2x"), nil},

		// The platform's operational webhooks: never an app token's.
		{"GET /api/v1/operational-webhook/endpoint", "admin", fixed("/api/v1/operational-webhook/endpoint"), nil},
		{"POST /api/v1/operational-webhook/endpoint", "admin", fixed("/api/v1/operational-webhook/endpoint"), map[string]any{"url": "https://example.com/ops"}},
		{"GET /api/v1/operational-webhook/endpoint/{endpoint_id}", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x"), nil},
		{"PUT /api/v1/operational-webhook/endpoint/{endpoint_id}", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x"), map[string]any{"url": "https://example.com/ops"}},
		{"DELETE /api/v1/operational-webhook/endpoint/{endpoint_id}", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x"), nil},
		{"GET /api/v1/operational-webhook/endpoint/{endpoint_id}/secret", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x/secret"), nil},
		{"POST /api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x/secret/rotate"), map[string]any{}},
		{"GET /api/v1/operational-webhook/endpoint/{endpoint_id}/headers", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x/headers"), nil},
		{"PUT /api/v1/operational-webhook/endpoint/{endpoint_id}/headers", "admin", fixed("/api/v1/operational-webhook/endpoint/ep_2x/headers"), map[string]any{"headers": map[string]string{"X-A": "a"}}},

		{"POST /api/v1/auth/app-portal-access/{app_id}", "admin", app(func(f portalFixture) string { return "/api/v1/auth/app-portal-access/" + f.app }), map[string]any{}},
		{"POST /api/v1/auth/dashboard-access/{app_id}", "admin", app(func(f portalFixture) string { return "/api/v1/auth/dashboard-access/" + f.app }), nil},
		{"POST /api/v1/auth/app/{app_id}/expire-all", "admin", app(func(f portalFixture) string { return "/api/v1/auth/app/" + f.app + "/expire-all" }), map[string]any{}},
		{"POST /api/v1/auth/logout", "any", fixed("/api/v1/auth/logout"), nil},
	}
}

// TestPortalRoutesCoverEveryRoute keeps the matrix honest: every route
// the server registers is in portalRoutes, and nothing else is.
func TestPortalRoutesCoverEveryRoute(t *testing.T) {
	h := newHarness(t)
	var listed []string
	for _, rt := range portalRoutes() {
		listed = append(listed, rt.pattern)
		if _, ok := h.srv.access[rt.pattern]; !ok {
			t.Errorf("portalRoutes lists %q, which the server does not register", rt.pattern)
		}
	}
	for pattern := range h.srv.access {
		if !slices.Contains(listed, pattern) {
			t.Errorf("route %q is not in portalRoutes: say what an app token may do with it", pattern)
		}
	}
}

// TestAppTokenCapabilityMatrix calls every route with tokens of every
// capability set, read-only or not: each route answers 2xx when the
// capabilities allow it and 403 (insufficient access) when not; every
// route of another app answers 404, whatever the token may do.
func TestAppTokenCapabilityMatrix(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open)
		h.createEventType("user.created")
		a := h.portalFixture("tenant-a")
		b := h.portalFixture("tenant-b")

		all := []string{"view", "secret", "rotate", "attempts", "manage"}
		tokens := []struct {
			name    string
			body    map[string]any
			allowed []string
		}{
			{"default (all)", nil, all},
			{"ViewBase", map[string]any{"capabilities": []string{"ViewBase"}}, []string{"view"}},
			{"none listed", map[string]any{"capabilities": []string{}}, []string{"view"}},
			{"ViewEndpointSecret", map[string]any{"capabilities": []string{"ViewBase", "ViewEndpointSecret"}}, []string{"view", "secret"}},
			{"ManageEndpointSecret", map[string]any{"capabilities": []string{"ViewBase", "ManageEndpointSecret"}}, []string{"view", "secret", "rotate"}},
			{"CreateAttempts", map[string]any{"capabilities": []string{"ViewBase", "CreateAttempts"}}, []string{"view", "attempts"}},
			{"ManageEndpoint", map[string]any{"capabilities": []string{"ViewBase", "ManageEndpoint"}}, []string{"view", "secret", "rotate", "manage"}},
			{"ManageTransformations", map[string]any{"capabilities": []string{"ManageTransformations"}}, []string{"view"}},
			{"readOnly (all)", map[string]any{"readOnly": true}, []string{"view", "secret"}},
			{"readOnly ViewBase", map[string]any{"readOnly": true, "capabilities": []string{"ViewBase"}}, []string{"view"}},
			{"readOnly ManageEndpoint", map[string]any{"readOnly": true, "capabilities": []string{"ManageEndpoint"}}, []string{"view", "secret"}},
		}
		for _, tok := range tokens {
			t.Run(tok.name, func(t *testing.T) {
				h.t = t
				token := h.mint(a.uid, tok.body) // by uid: the token must hold the app's id
				for _, rt := range portalRoutes() {
					if rt.need == "any" {
						continue // logout: TestAppTokenLogout
					}
					path := rt.path(h, a)
					res := h.as(token, method(rt.pattern), path, rt.body)
					if slices.Contains(tok.allowed, rt.need) {
						if res.Status < 200 || res.Status > 299 {
							t.Errorf("%s %s: status %d, want 2xx (allowed); body %s", method(rt.pattern), path, res.Status, res.Body)
						}
					} else if res.Status != http.StatusForbidden || str(res.JSON(t)["code"]) != "insufficient access" {
						t.Errorf("%s %s: status %d, want 403 insufficient access; body %s", method(rt.pattern), path, res.Status, res.Body)
					}
					if !strings.Contains(rt.pattern, "{app_id}") {
						continue
					}
					for _, other := range []string{b.app, b.uid} {
						fb := b
						fb.app = other
						path := rt.path(h, fb)
						if res := h.as(token, method(rt.pattern), path, rt.body); res.Status != http.StatusNotFound {
							t.Errorf("other app: %s %s: status %d, want 404; body %s", method(rt.pattern), path, res.Status, res.Body)
						}
					}
				}
			})
		}
		h.t = t
		// Nothing of B's changed.
		got := h.must(http.StatusOK, "GET", "/api/v1/app/tenant-b/endpoint/tenant-b-ep", nil).JSON(t)
		if got["url"] != "https://example.com/hook" || got["description"] != "" {
			t.Errorf("B's endpoint changed: %v", got)
		}
		h.must(http.StatusOK, "GET", "/api/v1/app/"+b.app, nil)
	})
}

func method(pattern string) string {
	m, _, _ := strings.Cut(pattern, " ")
	return m
}

// TestAppTokenLife: a token dies at its expiry, at logout, and at an
// expire-all of its app or of its session (at once, or after the delay
// asked), and answers 401 from then on.
func TestAppTokenLife(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open)
		a := str(h.createApp(map[string]any{"name": "A", "uid": "life-a"})["id"])
		b := str(h.createApp(map[string]any{"name": "B", "uid": "life-b"})["id"])
		alive := func(what, token string, want bool) {
			t.Helper()
			res := h.as(token, "GET", "/api/v1/app/life-a/endpoint", nil)
			if want && res.Status != http.StatusOK {
				t.Errorf("%s: status %d, want 200 (alive); body %s", what, res.Status, res.Body)
			}
			if !want {
				wantError(t, res, http.StatusUnauthorized, "authentication_failed")
			}
		}

		short := h.mint(a, map[string]any{"expiry": 3600})
		h.clock.Advance(3599 * time.Second)
		alive("an hour's token after 3599 s", short, true)
		h.clock.Advance(time.Second)
		alive("an hour's token after 3600 s", short, false)

		out := h.mint(a, nil)
		h.must(http.StatusNoContent, "POST", "/api/v1/auth/logout", nil, "Authorization", "Bearer "+out)
		alive("a logged-out token", out, false)
		wantError(t, h.as(out, "POST", "/api/v1/auth/logout", nil), http.StatusUnauthorized, "authentication_failed")
		wantError(t, h.do("POST", "/api/v1/auth/logout", nil), http.StatusForbidden, "insufficient access")

		s1 := h.mint(a, map[string]any{"sessionId": "s1"})
		s2 := h.mint(a, map[string]any{"sessionId": "s2"})
		plain := h.mint("life-a", nil)
		other := h.mint(b, map[string]any{"sessionId": "s1"})
		h.must(http.StatusNoContent, "POST", "/api/v1/auth/app/life-a/expire-all", map[string]any{"sessionIds": []string{"s1"}})
		alive("session s1 after its expire-all", s1, false)
		alive("session s2 after s1's expire-all", s2, true)
		alive("no session after s1's expire-all", plain, true)
		if res := h.as(other, "GET", "/api/v1/app/"+b, nil); res.Status != http.StatusOK {
			t.Errorf("app B's session s1 after A's expire-all: status %d, want 200", res.Status)
		}

		h.must(http.StatusNoContent, "POST", "/api/v1/auth/app/"+a+"/expire-all", map[string]any{"expiry": 600})
		h.clock.Advance(599 * time.Second)
		alive("s2 599 s into a 600 s expire-all", s2, true)
		h.clock.Advance(time.Second)
		alive("s2 after a 600 s expire-all", s2, false)
		alive("no session after a 600 s expire-all", plain, false)
		alive("a token minted after expire-all", h.mint(a, nil), true)

		h.must(http.StatusNoContent, "POST", "/api/v1/auth/app/"+a+"/expire-all", nil)
		fresh := h.mint(a, nil)
		h.must(http.StatusNoContent, "POST", "/api/v1/auth/app/"+a+"/expire-all", map[string]any{})
		alive("expire-all without a body, at once", fresh, false)
	})
}

// TestAccessBadInput: malformed access requests get a 4xx in the Svix
// error format, never a 5xx, and mint no token.
func TestAccessBadInput(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "A", "uid": "bad-a"})["id"])
	token := h.mint(app, nil)
	P := "/api/v1/auth/app-portal-access/"
	X := "/api/v1/auth/app/bad-a/expire-all"
	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
		loc          []string // 422
		code         string   // others
	}{
		{"expiry under an hour", "POST", P + "bad-a", map[string]any{"expiry": 3599}, nil, 422, loc("body", "expiry"), ""},
		{"expiry over 7 days", "POST", P + "bad-a", map[string]any{"expiry": 604801}, nil, 422, loc("body", "expiry"), ""},
		{"negative expiry", "POST", P + "bad-a", map[string]any{"expiry": -1}, nil, 422, loc("body", "expiry"), ""},
		{"fractional expiry", "POST", P + "bad-a", `{"expiry": 3600.5}`, nil, 422, loc("body", "expiry"), ""},
		{"huge expiry", "POST", P + "bad-a", `{"expiry": 1e400}`, nil, 422, nil, ""},
		{"expiry a string", "POST", P + "bad-a", map[string]any{"expiry": "3600"}, nil, 422, loc("body", "expiry"), ""},
		{"unknown capability", "POST", P + "bad-a", map[string]any{"capabilities": []string{"ViewBase", "Root"}}, nil, 422, loc("body", "capabilities"), ""},
		{"capabilities not a list", "POST", P + "bad-a", map[string]any{"capabilities": "ViewBase"}, nil, 422, loc("body", "capabilities"), ""},
		{"capability null", "POST", P + "bad-a", `{"capabilities": [null]}`, nil, 422, loc("body", "capabilities"), ""},
		{"readOnly a string", "POST", P + "bad-a", map[string]any{"readOnly": "yes"}, nil, 422, loc("body", "readOnly"), ""},
		{"sessionId too long", "POST", P + "bad-a", map[string]any{"sessionId": strings.Repeat("s", 257)}, nil, 422, loc("body", "sessionId"), ""},
		{"bad feature flag", "POST", P + "bad-a", map[string]any{"featureFlags": []string{"a b"}}, nil, 422, loc("body", "featureFlags"), ""},
		{"not JSON", "POST", P + "bad-a", "{", nil, 422, loc("body"), ""},
		{"JSON array", "POST", P + "bad-a", "[]", nil, 422, loc("body"), ""},
		{"too large", "POST", P + "bad-a", `{"sessionId":"` + strings.Repeat("x", maxBodyBytes) + `"}`, nil, 413, nil, "payload_too_large"},
		{"unknown app", "POST", P + "nope", map[string]any{}, nil, 404, nil, "not_found"},
		{"application not an object", "POST", P + "new-app", map[string]any{"application": "x"}, nil, 422, loc("body", "application"), ""},
		{"application without a name", "POST", P + "new-app", map[string]any{"application": map[string]any{"uid": "new-app"}}, nil, 422, loc("body", "application", "name"), ""},
		{"application uid mismatch", "POST", P + "new-app", map[string]any{"application": map[string]any{"name": "n", "uid": "other"}}, nil, 422, loc("body", "application", "uid"), ""},
		{"application for an id path", "POST", P + "app_2x8Ns0l6eO6TmEuVt0fAfHBdwyq", map[string]any{"application": map[string]any{"name": "n"}}, nil, 422, loc("body", "application", "uid"), ""},
		{"dashboard access, unknown app", "POST", "/api/v1/auth/dashboard-access/nope", nil, nil, 404, nil, "not_found"},
		{"no token", "POST", P + "bad-a", map[string]any{}, []string{"Authorization", ""}, 401, nil, "authentication_failed"},
		{"a made-up app token", "POST", P + "bad-a", map[string]any{}, []string{"Authorization", "Bearer " + authtoken.AppPrefix + "x"}, 401, nil, "authentication_failed"},
		{"app token on access", "POST", P + "bad-a", map[string]any{}, []string{"Authorization", "Bearer " + token}, 403, nil, "insufficient access"},
		{"expire-all negative", "POST", X, map[string]any{"expiry": -1}, nil, 422, loc("body", "expiry"), ""},
		{"expire-all over 72 h", "POST", X, map[string]any{"expiry": 259201}, nil, 422, loc("body", "expiry"), ""},
		{"expire-all empty session", "POST", X, map[string]any{"sessionIds": []string{""}}, nil, 422, loc("body", "sessionIds"), ""},
		{"expire-all sessions not a list", "POST", X, map[string]any{"sessionIds": "s1"}, nil, 422, loc("body", "sessionIds"), ""},
		{"expire-all not JSON", "POST", X, "nope", nil, 422, loc("body"), ""},
		{"expire-all unknown app", "POST", "/api/v1/auth/app/nope/expire-all", map[string]any{}, nil, 404, nil, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do(tc.method, tc.path, tc.body, tc.headers...)
			if tc.status == 422 {
				wantValidation(t, res, tc.loc)
				return
			}
			wantError(t, res, tc.status, tc.code)
		})
	}
	// The boundaries themselves are fine; the token still works and no
	// app was created by the refused requests.
	h.mint("bad-a", map[string]any{"expiry": 3600})
	h.mint("bad-a", map[string]any{"expiry": 604800})
	h.must(http.StatusNoContent, "POST", X, map[string]any{"expiry": 259200})
	h.must(http.StatusOK, "GET", "/api/v1/app/bad-a", nil, "Authorization", "Bearer "+token)
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/app", nil).Data(t)); n != 1 {
		t.Errorf("apps: %d, want 1", n)
	}
}

// TestPortalAccessCreatesTheApp: with "application", an app that does not
// exist is created (uid from the path when the body has none), and the
// token holds its id; an existing app ignores the body.
func TestPortalAccessCreatesTheApp(t *testing.T) {
	h := newHarness(t)
	res := h.must(http.StatusOK, "POST", "/api/v1/auth/app-portal-access/acme", map[string]any{
		"application": map[string]any{"name": "Acme", "metadata": map[string]string{"k": "v"}},
	}).JSON(t)
	app := h.must(http.StatusOK, "GET", "/api/v1/app/acme", nil).JSON(t)
	if app["name"] != "Acme" || app["uid"] != "acme" {
		t.Errorf("created app %v", app)
	}
	tok, err := h.store.(webhook.AppTokenStore).GetAppToken(t.Context(), authtoken.EncodeHash(authtoken.Hash(str(res["token"]))))
	if err != nil || tok.AppID != app["id"] {
		t.Fatalf("stored token %+v, %v: want AppID %v", tok, err, app["id"])
	}
	if !slices.Equal(tok.Capabilities, webhook.Capabilities) || tok.ReadOnly || !tok.ExpiresAt.Equal(t0.Add(7*24*time.Hour)) {
		t.Errorf("default token %+v: want every capability for 7 days", tok)
	}
	// Again, with another name: the app exists, the body is ignored.
	h.must(http.StatusOK, "POST", "/api/v1/auth/app-portal-access/acme", map[string]any{
		"application":  map[string]any{"name": "Other", "uid": "acme"},
		"capabilities": []string{"CreateAttempts"}, "readOnly": true, "sessionId": "s", "featureFlags": []string{"beta", "beta"},
		"expiry": 7200,
	})
	if got := h.must(http.StatusOK, "GET", "/api/v1/app/acme", nil).JSON(t)["name"]; got != "Acme" {
		t.Errorf("app renamed to %v", got)
	}
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/app", nil).Data(t)); n != 1 {
		t.Errorf("apps: %d, want 1", n)
	}
}

// TestPortalAccessStoresTheSpec: the token is stored with what was asked.
func TestPortalAccessStoresTheSpec(t *testing.T) {
	h := newHarness(t)
	h.createApp(map[string]any{"name": "A", "uid": "spec-a"})
	token := h.mint("spec-a", map[string]any{
		"capabilities": []string{"CreateAttempts", "CreateAttempts"}, "readOnly": true, "sessionId": "sess-1",
		"featureFlags": []string{"beta", "beta", "gamma"}, "expiry": 7200,
	})
	tok, err := h.store.(webhook.AppTokenStore).GetAppToken(t.Context(), authtoken.EncodeHash(authtoken.Hash(token)))
	if err != nil {
		t.Fatal(err)
	}
	want := []webhook.Capability{webhook.CapViewBase, webhook.CapCreateAttempts}
	if !slices.Equal(tok.Capabilities, want) || !tok.ReadOnly || tok.SessionID != "sess-1" ||
		!slices.Equal(tok.FeatureFlags, []string{"beta", "gamma"}) || !tok.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("stored token %+v: want capabilities %v, read-only, session sess-1, flags [beta gamma], 2 h", tok, want)
	}
}

// TestPortalURL: the URL is the public base + /portal#key=<token>: scheme
// from TLS or X-Forwarded-Proto, host from the request, the base path from
// Config.BasePath, or Config.PublicURL instead; the token is never in the
// query, the logs, or a stored idempotent response.
func TestPortalURL(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     func(*Config)
		headers []string
		want    string
	}{
		{"plain", nil, nil, "http://hookstep.test/portal#key="},
		{"forwarded https", nil, []string{"X-Forwarded-Proto", "https, http"}, "https://hookstep.test/portal#key="},
		{"stage path", func(c *Config) { c.BasePath = func(*http.Request) string { return "/prod" } }, nil, "http://hookstep.test/prod/portal#key="},
		{"public URL", func(c *Config) { c.PublicURL = "https://hooks.example.com/" }, []string{"X-Forwarded-Proto", "http"}, "https://hooks.example.com/portal#key="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			h.createApp(map[string]any{"name": "A", "uid": "url-a"})
			for _, path := range []string{"/api/v1/auth/app-portal-access/url-a", "/api/v1/auth/dashboard-access/url-a"} {
				res := h.must(http.StatusOK, "POST", path, map[string]any{}, tc.headers...).JSON(t)
				wantKeys(t, path, res, "url", "token")
				token := str(res["token"])
				if got := str(res["url"]); got != tc.want+token {
					t.Errorf("%s: url %q, want %q", path, got, tc.want+token)
				}
				u, err := url.Parse(str(res["url"]))
				if err != nil || u.RawQuery != "" || u.Fragment != "key="+token {
					t.Errorf("url %q: want the token in the fragment only", res["url"])
				}
				if strings.Contains(h.logs.String(), token) {
					t.Errorf("the token is in the logs")
				}
			}
		})
	}
	// An idempotency key does not replay (or store) a token.
	h := newHarness(t)
	h.createApp(map[string]any{"name": "A", "uid": "idem-a"})
	first := h.must(http.StatusOK, "POST", "/api/v1/auth/app-portal-access/idem-a", map[string]any{}, "Idempotency-Key", "k1").JSON(t)
	second := h.must(http.StatusOK, "POST", "/api/v1/auth/app-portal-access/idem-a", map[string]any{}, "Idempotency-Key", "k1").JSON(t)
	if first["token"] == second["token"] {
		t.Errorf("the access link was replayed from an idempotency record")
	}
}

// TestAppTokenEventTypeFeatureFlags: an app token sees the event types
// without feature flags and those whose flags it holds; the others read
// as absent. The admin sees them all.
func TestAppTokenEventTypeFeatureFlags(t *testing.T) {
	h := newHarness(t)
	h.createApp(map[string]any{"name": "A", "uid": "ff-a"})
	h.createEventType("open.type")
	h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{"name": "beta.type", "description": "d", "featureFlags": []string{"beta"}})
	h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{"name": "both.type", "description": "d", "featureFlags": []string{"beta", "gamma"}})
	names := func(res response) []string {
		var out []string
		for _, et := range res.Data(t) {
			out = append(out, str(et["name"]))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		flags []string
		want  []string
	}{
		{"no flags", nil, []string{"open.type"}},
		{"beta", []string{"beta"}, []string{"beta.type", "open.type"}},
		{"beta and gamma", []string{"gamma", "beta"}, []string{"beta.type", "both.type", "open.type"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{}
			if tc.flags != nil {
				body["featureFlags"] = tc.flags
			}
			token := h.mint("ff-a", body)
			if got := names(h.as(token, "GET", "/api/v1/event-type", nil)); !slices.Equal(got, tc.want) {
				t.Errorf("list: got %v, want %v", got, tc.want)
			}
			for _, name := range []string{"open.type", "beta.type", "both.type"} {
				res := h.as(token, "GET", "/api/v1/event-type/"+name, nil)
				if slices.Contains(tc.want, name) {
					if res.Status != http.StatusOK {
						t.Errorf("get %s: status %d, want 200", name, res.Status)
					}
				} else {
					wantError(t, res, http.StatusNotFound, "not_found")
				}
			}
			// Paged one at a time, forwards and back, the list gives the
			// same types, and no iterator names a hidden one.
			var paged []string
			iterators := []string{}
			for path := "/api/v1/event-type?limit=1"; ; {
				res := h.as(token, "GET", path, nil)
				body := res.JSON(t)
				paged = append(paged, names(res)...)
				for _, k := range []string{"iterator", "prevIterator"} {
					if it, ok := body[k].(string); ok {
						iterators = append(iterators, it)
					}
				}
				it, _ := body["iterator"].(string)
				if body["done"] == true || it == "" {
					break
				}
				path = "/api/v1/event-type?limit=1&iterator=" + url.QueryEscape(it)
			}
			if !slices.Equal(paged, tc.want) {
				t.Errorf("paged by one: got %v, want %v", paged, tc.want)
			}
			for _, it := range iterators {
				raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(it, "~"))
				if len(raw) > 1 && !slices.Contains(tc.want, string(raw[1:])) {
					t.Errorf("iterator %s names %q, which the token may not see", it, raw[1:])
				}
			}
			// An endpoint filter of a hidden type reads as an unknown type.
			for _, name := range []string{"open.type", "beta.type", "both.type"} {
				res := h.as(token, "POST", "/api/v1/app/ff-a/endpoint", map[string]any{"url": "https://example.com/" + name, "filterTypes": []string{name}})
				if slices.Contains(tc.want, name) {
					if res.Status != http.StatusCreated {
						t.Errorf("endpoint for %s: status %d, want 201; %s", name, res.Status, res.Body)
					}
				} else {
					wantError(t, res, http.StatusUnprocessableEntity, "validation")
				}
			}
		})
	}
	if got := names(h.must(http.StatusOK, "GET", "/api/v1/event-type", nil)); len(got) != 3 {
		t.Errorf("admin list: %v, want all 3", got)
	}
}

// TestAppTokenIdempotencyScope: idempotency keys are scoped by the bearer
// token, so an app token that reuses the admin's key on the same URI runs
// its own request instead of replaying the admin's response.
func TestAppTokenIdempotencyScope(t *testing.T) {
	h := newHarness(t)
	h.createApp(map[string]any{"name": "A", "uid": "idem-scope"})
	token := h.mint("idem-scope", nil)
	path := "/api/v1/app/idem-scope/endpoint"
	admin := h.must(http.StatusCreated, "POST", path, map[string]any{"url": "https://example.com/admin"}, "Idempotency-Key", "same").JSON(t)
	res := h.do("POST", path, map[string]any{"url": "https://example.com/customer"}, "Idempotency-Key", "same", "Authorization", "Bearer "+token)
	if res.Status != http.StatusCreated {
		t.Fatalf("app token's POST: status %d, want 201; body %s", res.Status, res.Body)
	}
	if got := res.JSON(t); got["id"] == admin["id"] || got["url"] != "https://example.com/customer" {
		t.Errorf("app token got %v: the admin's response replayed (%v)", got, admin["id"])
	}
	again := h.do("POST", path, map[string]any{"url": "https://example.com/customer"}, "Idempotency-Key", "same", "Authorization", "Bearer "+token)
	if again.JSON(t)["id"] != res.JSON(t)["id"] {
		t.Errorf("the app token's own repeat was not replayed")
	}
}

// TestExpireAllThenOpenAgain: "log out everywhere, then open Webhooks
// again" on the real clock. Tokens are stamped to the millisecond, so
// without the answer waiting out the cut-off's millisecond, a link asked
// for right after expire-all could be born dead (a third of them were).
func TestExpireAllThenOpenAgain(t *testing.T) {
	clock := webhook.SystemClock{}
	h := newHarnessOn(t, func(t testing.TB, _ webhook.Clock) webhook.Store { return openSQLite(t, clock) },
		func(c *Config) { c.Clock = clock })
	app := str(h.createApp(map[string]any{"name": "A", "uid": "again"})["id"])
	for i := range 100 {
		h.must(http.StatusNoContent, "POST", "/api/v1/auth/app/again/expire-all", map[string]any{})
		token := h.mint("again", nil)
		if res := h.as(token, "GET", "/api/v1/app/"+app, nil); res.Status != http.StatusOK {
			t.Fatalf("round %d: the link asked for right after expire-all: status %d, want 200", i, res.Status)
		}
	}
}
