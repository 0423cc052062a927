package api

import (
	"net/http"
	"testing"
)

var eventTypeKeys = []string{"name", "description", "archived", "deprecated", "schemas", "groupName", "featureFlags", "createdAt", "updatedAt"}

func TestEventTypeLifecycle(t *testing.T) {
	h := newHarness(t)
	schemas := map[string]any{"1": map[string]any{"type": "object"}}
	res := h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{
		"name": "user.created", "description": "A user was created", "schemas": schemas,
	})
	et := res.JSON(t)
	wantKeys(t, "EventTypeOut", et, eventTypeKeys...)
	wantNull(t, "EventTypeOut", et, "groupName", "featureFlags")
	if et["archived"] != false || et["deprecated"] != false || et["schemas"].(map[string]any)["1"] == nil {
		t.Errorf("created: %v", et)
	}

	// Duplicate → 409.
	wantError(t, h.do("POST", "/api/v1/event-type", map[string]any{"name": "user.created", "description": "x"}), http.StatusConflict, "conflict")

	got := h.must(http.StatusOK, "GET", "/api/v1/event-type/user.created", nil).JSON(t)
	if got["description"] != "A user was created" {
		t.Errorf("GET: %v", got)
	}

	// PATCH: absent kept, null cleared.
	got = h.must(http.StatusOK, "PATCH", "/api/v1/event-type/user.created", map[string]any{
		"deprecated": true, "groupName": "user", "featureFlags": []string{"beta"},
	}).JSON(t)
	if got["deprecated"] != true || got["groupName"] != "user" || got["schemas"] == nil || got["description"] != "A user was created" {
		t.Errorf("PATCH set: %v", got)
	}
	got = h.must(http.StatusOK, "PATCH", "/api/v1/event-type/user.created", map[string]any{"schemas": nil, "groupName": nil}).JSON(t)
	if got["schemas"] != nil || got["groupName"] != nil || got["deprecated"] != true {
		t.Errorf("PATCH null: %v", got)
	}

	// PUT: 200 update, 201 create.
	got = h.must(http.StatusOK, "PUT", "/api/v1/event-type/user.created", map[string]any{"description": "replaced"}).JSON(t)
	if got["description"] != "replaced" || got["deprecated"] != false || got["featureFlags"] != nil {
		t.Errorf("PUT update: %v", got)
	}
	h.must(http.StatusCreated, "PUT", "/api/v1/event-type/user.deleted", map[string]any{"description": "gone"})

	// DELETE archives: hidden from the list unless include_archived.
	h.must(http.StatusNoContent, "DELETE", "/api/v1/event-type/user.deleted", nil)
	got = h.must(http.StatusOK, "GET", "/api/v1/event-type/user.deleted", nil).JSON(t)
	if got["archived"] != true {
		t.Errorf("after DELETE: archived %v", got["archived"])
	}
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/event-type", nil).Data(t)); n != 1 {
		t.Errorf("list without archived: %d items, want 1", n)
	}
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/event-type?include_archived=true", nil).Data(t)); n != 2 {
		t.Errorf("list with archived: %d items, want 2", n)
	}

	// Creating an archived type brings it back (201).
	got = h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{"name": "user.deleted", "description": "back"}).JSON(t)
	if got["archived"] != false || got["description"] != "back" {
		t.Errorf("re-create archived: %v", got)
	}

	// expunge removes it.
	h.must(http.StatusNoContent, "DELETE", "/api/v1/event-type/user.deleted?expunge=true", nil)
	wantError(t, h.do("GET", "/api/v1/event-type/user.deleted", nil), http.StatusNotFound, "not_found")
	wantError(t, h.do("DELETE", "/api/v1/event-type/user.deleted", nil), http.StatusNotFound, "not_found")
	wantError(t, h.do("PATCH", "/api/v1/event-type/nope", map[string]any{}), http.StatusNotFound, "not_found")
}

func TestEventTypeListWithContent(t *testing.T) {
	h := newHarness(t)
	h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{
		"name": "a", "description": "a", "schemas": map[string]any{"1": map[string]any{}},
	})
	with := h.must(http.StatusOK, "GET", "/api/v1/event-type", nil).Data(t)
	without := h.must(http.StatusOK, "GET", "/api/v1/event-type?with_content=false", nil).Data(t)
	if with[0]["schemas"] == nil {
		t.Errorf("with_content default: schemas missing")
	}
	if v, ok := without[0]["schemas"]; !ok || v != nil {
		t.Errorf("with_content=false: schemas %v (present %v), want null", v, ok)
	}
}

func TestEventTypeFeatureFlagSingular(t *testing.T) {
	h := newHarness(t)
	got := h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{
		"name": "a", "description": "a", "featureFlag": "beta",
	}).JSON(t)
	if ff, _ := got["featureFlags"].([]any); len(ff) != 1 || ff[0] != "beta" {
		t.Errorf("featureFlags %v, want [beta]", got["featureFlags"])
	}
}
