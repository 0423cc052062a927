package delivery_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
)

// watched is the SQLite store, a webhook.ChangeCounter, counting the
// calls that Publish and a held delivery's attempt spare while the store
// has not changed.
type watched struct {
	*sqlite.Store
	loadRuns int // LoadRun
	lists    int // ListEndpoints
	marks    int // MarkDispatched and MarkDispatchedBatch
}

var _ webhook.ChangeCounter = (*watched)(nil)

func (w *watched) LoadRun(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	w.loadRuns++
	return w.Store.LoadRun(ctx, ref)
}

func (w *watched) ListEndpoints(ctx context.Context, appID string, opts webhook.ListOptions) (webhook.Page[webhook.Endpoint], error) {
	w.lists++
	return w.Store.ListEndpoints(ctx, appID, opts)
}

func (w *watched) MarkDispatched(ctx context.Context, ref webhook.Ref) error {
	w.marks++
	return w.Store.MarkDispatched(ctx, ref)
}

func (w *watched) MarkDispatchedBatch(ctx context.Context, refs []webhook.Ref) error {
	w.marks++
	return w.Store.MarkDispatchedBatch(ctx, refs)
}

// uncounted is a store that does not count its changes: it hides the
// Changes of the store it wraps.
type uncounted struct {
	webhook.Store
}

// watch makes the fixture's service use the store through a watched.
func (f *fixture) watch() *watched {
	w := &watched{Store: f.store}
	f.svc.Store = w
	return w
}

// heldOne publishes a message to a holder with room and returns what
// Publish handed over for its one delivery.
func (f *fixture) heldOne(t *testing.T, h *holder) (*webhook.Message, webhook.Loaded) {
	t.Helper()
	msg := f.publish(t, "v1.end_user.created")
	if len(h.takes) == 0 || len(h.takes[len(h.takes)-1]) != 1 {
		t.Fatalf("takes %v, want the last one of one delivery", h.takes)
	}
	return msg, h.takes[len(h.takes)-1][0]
}

// attemptHeld makes the attempt of a held delivery, as the local queue
// does.
func (f *fixture) attemptHeld(t *testing.T, held webhook.Loaded) {
	t.Helper()
	if _, err := f.svc.AttemptNext(context.Background(), held.Delivery.Ref(), &held); err != nil {
		t.Fatal(err)
	}
}

// TestHeldDeliveryStandsWhileTheStoreHasNotChanged: over a store that
// counts its changes, a held delivery attempted long after Publish (ten
// times Fresh) sends with what Publish read, without reading the store,
// when nothing but the hot path's writes (new messages, attempts, claims)
// happened in between.
func TestHeldDeliveryStandsWhileTheStoreHasNotChanged(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 500, 200) // the other message's attempt fails, the held one's succeeds
	h := &holder{room: 8, lease: 45 * time.Second}
	f.svc.Dispatcher = h
	w := f.watch()
	ep := f.endpoint(t, nil)

	msg, held := f.heldOne(t, h)
	if got, want := held.Changes, f.store.Changes(); got != want {
		t.Fatalf("held delivery's Changes: got %d, want the store's %d", got, want)
	}
	f.clock.Advance(10 * time.Second)
	// Meanwhile: another message, its failed attempt (a retry scheduled
	// in 5 s, the endpoint failing since), the claim of that retry (the
	// held delivery's claim lasts 35 s more).
	_, other := f.heldOne(t, h)
	f.attemptHeld(t, other)
	if refs, err := f.store.ClaimDue(ctx, f.clock.Now().Add(5*time.Second), time.Minute, 10); err != nil || len(refs) != 1 || refs[0] != other.Delivery.Ref() {
		t.Fatalf("ClaimDue: %v, %v; want the other message's retry", refs, err)
	}

	f.attemptHeld(t, held)
	if w.loadRuns != 0 {
		t.Errorf("LoadRun calls: got %d, want 0 (the store has not changed since Publish)", w.loadRuns)
	}
	if len(f.post.requests) != 2 || f.post.requests[1].URL != ep.URL || string(f.post.requests[1].Body) != string(msg.Payload) {
		t.Fatalf("requests %+v, want the second a POST of the payload to %s", f.post.requests, ep.URL)
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusSuccess || d.Attempts != 1 {
		t.Errorf("held delivery after its attempt: %s after %d attempts, want success after 1", d.Status, d.Attempts)
	}
}

// TestHeldDeliveryIsReadAgainOnceTheStoreChanged: a change to the store
// between Publish and a held delivery's attempt, even within Fresh, makes
// the attempt read again and act on what is stored now.
func TestHeldDeliveryIsReadAgainOnceTheStoreChanged(t *testing.T) {
	const moved = "https://moved.receiver.invalid/hook"
	tests := []struct {
		name    string
		change  func(t *testing.T, f *fixture, ep *webhook.Endpoint, msg *webhook.Message)
		posts   []string       // the URLs posted to
		status  webhook.Status // of the delivery afterwards, unless deleted
		deleted bool
	}{
		{"new URL", func(t *testing.T, f *fixture, ep *webhook.Endpoint, _ *webhook.Message) {
			upd := *ep
			upd.URL = moved
			if err := f.store.UpdateEndpoint(context.Background(), &upd, ep.UpdatedAt); err != nil {
				t.Fatal(err)
			}
		}, []string{moved}, webhook.StatusSuccess, false},
		{"endpoint disabled", func(t *testing.T, f *fixture, ep *webhook.Endpoint, _ *webhook.Message) {
			upd := *ep
			upd.Disabled = true
			if err := f.store.UpdateEndpoint(context.Background(), &upd, ep.UpdatedAt); err != nil {
				t.Fatal(err)
			}
		}, nil, webhook.StatusCanceled, false},
		{"endpoint deleted", func(t *testing.T, f *fixture, ep *webhook.Endpoint, _ *webhook.Message) {
			if err := f.store.DeleteEndpoint(context.Background(), ep.AppID, ep.ID); err != nil {
				t.Fatal(err)
			}
		}, nil, 0, true},
		{"payload expunged", func(t *testing.T, f *fixture, _ *webhook.Endpoint, msg *webhook.Message) {
			if err := f.store.ExpungeContent(context.Background(), msg.AppID, msg.ID); err != nil {
				t.Fatal(err)
			}
		}, nil, webhook.StatusCanceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := &holder{room: 8, lease: 45 * time.Second}
			f.svc.Dispatcher = h
			w := f.watch()
			ep := f.endpoint(t, nil)
			msg, held := f.heldOne(t, h)

			f.clock.Advance(time.Millisecond)
			tt.change(t, f, ep, msg)
			f.attemptHeld(t, held)

			if w.loadRuns != 1 {
				t.Errorf("LoadRun calls: got %d, want 1 (the store changed since Publish)", w.loadRuns)
			}
			var urls []string
			for _, r := range f.post.requests {
				urls = append(urls, r.URL)
			}
			if !slices.Equal(urls, tt.posts) {
				t.Errorf("posted to %v, want %v", urls, tt.posts)
			}
			f.wantDelivery(t, msg.ID, ep.ID, tt.deleted, tt.status)
		})
	}
}

// TestHeldDeliveryWithoutAChangeCounterStandsForFresh: over a store that
// does not count its changes, what Publish read stands for Fresh, and is
// read again after.
func TestHeldDeliveryWithoutAChangeCounterStandsForFresh(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		reads int
	}{
		{"within Fresh", delivery.Fresh, 0},
		{"past Fresh", delivery.Fresh + time.Millisecond, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			h := &holder{room: 8, lease: 45 * time.Second}
			f.svc.Dispatcher = h
			w := &watched{Store: f.store}
			f.svc.Store = uncounted{w}
			ep := f.endpoint(t, nil)
			msg, held := f.heldOne(t, h)

			f.clock.Advance(tt.after)
			f.attemptHeld(t, held)
			if w.loadRuns != tt.reads {
				t.Errorf("LoadRun calls %s after Publish: got %d, want %d", tt.after, w.loadRuns, tt.reads)
			}
			if len(f.post.requests) != 1 || f.post.requests[0].URL != ep.URL {
				t.Errorf("requests %+v, want one POST to %s", f.post.requests, ep.URL)
			}
			if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusSuccess {
				t.Errorf("delivery status: got %v, want success", d.Status)
			}
		})
	}
}

// TestFanOutKeepsTheEndpointsWhileTheStoreHasNotChanged: over a store
// that counts its changes, Publish lists an app's endpoints once for as
// long as the store has not changed, and again once it has: the next
// message then goes to the endpoints as they are now.
func TestFanOutKeepsTheEndpointsWhileTheStoreHasNotChanged(t *testing.T) {
	ctx := context.Background()
	// between runs between the two messages and returns the endpoints
	// the second goes to, of a and b and those it created.
	tests := []struct {
		name    string
		between func(t *testing.T, f *fixture, a, b *webhook.Endpoint) (all, want []*webhook.Endpoint)
		lists   int // ListEndpoints calls, over both messages
	}{
		{"no change", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			return []*webhook.Endpoint{a, b}, []*webhook.Endpoint{a, b}
		}, 1},
		{"an attempt", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			ref := webhook.Ref{AppID: f.app.ID, MsgID: f.disp.refs[0].MsgID, EndpointID: a.ID}
			if res, err := f.svc.Attempt(ctx, ref); err != nil || res.Outcome != delivery.Delivered {
				t.Fatalf("Attempt: %+v, %v; want delivered", res, err)
			}
			return []*webhook.Endpoint{a, b}, []*webhook.Endpoint{a, b}
		}, 1},
		{"another app's message", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "other", CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now()}
			if err := f.store.CreateApp(ctx, app); err != nil {
				t.Fatal(err)
			}
			ep := f.endpoint(t, func(e *webhook.Endpoint) { e.AppID = app.ID })
			// Both writes changed the store: the app's message lists
			// once, after them, as will the next of the first app.
			msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: app.ID, EventType: "v1.end_user.created",
				Payload: []byte(`{}`), Timestamp: f.clock.Now(), ExpiresAt: f.clock.Now().Add(time.Hour)}
			if err := f.svc.Publish(ctx, msg); err != nil {
				t.Fatal(err)
			}
			for _, e := range []*webhook.Endpoint{ep, a, b} {
				_, err := f.store.GetDelivery(ctx, e.AppID, msg.ID, e.ID)
				if want := e == ep; want != (err == nil) {
					t.Errorf("the other app's message to endpoint %s: err %v, want a delivery %v", e.ID, err, want)
				}
			}
			return []*webhook.Endpoint{a, b}, []*webhook.Endpoint{a, b}
		}, 3},
		{"endpoint created", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			c := f.endpoint(t, nil)
			return []*webhook.Endpoint{a, b, c}, []*webhook.Endpoint{a, b, c}
		}, 2},
		{"endpoint disabled", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			upd := *b
			upd.Disabled = true
			if err := f.store.UpdateEndpoint(ctx, &upd, b.UpdatedAt); err != nil {
				t.Fatal(err)
			}
			return []*webhook.Endpoint{a, b}, []*webhook.Endpoint{a}
		}, 2},
		{"endpoint filters the type out", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			upd := *b
			upd.FilterTypes = []string{"v1.conversation.ended"}
			if err := f.store.UpdateEndpoint(ctx, &upd, b.UpdatedAt); err != nil {
				t.Fatal(err)
			}
			return []*webhook.Endpoint{a, b}, []*webhook.Endpoint{a}
		}, 2},
		{"endpoint deleted", func(t *testing.T, f *fixture, a, b *webhook.Endpoint) ([]*webhook.Endpoint, []*webhook.Endpoint) {
			if err := f.store.DeleteEndpoint(ctx, b.AppID, b.ID); err != nil {
				t.Fatal(err)
			}
			return []*webhook.Endpoint{a, b}, []*webhook.Endpoint{a}
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, b := f.endpoint(t, nil), f.endpoint(t, nil)
			w := f.watch()
			first := f.publish(t, "v1.end_user.created")
			for _, ep := range []*webhook.Endpoint{a, b} {
				f.delivery(t, first.ID, ep.ID)
			}
			all, want := tt.between(t, f, a, b)
			second := f.publish(t, "v1.end_user.created")

			if w.lists != tt.lists {
				t.Errorf("ListEndpoints calls: got %d, want %d", w.lists, tt.lists)
			}
			for _, ep := range all {
				_, err := f.store.GetDelivery(ctx, f.app.ID, second.ID, ep.ID)
				if want := slices.Contains(want, ep); want != (err == nil) {
					t.Errorf("second message to endpoint %s: err %v, want a delivery %v", ep.ID, err, want)
				}
			}
		})
	}

	t.Run("without a ChangeCounter", func(t *testing.T) {
		f := newFixture(t)
		ep := f.endpoint(t, nil)
		w := &watched{Store: f.store}
		f.svc.Store = uncounted{w}
		for range 2 {
			msg := f.publish(t, "v1.end_user.created")
			f.delivery(t, msg.ID, ep.ID)
		}
		if w.lists != 2 {
			t.Errorf("ListEndpoints calls: got %d, want 2 (one per message)", w.lists)
		}
	})
}

// poller is a delivery.Polling dispatcher that holds nothing (the local
// queue without room to hold).
type poller struct{ dispatcher }

func (*poller) Polls() {}

// holdingPoller is a delivery.Polling dispatcher that is a Holder too,
// as the local queue is.
type holdingPoller struct{ holder }

func (*holdingPoller) Polls() {}

var (
	_ delivery.Polling = (*poller)(nil)
	_ delivery.Polling = (*holdingPoller)(nil)
	_ delivery.Holder  = (*holdingPoller)(nil)
)

// TestPublishToAPollingDispatcher: a dispatcher that polls the store
// (delivery.Polling) gets the deliveries it did not hold stored due and
// dispatched, and one Dispatch call that wakes it, with no write to
// record the dispatch; any other still has the dispatch recorded
// (MarkDispatchedBatch).
func TestPublishToAPollingDispatcher(t *testing.T) {
	tests := []struct {
		name  string
		disp  func() (webhook.Dispatcher, *dispatcher)
		calls int // Dispatch calls
		marks int // MarkDispatched and MarkDispatchedBatch calls
		held  bool
	}{
		{"polling, no holder", func() (webhook.Dispatcher, *dispatcher) {
			p := &poller{}
			return p, &p.dispatcher
		}, 1, 0, false},
		{"polling, holder without room", func() (webhook.Dispatcher, *dispatcher) {
			p := &holdingPoller{holder{room: 0, lease: 45 * time.Second}}
			return p, &p.dispatcher
		}, 1, 0, false},
		{"polling, holder with room", func() (webhook.Dispatcher, *dispatcher) {
			p := &holdingPoller{holder{room: 8, lease: 45 * time.Second}}
			return p, &p.dispatcher
		}, 0, 0, true},
		{"not polling", func() (webhook.Dispatcher, *dispatcher) {
			d := &dispatcher{}
			return d, d
		}, 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			var disp *dispatcher
			f.svc.Dispatcher, disp = tt.disp()
			w := f.watch()
			eps := []*webhook.Endpoint{f.endpoint(t, nil), f.endpoint(t, nil)}

			msg := f.publish(t, "v1.end_user.created")
			if disp.calls != tt.calls || w.marks != tt.marks {
				t.Errorf("Dispatch calls %d and dispatch records %d, want %d and %d", disp.calls, w.marks, tt.calls, tt.marks)
			}
			if tt.calls > 0 && len(disp.refs) != len(eps) {
				t.Errorf("dispatched %v, want the %d runs", disp.refs, len(eps))
			}
			for _, ep := range eps {
				d := f.delivery(t, msg.ID, ep.ID)
				if !d.Dispatched || d.Claimed != tt.held || d.Status != webhook.StatusPending {
					t.Errorf("delivery to %s: dispatched %v, claimed %v, %s; want dispatched, claimed %v, pending",
						ep.ID, d.Dispatched, d.Claimed, d.Status, tt.held)
				}
				if !tt.held && !d.NextAttemptAt.Equal(msg.Timestamp) {
					t.Errorf("delivery to %s: due %v, want at once (%v)", ep.ID, d.NextAttemptAt, msg.Timestamp)
				}
			}
			stuck, err := f.store.ListUndispatched(context.Background(), f.clock.Now().Add(time.Hour), 10)
			if err != nil || len(stuck) != 0 {
				t.Errorf("ListUndispatched: %v, %v; want none for the sweeper", stuck, err)
			}
		})
	}

	// A message that goes nowhere wakes nothing: the queue would claim
	// (a write) for nothing.
	t.Run("polling, nothing subscribed", func(t *testing.T) {
		f := newFixture(t)
		p := &poller{}
		f.svc.Dispatcher = p
		w := f.watch()
		f.endpoint(t, func(e *webhook.Endpoint) { e.FilterTypes = []string{"v1.conversation.ended"} })
		f.publish(t, "v1.end_user.created")
		if p.calls != 0 || w.marks != 0 {
			t.Errorf("Dispatch calls %d and dispatch records %d, want none", p.calls, w.marks)
		}
	})
}
