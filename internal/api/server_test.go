package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthNeedsNoToken(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/api/v1/health", "/api/v1/health/", "//api/v1/health"} {
		res := h.do("GET", path, nil, "Authorization", "")
		if res.Status != http.StatusNoContent || len(res.Body) != 0 {
			t.Errorf("GET %s: %d %q, want 204 and no body", path, res.Status, res.Body)
		}
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name, header string
		want         int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"not bearer", "Basic " + testToken, http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"bearer lowercase", "bearer " + testToken, http.StatusOK},
		{"good", "Bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do("GET", "/api/v1/app", nil, "Authorization", tt.header)
			if tt.want == http.StatusUnauthorized {
				wantError(t, res, http.StatusUnauthorized, "authentication_failed")
				return
			}
			if res.Status != tt.want {
				t.Errorf("status %d, want %d", res.Status, tt.want)
			}
		})
	}
	// Unknown API paths ask for a token before saying 404.
	wantError(t, h.do("GET", "/api/v1/nope", nil, "Authorization", ""), http.StatusUnauthorized, "authentication_failed")
}

func TestPathNormalisation(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(map[string]any{"name": "a", "uid": "norm"})
	for _, path := range []string{
		"/api/v1/app/norm",
		"/api/v1/app/norm/",
		"//api/v1/app/norm",
		"//api//v1///app/norm//",
	} {
		res := h.must(http.StatusOK, "GET", path, nil)
		if got := res.JSON(t)["id"]; got != app["id"] {
			t.Errorf("GET %s: id %v, want %v", path, got, app["id"])
		}
	}
	h.must(http.StatusCreated, "POST", "//api/v1/app/", map[string]any{"name": "b"})
}

func TestUnroutedPaths(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/", http.StatusNotFound, "not_found"},
		{"GET", "/dashboard", http.StatusNotFound, "not_found"},
		{"GET", "/api/v1/nope", http.StatusNotFound, "not_found"},
		{"GET", "/api/v2/app", http.StatusNotFound, "not_found"},
		{"GET", "/api/v1/app/../event-type", http.StatusNotFound, "not_found"},
		{"DELETE", "/api/v1/app", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"POST", "/api/v1/health", http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			wantError(t, h.do(tt.method, tt.path, nil), tt.status, tt.code)
		})
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t)
	req := httptest.NewRequest("OPTIONS", "/api/v1/app", nil)
	req.Header.Set("Origin", "https://ui.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("preflight status %d, want 204", rec.Code)
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Headers": "authorization, content-type",
	} {
		if got := rec.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "PATCH") {
		t.Errorf("Allow-Methods %q lacks PATCH", rec.Header().Get("Access-Control-Allow-Methods"))
	}
	res := h.must(http.StatusOK, "GET", "/api/v1/app", nil)
	if res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET lacks Access-Control-Allow-Origin: *")
	}
}

func TestEveryNon204ResponseIsJSON(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(map[string]any{"name": "a"})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/app"},
		{"GET", "/api/v1/app/" + str(app["id"])},
		{"GET", "/api/v1/app/nope"},
		{"GET", "/api/v1/event-type"},
		{"POST", "/api/v1/app"},
	} {
		res := h.do(tc.method, tc.path, nil)
		if res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: content-type %q", tc.method, tc.path, res.Header.Get("Content-Type"))
		}
		res.JSON(t)
	}
}

func TestPanicsBecome500JSON(t *testing.T) {
	h := newHarness(t)
	h.srv.handle("GET /api/v1/test-panic", adminOnly, func(w http.ResponseWriter, r *http.Request) error {
		panic("boom")
	})
	req := httptest.NewRequest("GET", "/api/v1/test-panic", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); !strings.Contains(body, `"server_error"`) || strings.Contains(body, "boom") {
		t.Errorf("body %s: want server_error without the panic value", body)
	}
	if !strings.Contains(h.logs.String(), "boom") {
		t.Errorf("the panic was not logged")
	}
}

// TestFallbackServesEverythingOutsideTheAPI: the dashboard is mounted as
// the fallback, so one handler serves both; /api/ paths (however written)
// stay the API's.
func TestFallbackServesEverythingOutsideTheAPI(t *testing.T) {
	var got []string
	h := newHarness(t, func(c *Config) {
		c.Fallback = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
		})
	})
	tests := []struct {
		path string
		code int
	}{
		{"/", http.StatusTeapot},
		{"/app/app_1/endpoint/ep_1", http.StatusTeapot},
		{"/play/tok", http.StatusTeapot},
		{"/api/v1/app", http.StatusUnauthorized}, // the API, asking for a token
		{"//api/v1/app/", http.StatusUnauthorized},
		{"/api/v1/health", http.StatusNoContent},
		{"/a/../api/v1/app", http.StatusNotFound}, // dot segments are refused, not passed on
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "http://hookstep.test/", nil)
		req.URL.Path = tt.path
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		if rec.Code != tt.code {
			t.Errorf("GET %s: got %d, want %d", tt.path, rec.Code, tt.code)
		}
	}
	if len(got) != 3 || got[0] != "/" || got[2] != "/play/tok" {
		t.Errorf("fallback saw %v, want the three non-API paths", got)
	}
}
