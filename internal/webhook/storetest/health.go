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
	read := upd.UpdatedAt
	upd.Disabled = true
	upd.DisabledAt = e.clock.Now()
	upd.DisabledWhy = webhook.DisabledManual
	upd.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateEndpoint(e.ctx, &upd, read); err != nil {
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
	unchanged := func(t *testing.T, before *webhook.Endpoint) {
		t.Helper()
		if d := diff(before, e.getEndpoint(t, app.ID, before.ID)); d != "" {
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
		want.UpdatedAt = now
		if d := diff(&want, e.getEndpoint(t, app.ID, ep.ID)); d != "" {
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
		if err := e.s.UpdateEndpoint(e.ctx, &upd, upd.UpdatedAt); err != nil {
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

// testUpdateEndpointStale checks the optimistic concurrency of
// UpdateEndpoint against the writers it races: another update, the
// sweeper's DisableEndpoint and RecordAttempt's health changes.
func testUpdateEndpointStale(t *testing.T, e *env) {
	app := e.createApp(t, "")

	t.Run("ConcurrentUpdate", func(t *testing.T) {
		ep := e.createEndpoint(t, app.ID)
		// Two writers read the endpoint; the first one's update lands in
		// the same millisecond as the read.
		first, second := *ep, *ep
		first.Keys = []webhook.SigningKey{{Key: []byte("rotated-key-0123456789")}}
		if err := e.s.UpdateEndpoint(e.ctx, &first, ep.UpdatedAt); err != nil {
			t.Fatalf("UpdateEndpoint: %v", err)
		}
		if want := ep.UpdatedAt.Add(time.Millisecond); !first.UpdatedAt.Equal(want) {
			t.Errorf("UpdatedAt after an update in the same millisecond = %v, want %v", first.UpdatedAt, want)
		}
		second.Description = "lost"
		second.UID = "lost"
		second.UpdatedAt = e.clock.Now().Add(time.Minute)
		wantStale(t, "UpdateEndpoint(stale)", e.s.UpdateEndpoint(e.ctx, &second, ep.UpdatedAt))
		if d := diff(&first, e.getEndpoint(t, app.ID, ep.ID)); d != "" {
			t.Errorf("endpoint changed by a stale UpdateEndpoint (-want +got):\n%s", d)
		}
		_, err := e.s.GetEndpoint(e.ctx, app.ID, "lost")
		wantNotFound(t, "GetEndpoint(uid of a stale update)", err)
		e.createEndpoint(t, app.ID, func(o *webhook.Endpoint) { o.UID = "lost" }) // the uid stayed free
	})

	t.Run("DisableEndpoint", func(t *testing.T) {
		ep := e.createEndpoint(t, app.ID)
		t0 := e.clock.Now()
		e.failAt(t, ep, t0)
		read := e.getEndpoint(t, app.ID, ep.ID)
		// The sweeper disables it in the millisecond the API read it.
		if err := e.s.DisableEndpoint(e.ctx, app.ID, ep.ID, t0, read.UpdatedAt); err != nil {
			t.Fatalf("DisableEndpoint: %v", err)
		}
		disabled := e.getEndpoint(t, app.ID, ep.ID)
		if want := read.UpdatedAt.Add(time.Millisecond); !disabled.UpdatedAt.Equal(want) {
			t.Errorf("UpdatedAt after DisableEndpoint in the millisecond of the last write = %v, want %v", disabled.UpdatedAt, want)
		}
		// A PATCH of the description made from the read must not
		// re-enable the endpoint.
		patch := *read
		patch.Description = "x"
		patch.UpdatedAt = e.clock.Now()
		wantStale(t, "UpdateEndpoint(read before DisableEndpoint)", e.s.UpdateEndpoint(e.ctx, &patch, read.UpdatedAt))
		if d := diff(disabled, e.getEndpoint(t, app.ID, ep.ID)); d != "" {
			t.Errorf("endpoint changed by a stale UpdateEndpoint (-want +got):\n%s", d)
		}
	})

	t.Run("RecordAttempt", func(t *testing.T) {
		ep := e.createEndpoint(t, app.ID)
		read := e.getEndpoint(t, app.ID, ep.ID)
		msg := e.createMessage(t, app.ID, nil, ep.ID)
		failedAt := e.clock.Now()
		e.record(t, msg, ep.ID, webhook.StatusFail, 500)
		failing := e.getEndpoint(t, app.ID, ep.ID)
		if !failing.UpdatedAt.Equal(read.UpdatedAt) || !failing.FailingSince.Equal(failedAt) {
			t.Errorf("after a failed attempt: UpdatedAt %v, FailingSince %v; want UpdatedAt unchanged (%v), FailingSince %v",
				failing.UpdatedAt, failing.FailingSince, read.UpdatedAt, failedAt)
		}
		// An update made from the read before the attempt lands, and
		// keeps the health the attempt recorded.
		patch := *read
		patch.Description = "x"
		patch.UpdatedAt = e.clock.Now()
		if err := e.s.UpdateEndpoint(e.ctx, &patch, read.UpdatedAt); err != nil {
			t.Fatalf("UpdateEndpoint after RecordAttempt: %v", err)
		}
		want := patch
		want.FailingSince = failedAt
		if d := diff(&want, e.getEndpoint(t, app.ID, ep.ID)); d != "" {
			t.Errorf("GetEndpoint after UpdateEndpoint (-want +got):\n%s", d)
		}
		if !patch.FailingSince.Equal(failedAt) {
			t.Errorf("UpdateEndpoint set ep.FailingSince = %v, want the stored %v", patch.FailingSince, failedAt)
		}
		e.clock.Advance(time.Minute)
		e.record(t, msg, ep.ID, webhook.StatusSuccess, 200)
		if got := e.getEndpoint(t, app.ID, ep.ID); !got.UpdatedAt.Equal(patch.UpdatedAt) || !got.FailingSince.IsZero() {
			t.Errorf("after a successful attempt: UpdatedAt %v, FailingSince %v; want UpdatedAt unchanged (%v), FailingSince zero",
				got.UpdatedAt, got.FailingSince, patch.UpdatedAt)
		}
	})
}
