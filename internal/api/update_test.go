package api

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// racingStore is a Store that runs a hook just before an update reaches
// the real store: the moment at which another writer can slip in between
// the handler's read and its write.
type racingStore struct {
	webhook.Store

	mu sync.Mutex
	// hook runs before the next UpdateApp, UpdateEventType or
	// UpdateEndpoint, once (or before every one while keep is set).
	hook func()
	keep bool
}

// race arms the hook for the next update.
func (s *racingStore) race(hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook, s.keep = hook, false
}

// raceAlways arms the hook for every update.
func (s *racingStore) raceAlways(hook func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook, s.keep = hook, true
}

func (s *racingStore) runHook() {
	s.mu.Lock()
	hook := s.hook
	if !s.keep {
		s.hook = nil
	}
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (s *racingStore) UpdateApp(ctx context.Context, app *webhook.App, ifUpdatedAt time.Time) error {
	s.runHook()
	return s.Store.UpdateApp(ctx, app, ifUpdatedAt)
}

func (s *racingStore) UpdateEventType(ctx context.Context, et *webhook.EventType, ifUpdatedAt time.Time) error {
	s.runHook()
	return s.Store.UpdateEventType(ctx, et, ifUpdatedAt)
}

func (s *racingStore) UpdateEndpoint(ctx context.Context, ep *webhook.Endpoint, ifUpdatedAt time.Time) error {
	s.runHook()
	return s.Store.UpdateEndpoint(ctx, ep, ifUpdatedAt)
}

// newRacingHarness is a harness whose API goes through a racingStore;
// h.store is the real store underneath.
func newRacingHarness(t *testing.T) (*harness, *racingStore) {
	t.Helper()
	var rs *racingStore
	h := newHarness(t, func(c *Config) {
		rs = &racingStore{Store: c.Store}
		c.Store = rs
	})
	return h, rs
}

// TestPatchRacingTheSweeperKeepsTheEndpointDisabled is the lost update of
// a PATCH that read the endpoint before the sweeper disabled it: the
// PATCH must land without re-enabling it or clearing its failure clock.
func TestPatchRacingTheSweeperKeepsTheEndpointDisabled(t *testing.T) {
	h, rs := newRacingHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	msg := str(h.sendMessage(app, map[string]any{})["id"])
	failedAt := h.clock.Now()
	h.recordAttempt(app, msg, ep, 500, webhook.StatusSending)

	rs.race(func() {
		if err := h.store.DisableEndpoint(context.Background(), app, ep, failedAt, h.clock.Now()); err != nil {
			t.Errorf("DisableEndpoint: %v", err)
		}
	})
	got := h.must(http.StatusOK, "PATCH", "/api/v1/app/"+app+"/endpoint/"+ep, map[string]any{"description": "x"}).JSON(t)
	if got["disabled"] != true || got["description"] != "x" || got["failingSince"] == nil {
		t.Errorf("PATCH response: disabled %v, description %v, failingSince %v; want true, x, set",
			got["disabled"], got["description"], got["failingSince"])
	}
	stored, err := h.store.GetEndpoint(context.Background(), app, ep)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Disabled || stored.DisabledWhy != webhook.DisabledFailing || !stored.FailingSince.Equal(failedAt) || stored.Description != "x" {
		t.Errorf("stored: disabled %v (%s), failingSince %v, description %q; want disabled (failing) since %v, description x",
			stored.Disabled, stored.DisabledWhy, stored.FailingSince, stored.Description, failedAt)
	}
}

// TestConcurrentEndpointChangesAllLand races each endpoint update route
// against another change made between its read and its write: both
// changes must be in the stored endpoint.
func TestConcurrentEndpointChangesAllLand(t *testing.T) {
	h, rs := newRacingHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{"headers": map[string]any{"X-A": "1"}})["id"])
	path := "/api/v1/app/" + app + "/endpoint/" + ep
	secret := func() any { return h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"] }
	stored := func() *webhook.Endpoint {
		t.Helper()
		got, err := h.store.GetEndpoint(context.Background(), app, ep)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("PatchRacingRotate", func(t *testing.T) {
		before := secret()
		rs.race(func() { h.must(http.StatusNoContent, "POST", path+"/secret/rotate", map[string]any{}) })
		h.must(http.StatusOK, "PATCH", path, map[string]any{"description": "patched"})
		if got := stored(); got.Description != "patched" || len(got.Keys) != 2 {
			t.Errorf("after PATCH racing a rotation: description %q, %d keys; want patched, 2 (the new key and the old one in its grace period)",
				got.Description, len(got.Keys))
		}
		if secret() == before {
			t.Errorf("the PATCH restored the secret the rotation replaced")
		}
	})

	t.Run("RotateRacingPatch", func(t *testing.T) {
		before := secret()
		rs.race(func() { h.must(http.StatusOK, "PATCH", path, map[string]any{"metadata": map[string]any{"k": "v"}}) })
		h.must(http.StatusNoContent, "POST", path+"/secret/rotate", map[string]any{})
		if got := stored(); got.Metadata["k"] != "v" || got.Description != "patched" {
			t.Errorf("after rotation racing a PATCH: metadata %v, description %q; want k=v kept, patched", got.Metadata, got.Description)
		}
		if secret() == before {
			t.Errorf("the rotation did not land")
		}
	})

	t.Run("PatchRacingPatch", func(t *testing.T) {
		rs.race(func() { h.must(http.StatusOK, "PATCH", path, map[string]any{"channels": []string{"eu"}}) })
		h.must(http.StatusOK, "PATCH", path, map[string]any{"description": "both"})
		if got := stored(); got.Description != "both" || !slices.Equal(got.Channels, []string{"eu"}) {
			t.Errorf("after two racing PATCHes: description %q, channels %v; want both, [eu]", got.Description, got.Channels)
		}
	})

	t.Run("HeadersRacingHeaders", func(t *testing.T) {
		rs.race(func() {
			h.must(http.StatusNoContent, "PATCH", path+"/headers", map[string]any{"headers": map[string]any{"X-B": "2"}})
		})
		h.must(http.StatusNoContent, "PATCH", path+"/headers", map[string]any{"headers": map[string]any{"X-C": "3"}})
		want := map[string]string{"X-A": "1", "X-B": "2", "X-C": "3"}
		if got := stored().Headers; len(got) != len(want) || got["X-A"] != "1" || got["X-B"] != "2" || got["X-C"] != "3" {
			t.Errorf("after two racing header PATCHes: %v, want %v", got, want)
		}
	})

	t.Run("PutRacingDisable", func(t *testing.T) {
		// A PUT without "disabled" means enabled: it is a full update of
		// what it read, so re-reading and re-applying it is right.
		rs.race(func() { h.must(http.StatusOK, "PATCH", path, map[string]any{"disabled": true}) })
		h.must(http.StatusOK, "PUT", path, map[string]any{"url": "https://example.com/put"})
		if got := stored(); got.Disabled || got.URL != "https://example.com/put" {
			t.Errorf("after PUT racing a disable: disabled %v, url %s; want enabled, the PUT's url", got.Disabled, got.URL)
		}
	})

	t.Run("GivesUp", func(t *testing.T) {
		rs.raceAlways(func() {
			cur, err := h.store.GetEndpoint(context.Background(), app, ep)
			if err != nil {
				t.Errorf("GetEndpoint: %v", err)
				return
			}
			if err := h.store.UpdateEndpoint(context.Background(), cur, cur.UpdatedAt); err != nil {
				t.Errorf("UpdateEndpoint: %v", err)
			}
		})
		res := h.do("PATCH", path, map[string]any{"description": "never"})
		rs.race(nil)
		wantError(t, res, http.StatusConflict, "conflict")
		if d := str(res.JSON(t)["detail"]); d != "The endpoint is being changed concurrently; retry the request" {
			t.Errorf("detail %q", d)
		}
		if got := stored(); got.Description == "never" {
			t.Errorf("a PATCH that answered 409 was stored")
		}
	})
}

// TestConcurrentAppAndEventTypeChangesAllLand does the same for apps and
// event types, whose updates have the same read → change → write shape.
func TestConcurrentAppAndEventTypeChangesAllLand(t *testing.T) {
	h, rs := newRacingHarness(t)
	app := str(h.createApp(map[string]any{"name": "a", "uid": "acme"})["id"])
	rs.race(func() {
		h.must(http.StatusOK, "PATCH", "/api/v1/app/"+app, map[string]any{"metadata": map[string]any{"k": "v"}})
	})
	h.must(http.StatusOK, "PATCH", "/api/v1/app/acme", map[string]any{"name": "renamed"})
	got, err := h.store.GetApp(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.Metadata["k"] != "v" || got.UID != "acme" {
		t.Errorf("app after racing PATCHes: %+v; want name renamed, metadata k=v, uid acme", got)
	}

	h.createEventType("user.created")
	rs.race(func() {
		h.must(http.StatusOK, "PATCH", "/api/v1/event-type/user.created", map[string]any{"deprecated": true})
	})
	h.must(http.StatusOK, "PATCH", "/api/v1/event-type/user.created", map[string]any{"description": "new"})
	et, err := h.store.GetEventType(context.Background(), "user.created")
	if err != nil {
		t.Fatal(err)
	}
	if et.Description != "new" || !et.Deprecated {
		t.Errorf("event type after racing PATCHes: description %q, deprecated %v; want new, true", et.Description, et.Deprecated)
	}

	// Archiving races an update: both land.
	rs.race(func() {
		h.must(http.StatusOK, "PATCH", "/api/v1/event-type/user.created", map[string]any{"groupName": "user"})
	})
	h.must(http.StatusNoContent, "DELETE", "/api/v1/event-type/user.created", nil)
	if et, err = h.store.GetEventType(context.Background(), "user.created"); err != nil || !et.Archived || et.GroupName != "user" {
		t.Errorf("event type after archive racing a PATCH: %+v, %v; want archived, group user", et, err)
	}
}
