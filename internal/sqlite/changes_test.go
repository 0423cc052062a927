package sqlite

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

var _ webhook.ChangeCounter = (*Store)(nil)

// TestChangesCountWhatAttemptsAndFanOutsRead: Changes moves on every
// write that could change what a held delivery's attempt or a message's
// fan-out has read (endpoints, apps, a delivery's run or status, a
// message's payload), by the time the write returns; it stays put on the
// writes that change none of it, those of the hot path (new messages,
// attempts, claims, dispatch records) and idempotency keys.
func TestChangesCountWhatAttemptsAndFanOutsRead(t *testing.T) {
	const lease = time.Minute
	// Each case prepares what its write needs and returns the write.
	tests := []struct {
		name  string
		moves bool
		write func(f *fixture) func() error
	}{
		{"CreateEndpoint", true, func(f *fixture) func() error {
			now := f.clock.Now()
			ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/new",
				Keys: []webhook.SigningKey{{Key: []byte("secret")}}, Version: 1, CreatedAt: now, UpdatedAt: now}
			return func() error { return f.s.CreateEndpoint(f.ctx, ep) }
		}},
		{"UpdateEndpoint", true, func(f *fixture) func() error {
			ep := *f.ep
			ep.URL = "https://example.com/moved"
			return func() error { return f.s.UpdateEndpoint(f.ctx, &ep, f.ep.UpdatedAt) }
		}},
		{"DeleteEndpoint", true, func(f *fixture) func() error {
			return func() error { return f.s.DeleteEndpoint(f.ctx, f.app.ID, f.ep.ID) }
		}},
		{"DisableEndpoint", true, func(f *fixture) func() error {
			failingSince := f.clock.Now()
			f.attempt(f.message(time.Hour), 1, webhook.StatusFail, failingSince.Add(time.Minute))
			return func() error {
				return f.s.DisableEndpoint(f.ctx, f.app.ID, f.ep.ID, failingSince, f.clock.Now())
			}
		}},
		{"DeleteApp", true, func(f *fixture) func() error {
			return func() error { return f.s.DeleteApp(f.ctx, f.app.ID) }
		}},
		{"UpdateApp", true, func(f *fixture) func() error {
			app := *f.app
			app.Name = "renamed"
			return func() error { return f.s.UpdateApp(f.ctx, &app, f.app.UpdatedAt) }
		}},
		{"StartRun", true, func(f *fixture) func() error {
			msg := f.message(time.Hour)
			return func() error {
				_, err := f.s.StartRun(f.ctx, msg, f.ep.ID, f.clock.Now())
				return err
			}
		}},
		{"FinishDelivery", true, func(f *fixture) func() error {
			r := f.ref(f.message(time.Hour))
			return func() error { return f.s.FinishDelivery(f.ctx, r, webhook.StatusCanceled, f.clock.Now()) }
		}},
		{"CancelDeliveries", true, func(f *fixture) func() error {
			f.message(time.Hour)
			return func() error {
				_, err := f.s.CancelDeliveries(f.ctx, f.app.ID, f.ep.ID, f.clock.Now())
				return err
			}
		}},
		{"ExpungeContent", true, func(f *fixture) func() error {
			msg := f.message(time.Hour)
			return func() error { return f.s.ExpungeContent(f.ctx, f.app.ID, msg.ID) }
		}},
		{"Redrive", true, func(f *fixture) func() error {
			r := f.ref(f.message(time.Hour))
			return func() error {
				_, err := f.s.Redrive(f.ctx, r, f.clock.Now())
				return err
			}
		}},

		{"CreateMessage", false, func(f *fixture) func() error {
			msg := f.newMessage()
			return func() error {
				return f.s.CreateMessage(f.ctx, msg, []webhook.Delivery{webhook.NewDelivery(msg, f.ep.ID)})
			}
		}},
		{"CreateMessageKeyed", false, func(f *fixture) func() error {
			msg := f.newMessage()
			claim := webhook.KeyClaim{Key: "k", ExpiresAt: f.clock.Now().Add(24 * time.Hour)}
			return func() error {
				return f.s.CreateMessageKeyed(f.ctx, msg, []webhook.Delivery{webhook.NewDelivery(msg, f.ep.ID)}, claim)
			}
		}},
		{"RecordAttempt", false, func(f *fixture) func() error {
			msg := f.message(time.Hour)
			return func() error {
				f.attempt(msg, 1, webhook.StatusFail, f.clock.Now().Add(time.Minute)) // sets failing_since too
				return nil
			}
		}},
		{"ClaimDue", false, func(f *fixture) func() error {
			f.message(time.Hour)
			return func() error {
				refs, err := f.s.ClaimDue(f.ctx, f.clock.Now(), lease, 10)
				if err == nil && len(refs) != 1 {
					t.Errorf("ClaimDue claimed %d, want the one due delivery", len(refs))
				}
				return err
			}
		}},
		{"Wait", false, func(f *fixture) func() error {
			f.message(time.Hour)
			refs, err := f.s.ClaimDue(f.ctx, f.clock.Now(), lease, 10)
			if err != nil || len(refs) != 1 {
				t.Fatalf("ClaimDue: %v, %v; want one delivery", refs, err)
			}
			claims := map[webhook.Ref]time.Time{refs[0]: f.clock.Now().Add(lease)}
			return func() error { return f.s.Wait(f.ctx, f.ep.ID, claims, f.clock.Now()) }
		}},
		{"ClaimWaiting", false, func(f *fixture) func() error {
			f.message(time.Hour)
			refs, err := f.s.ClaimDue(f.ctx, f.clock.Now(), lease, 10)
			if err != nil || len(refs) != 1 {
				t.Fatalf("ClaimDue: %v, %v; want one delivery", refs, err)
			}
			if err := f.s.Wait(f.ctx, f.ep.ID, map[webhook.Ref]time.Time{refs[0]: f.clock.Now().Add(lease)}, f.clock.Now()); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			return func() error {
				refs, err := f.s.ClaimWaiting(f.ctx, f.ep.ID, f.clock.Now(), lease, 10)
				if err == nil && len(refs) != 1 {
					t.Errorf("ClaimWaiting claimed %d, want the one waiting delivery", len(refs))
				}
				return err
			}
		}},
		{"MarkDispatched", false, func(f *fixture) func() error {
			r := f.ref(f.message(time.Hour))
			return func() error { return f.s.MarkDispatched(f.ctx, r) }
		}},
		{"MarkDispatchedBatch", false, func(f *fixture) func() error {
			refs := []webhook.Ref{f.ref(f.message(time.Hour)), f.ref(f.message(time.Hour))}
			return func() error { return f.s.MarkDispatchedBatch(f.ctx, refs) }
		}},
		{"BeginIdempotent", false, func(f *fixture) func() error {
			return func() error {
				rec, err := f.s.BeginIdempotent(f.ctx, "k", "", f.clock.Now().Add(time.Hour), f.clock.Now())
				if err == nil && rec != nil {
					t.Errorf("BeginIdempotent of a free key: got %+v, want it claimed", rec)
				}
				return err
			}
		}},
		{"FinishIdempotent", false, func(f *fixture) func() error {
			f.beginIdempotent("k")
			return func() error { return f.s.FinishIdempotent(f.ctx, "k", 200, []byte(`{}`)) }
		}},
		{"ReleaseIdempotent", false, func(f *fixture) func() error {
			f.beginIdempotent("k")
			return func() error { return f.s.ReleaseIdempotent(f.ctx, "k") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			write := tt.write(f)
			before := f.s.Changes()
			if err := write(); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			after := f.s.Changes() // read as the write returns
			if moved := after != before; moved != tt.moves {
				t.Errorf("Changes after %s: got %d from %d (moved %v), want moved %v", tt.name, after, before, moved, tt.moves)
			}
		})
	}
}

// newMessage is a message to the fixture's app, not stored.
func (f *fixture) newMessage() *webhook.Message {
	now := f.clock.Now()
	return &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: json.RawMessage(`{"n":1}`), Timestamp: now, ExpiresAt: now.Add(time.Hour),
	}
}

// beginIdempotent claims a free idempotency key.
func (f *fixture) beginIdempotent(key string) {
	f.t.Helper()
	if rec, err := f.s.BeginIdempotent(f.ctx, key, "", f.clock.Now().Add(time.Hour), f.clock.Now()); err != nil || rec != nil {
		f.t.Fatalf("BeginIdempotent(%s): %+v, %v; want it claimed", key, rec, err)
	}
}

// ref is the run 0 of msg to the fixture's endpoint.
func (f *fixture) ref(msg *webhook.Message) webhook.Ref {
	return webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: f.ep.ID}
}

// TestChangesMoveOnlyOnceTheWriteIsSeen: a reader reads Changes, then the
// store (Publish: before it lists an app's endpoints), and keeps what it
// read for as long as the count stays the same. So the count must not
// move for a write that a reader cannot see yet: what it read without
// the write would pass for current until the next change (a new
// endpoint left out of every message). Here CreateEndpoint waits for the
// write ahead of it.
func TestChangesMoveOnlyOnceTheWriteIsSeen(t *testing.T) {
	f := newFixture(t)
	g := groupFixtureOn(t, f.s)
	listed := func(id string) bool {
		t.Helper()
		page, err := f.s.ListEndpoints(f.ctx, f.app.ID, webhook.ListOptions{Limit: webhook.MaxLimit})
		if err != nil {
			t.Fatalf("ListEndpoints: %v", err)
		}
		return slices.ContainsFunc(page.Items, func(ep webhook.Endpoint) bool { return ep.ID == id })
	}
	now := f.clock.Now()
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/new",
		Keys: []webhook.SigningKey{{Key: []byte("secret")}}, Version: 1, CreatedAt: now, UpdatedAt: now}

	holder := g.hold()
	before := f.s.Changes()
	created := make(chan error, 1)
	go func() { created <- f.s.CreateEndpoint(context.Background(), ep) }()
	g.waitQueued(1)
	changes := f.s.Changes()
	if changes != before && !listed(ep.ID) {
		t.Errorf("Changes moved from %d to %d for a CreateEndpoint not committed yet: a reader at %d lists the app without it",
			before, changes, changes)
	}

	close(g.release)
	if err := <-holder; err != nil {
		t.Fatalf("holder: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	if after := f.s.Changes(); after == changes || !listed(ep.ID) {
		t.Errorf("once CreateEndpoint returned: Changes %d (was %d), endpoint listed %v; want it moved and the endpoint listed",
			after, changes, listed(ep.ID))
	}
}
