package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
)

// failAt makes the endpoint fail at the given time (and leaves the clock
// there).
func (e *env) failAt(t *testing.T, ep *webhook.Endpoint, at time.Time) {
	t.Helper()
	e.clock.Set(at)
	msg := e.createMessage(t, ep.AppID, nil, ep.ID)
	e.clock.Set(at)
	e.record(t, msg, ep.ID, webhook.StatusFail, 500)
}

// disableManually disables the endpoint through UpdateEndpoint, as the API
// does.
func (e *env) disableManually(t *testing.T, ep *webhook.Endpoint) {
	t.Helper()
	upd := *e.getEndpoint(t, ep.AppID, ep.ID)
	upd.Disabled = true
	upd.DisabledAt = e.clock.Now()
	upd.DisabledWhy = webhook.DisabledManual
	if err := e.s.UpdateEndpoint(e.ctx, &upd); err != nil {
		t.Fatalf("UpdateEndpoint: %v", err)
	}
}

func testListFailingEndpoints(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	t0 := Epoch.Add(time.Hour)
	ep1 := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	healthy := e.createEndpoint(t, app.ID)
	disabled := e.createEndpoint(t, app.ID)
	ep5 := e.createEndpoint(t, other.ID)
	recovered := e.createEndpoint(t, app.ID)

	e.failAt(t, ep1, t0)
	e.failAt(t, disabled, t0)
	e.failAt(t, recovered, t0)
	e.failAt(t, ep5, t0.Add(time.Hour))
	e.failAt(t, ep2, t0.Add(24*time.Hour))
	e.clock.Advance(time.Hour)
	e.disableManually(t, disabled)
	msg := e.createMessage(t, app.ID, nil, healthy.ID, recovered.ID)
	e.record(t, msg, healthy.ID, webhook.StatusSuccess, 200)
	e.record(t, msg, recovered.ID, webhook.StatusSuccess, 200)

	for _, tc := range []struct {
		name  string
		since time.Time
		want  []*webhook.Endpoint
	}{
		{"Before", t0.Add(-time.Millisecond), nil},
		{"Inclusive", t0, []*webhook.Endpoint{ep1}},
		{"AcrossApps", t0.Add(12 * time.Hour), []*webhook.Endpoint{ep1, ep5}},
		{"All", t0.Add(48 * time.Hour), []*webhook.Endpoint{ep1, ep2, ep5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.s.ListFailingEndpoints(e.ctx, tc.since, 10)
			if err != nil {
				t.Fatalf("ListFailingEndpoints: %v", err)
			}
			var want []webhook.Endpoint
			for _, ep := range tc.want {
				want = append(want, *e.getEndpoint(t, ep.AppID, ep.ID))
			}
			if d := diff(want, got, cmpopts.SortSlices(func(a, b webhook.Endpoint) bool { return a.ID < b.ID })); d != "" {
				t.Errorf("ListFailingEndpoints(t0%+v) mismatch (-want +got):\n%s", tc.since.Sub(t0), d)
			}
		})
	}

	got, err := e.s.ListFailingEndpoints(e.ctx, t0.Add(48*time.Hour), 2)
	if err != nil {
		t.Fatalf("ListFailingEndpoints: %v", err)
	}
	ids := idsOf(got, func(ep webhook.Endpoint) string { return ep.ID })
	slices.Sort(ids)
	failing := []string{ep1.ID, ep2.ID, ep5.ID}
	if len(slices.Compact(ids)) != 2 || slices.ContainsFunc(ids, func(id string) bool { return !slices.Contains(failing, id) }) {
		t.Errorf("ListFailingEndpoints(limit 2): got %v, want 2 of %v", ids, failing)
	}
}

func testDisableEndpoint(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	t0 := Epoch.Add(time.Hour)
	newFailing := func() *webhook.Endpoint {
		ep := e.createEndpoint(t, app.ID)
		e.failAt(t, ep, t0)
		e.clock.Set(t0.Add(7 * 24 * time.Hour))
		return e.getEndpoint(t, app.ID, ep.ID)
	}
	ignoreUpdatedAt := cmpopts.IgnoreFields(webhook.Endpoint{}, "UpdatedAt")
	unchanged := func(t *testing.T, before *webhook.Endpoint) {
		t.Helper()
		if d := diff(before, e.getEndpoint(t, app.ID, before.ID), ignoreUpdatedAt); d != "" {
			t.Errorf("endpoint changed by a refused DisableEndpoint (-before +after):\n%s", d)
		}
	}

	t.Run("StillFailing", func(t *testing.T) {
		ep := newFailing()
		now := e.clock.Now()
		if err := e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, t0, now); err != nil {
			t.Fatalf("DisableEndpoint: %v", err)
		}
		want := *ep
		want.Disabled = true
		want.DisabledAt = now
		want.DisabledWhy = webhook.DisabledFailing
		if d := diff(&want, e.getEndpoint(t, app.ID, ep.ID), ignoreUpdatedAt); d != "" {
			t.Errorf("GetEndpoint after DisableEndpoint mismatch (-want +got):\n%s", d)
		}
		list, err := e.s.ListFailingEndpoints(e.ctx, now, 10)
		if err != nil {
			t.Fatalf("ListFailingEndpoints: %v", err)
		}
		for _, l := range list {
			if l.ID == ep.ID {
				t.Errorf("ListFailingEndpoints: got the disabled endpoint, want only enabled ones")
			}
		}
		disabled := e.getEndpoint(t, app.ID, ep.ID)
		wantConflict(t, "DisableEndpoint(already disabled)", e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, t0, now))
		unchanged(t, disabled)
	})

	t.Run("OtherFailingSince", func(t *testing.T) {
		ep := newFailing()
		for _, since := range []time.Time{t0.Add(time.Millisecond), t0.Add(-time.Millisecond)} {
			wantConflict(t, "DisableEndpoint(other failingSince)", e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, since, e.clock.Now()))
		}
		unchanged(t, ep)
	})

	t.Run("SucceededSince", func(t *testing.T) {
		ep := newFailing()
		msg := e.createMessage(t, app.ID, nil, ep.ID)
		e.record(t, msg, ep.ID, webhook.StatusSuccess, 200)
		ep = e.getEndpoint(t, app.ID, ep.ID)
		wantConflict(t, "DisableEndpoint(after a success)", e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, t0, e.clock.Now()))
		unchanged(t, ep)
	})

	t.Run("DisabledManually", func(t *testing.T) {
		ep := newFailing()
		e.disableManually(t, ep)
		ep = e.getEndpoint(t, app.ID, ep.ID)
		wantConflict(t, "DisableEndpoint(disabled manually)", e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, t0, e.clock.Now()))
		unchanged(t, ep)
	})

	t.Run("ReEnabled", func(t *testing.T) {
		ep := newFailing()
		e.disableManually(t, ep)
		upd := *e.getEndpoint(t, app.ID, ep.ID)
		upd.Disabled = false
		upd.DisabledAt = time.Time{}
		upd.DisabledWhy = ""
		if err := e.s.UpdateEndpoint(e.ctx, &upd); err != nil {
			t.Fatalf("UpdateEndpoint(re-enable): %v", err)
		}
		ep = e.getEndpoint(t, app.ID, ep.ID)
		if !ep.FailingSince.IsZero() {
			t.Errorf("FailingSince after re-enable: got %v, want zero", ep.FailingSince)
		}
		wantConflict(t, "DisableEndpoint(re-enabled)", e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, t0, e.clock.Now()))
		unchanged(t, ep)
	})

	t.Run("Missing", func(t *testing.T) {
		ep := newFailing()
		wantNotFound(t, "DisableEndpoint(other app)", e.s.DisableEndpoint(e.ctx, other.ID, ep.ID, t0, e.clock.Now()))
		wantNotFound(t, "DisableEndpoint(missing)", e.s.DisableEndpoint(e.ctx, app.ID, "ep_missing", t0, e.clock.Now()))
		unchanged(t, ep)
	})
}
