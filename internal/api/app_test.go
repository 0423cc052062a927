package api

import (
	"net/http"
	"regexp"
	"testing"
	"time"
)

var appKeys = []string{"id", "uid", "name", "metadata", "throttleRate", "rateLimit", "createdAt", "updatedAt"}

// timestampRe is RFC 3339 UTC with milliseconds.
var timestampRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestAppCreateShape(t *testing.T) {
	h := newHarness(t)
	res := h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "Acme"})
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q", ct)
	}
	app := res.JSON(t)
	wantKeys(t, "ApplicationOut", app, appKeys...)
	wantNull(t, "ApplicationOut", app, "uid", "throttleRate", "rateLimit")
	if !regexp.MustCompile(`^app_[0-9A-Za-z]{27}$`).MatchString(str(app["id"])) {
		t.Errorf("id %v is not app_ + KSUID", app["id"])
	}
	if app["name"] != "Acme" {
		t.Errorf("name %v", app["name"])
	}
	if md, ok := app["metadata"].(map[string]any); !ok || len(md) != 0 {
		t.Errorf("metadata %v, want {}", app["metadata"])
	}
	for _, k := range []string{"createdAt", "updatedAt"} {
		if !timestampRe.MatchString(str(app[k])) {
			t.Errorf("%s %v is not RFC 3339 UTC with milliseconds", k, app[k])
		}
	}
	if app["createdAt"] != "2025-06-01T12:00:00.000Z" {
		t.Errorf("createdAt %v, want the clock's time", app["createdAt"])
	}
}

func TestAppFieldNameGenerations(t *testing.T) {
	h := newHarness(t)
	for _, field := range []string{"throttleRate", "rateLimit"} {
		t.Run(field, func(t *testing.T) {
			app := h.createApp(map[string]any{"name": "a", field: 7})
			if app["throttleRate"] != 7.0 || app["rateLimit"] != 7.0 {
				t.Errorf("throttleRate %v rateLimit %v, want both 7", app["throttleRate"], app["rateLimit"])
			}
		})
	}
}

func TestAppCRUD(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(map[string]any{"name": "Acme", "uid": "acme", "metadata": map[string]string{"k": "v"}})
	id := str(app["id"])

	for _, ref := range []string{id, "acme"} {
		got := h.must(http.StatusOK, "GET", "/api/v1/app/"+ref, nil).JSON(t)
		if got["id"] != id || got["uid"] != "acme" {
			t.Errorf("GET %s: %v", ref, got)
		}
	}

	// Duplicate uid.
	wantError(t, h.do("POST", "/api/v1/app", map[string]any{"name": "x", "uid": "acme"}), http.StatusConflict, "conflict")
	// get_if_exists returns the existing app with 200.
	got := h.must(http.StatusOK, "POST", "/api/v1/app?get_if_exists=true", map[string]any{"name": "other", "uid": "acme"}).JSON(t)
	if got["id"] != id || got["name"] != "Acme" {
		t.Errorf("get_if_exists: %v", got)
	}
	h.must(http.StatusCreated, "POST", "/api/v1/app?get_if_exists=true", map[string]any{"name": "new", "uid": "fresh"})

	// PUT updates (200) ...
	h.clock.Advance(time.Minute)
	got = h.must(http.StatusOK, "PUT", "/api/v1/app/acme", map[string]any{"name": "Acme 2"}).JSON(t)
	if got["name"] != "Acme 2" || got["uid"] != "acme" || len(got["metadata"].(map[string]any)) != 0 {
		t.Errorf("PUT update: %v (want uid kept, metadata reset)", got)
	}
	if got["updatedAt"] == got["createdAt"] {
		t.Errorf("updatedAt not changed by PUT")
	}
	// ... or creates (201) when the uid is new.
	created := h.must(http.StatusCreated, "PUT", "/api/v1/app/brand-new", map[string]any{"name": "B"}).JSON(t)
	if created["uid"] != "brand-new" {
		t.Errorf("PUT create: uid %v, want brand-new", created["uid"])
	}
	// An id that does not exist cannot be created by PUT.
	wantError(t, h.do("PUT", "/api/v1/app/app_2xQ1pJ3kT9XbYbq0RkzJkYbq0Rk", map[string]any{"name": "B"}), http.StatusNotFound, "not_found")
	wantValidation(t, h.do("PUT", "/api/v1/app/other-uid", map[string]any{"name": "B", "uid": "mismatch"}), []string{"body", "uid"})

	// DELETE, then 404.
	h.must(http.StatusNoContent, "DELETE", "/api/v1/app/acme", nil)
	wantError(t, h.do("GET", "/api/v1/app/"+id, nil), http.StatusNotFound, "not_found")
	wantError(t, h.do("DELETE", "/api/v1/app/"+id, nil), http.StatusNotFound, "not_found")
}

func TestAppPatchAbsentVersusNull(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(map[string]any{"name": "Acme", "uid": "acme", "metadata": map[string]string{"k": "v"}, "throttleRate": 5})
	id := str(app["id"])

	// Absent fields are kept.
	got := h.must(http.StatusOK, "PATCH", "/api/v1/app/"+id, map[string]any{"name": "Renamed"}).JSON(t)
	if got["name"] != "Renamed" || got["uid"] != "acme" || got["throttleRate"] != 5.0 || got["metadata"].(map[string]any)["k"] != "v" {
		t.Errorf("PATCH name: %v", got)
	}
	// null clears.
	got = h.must(http.StatusOK, "PATCH", "/api/v1/app/"+id, map[string]any{"uid": nil, "rateLimit": nil, "metadata": nil}).JSON(t)
	if got["uid"] != nil || got["throttleRate"] != nil || len(got["metadata"].(map[string]any)) != 0 || got["name"] != "Renamed" {
		t.Errorf("PATCH nulls: %v", got)
	}
	// name cannot be null.
	wantValidation(t, h.do("PATCH", "/api/v1/app/"+id, map[string]any{"name": nil}), []string{"body", "name"})
	// Empty patch changes nothing.
	got = h.must(http.StatusOK, "PATCH", "/api/v1/app/"+id, map[string]any{}).JSON(t)
	if got["name"] != "Renamed" {
		t.Errorf("empty PATCH: %v", got)
	}
}
