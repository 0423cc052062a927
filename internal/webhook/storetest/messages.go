package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookstep/hookstep/internal/webhook"
)

func testCreateMessage(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep1 := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	ep3 := e.createEndpoint(t, app.ID)

	msg := e.newMessage(app.ID)
	msg.EventID = "evt-1"
	msg.Payload = json.RawMessage("{ \"b\": 1,\n  \"a\": [1.50, \"\\u00e9\"] }") // kept byte for byte
	msg.Channels = []string{"eu", "vip"}
	msg.Tags = []string{"t1"}
	ep4 := e.createEndpoint(t, app.ID)
	due := msg.Timestamp.Add(5 * time.Second)
	deliveries := []webhook.Delivery{
		{EndpointID: ep1.ID},
		{EndpointID: ep2.ID, NextAttemptAt: due, UpdatedAt: due, Dispatched: true, Claimed: true}, // taken by a Holder
		{EndpointID: ep4.ID, Dispatched: true},                                                    // taken by an Early dispatcher: a store may defer it
	}
	if err := e.s.CreateMessage(e.ctx, msg, deliveries); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}

	for _, key := range []string{msg.ID, msg.EventID} {
		got, err := e.s.GetMessage(e.ctx, app.ID, key)
		if err != nil {
			t.Fatalf("GetMessage(%q): %v", key, err)
		}
		if d := diff(msg, got); d != "" {
			t.Errorf("GetMessage(%q) mismatch (-want +got):\n%s", key, d)
		}
		if string(got.Payload) != string(msg.Payload) {
			t.Errorf("GetMessage(%q).Payload = %s, want %s byte for byte", key, got.Payload, msg.Payload)
		}
		_, err = e.s.GetMessage(e.ctx, other.ID, key)
		wantNotFound(t, "GetMessage(other app, "+key+")", err)
	}
	_, err := e.s.GetMessage(e.ctx, app.ID, "msg_missing")
	wantNotFound(t, "GetMessage(missing)", err)

	want1 := webhook.NewDelivery(msg, ep1.ID)
	want2 := webhook.NewDelivery(msg, ep2.ID)
	want2.NextAttemptAt, want2.UpdatedAt, want2.Dispatched = due, due, true
	want4 := webhook.NewDelivery(msg, ep4.ID)
	want4.Dispatched = true
	for _, want := range []webhook.Delivery{want1, want2, want4} {
		// Claimed is local mode's own, Deferred a deferring store's (see
		// webhook.Delivery).
		if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, want.EndpointID), cmpopts.IgnoreFields(webhook.Delivery{}, "Claimed", "Deferred")); d != "" {
			t.Errorf("GetDelivery(%s) mismatch (-want +got):\n%s", want.EndpointID, d)
		}
	}
	if got, err := e.s.ListUndispatched(e.ctx, due.Add(time.Hour), 10); err != nil || len(got) != 1 || got[0].EndpointID != ep1.ID {
		t.Errorf("ListUndispatched after CreateMessage = %v, %v; want only the undispatched delivery to %s", got, err, ep1.ID)
	}
	_, err = e.s.GetDelivery(e.ctx, app.ID, msg.ID, ep3.ID)
	wantNotFound(t, "GetDelivery(endpoint not fanned out to)", err)
	_, err = e.s.GetDelivery(e.ctx, other.ID, msg.ID, ep1.ID)
	wantNotFound(t, "GetDelivery(other app)", err)

	// A rejected message leaves nothing behind: neither itself nor any
	// delivery.
	e.clock.Advance(time.Minute)
	again := e.newMessage(app.ID)
	again.EventID = msg.EventID
	wantConflict(t, "CreateMessage(EventID within 24h)", e.s.CreateMessage(e.ctx, again, fanout(ep3.ID)))
	_, err = e.s.GetMessage(e.ctx, app.ID, again.ID)
	wantNotFound(t, "GetMessage(rejected)", err)
	_, err = e.s.GetDelivery(e.ctx, app.ID, again.ID, ep3.ID)
	wantNotFound(t, "GetDelivery(of rejected message)", err)

	sameID := e.newMessage(app.ID)
	sameID.ID = msg.ID
	wantConflict(t, "CreateMessage(existing id)", e.s.CreateMessage(e.ctx, sameID, fanout(ep3.ID)))
	_, err = e.s.GetDelivery(e.ctx, app.ID, msg.ID, ep3.ID)
	wantNotFound(t, "GetDelivery(added by rejected message)", err)
	if got, err := e.s.GetMessage(e.ctx, app.ID, msg.ID); err != nil || got.EventID != msg.EventID {
		t.Errorf("GetMessage after rejected duplicate: got %+v, %v; want the original", got, err)
	}

	// A message may go nowhere. Its EventID may be any string, even
	// another message's id: GetMessage matches ids first.
	lonely := e.createMessage(t, app.ID, func(m *webhook.Message) { m.EventID = msg.ID })
	if got, err := e.s.GetMessage(e.ctx, app.ID, lonely.ID); err != nil || got.ID != lonely.ID {
		t.Errorf("GetMessage(message without deliveries) = %v, %v; want %s", got, err, lonely.ID)
	}
	if got, err := e.s.GetMessage(e.ctx, app.ID, msg.ID); err != nil || got.ID != msg.ID {
		t.Errorf("GetMessage(id that is also an event id) = %v, %v; want the message with the id, %s", got, err, msg.ID)
	}
}

// testCreateMessageEndpointGone publishes to an endpoint deleted after the
// fan-out listed it, as a delete racing a publish does.
func testCreateMessageEndpointGone(t *testing.T, e *env) {
	app := e.createApp(t, "")
	kept := e.createEndpoint(t, app.ID)
	gone := e.createEndpoint(t, app.ID)
	if err := e.s.DeleteEndpoint(e.ctx, app.ID, gone.ID); err != nil {
		t.Fatalf("DeleteEndpoint: %v", err)
	}
	msg := e.newMessage(app.ID)
	if err := e.s.CreateMessage(e.ctx, msg, fanout(kept.ID, gone.ID)); err != nil {
		t.Fatalf("CreateMessage with a delivery to a deleted endpoint: %v", err)
	}
	got, err := e.s.GetMessage(e.ctx, app.ID, msg.ID)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if d := diff(msg, got); d != "" {
		t.Errorf("GetMessage mismatch (-want +got):\n%s", d)
	}
	want := webhook.NewDelivery(msg, kept.ID)
	if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, kept.ID)); d != "" {
		t.Errorf("GetDelivery(kept endpoint) mismatch (-want +got):\n%s", d)
	}
	// The delivery to the deleted endpoint may or may not exist: see the
	// package doc.
}

func testEventID(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	withEventID := func(m *webhook.Message) { m.EventID = "order-1" }

	first := e.createMessage(t, app.ID, withEventID)
	e.createMessage(t, other.ID, withEventID) // other apps do not conflict

	for _, tc := range []struct {
		name     string
		after    time.Duration // since first
		conflict bool
	}{
		{"SameTime", 0, true},
		{"Within24h", 24*time.Hour - time.Second, true},
		{"After24h", 24*time.Hour + time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(first.Timestamp.Add(tc.after))
			msg := e.newMessage(app.ID)
			withEventID(msg)
			err := e.s.CreateMessage(e.ctx, msg, nil)
			if tc.conflict {
				wantConflict(t, "CreateMessage", err)
				return
			}
			if err != nil {
				t.Fatalf("CreateMessage: %v", err)
			}
			// GetMessage by EventID finds the newest message with it.
			got, err := e.s.GetMessage(e.ctx, app.ID, "order-1")
			if err != nil {
				t.Fatalf("GetMessage(event id): %v", err)
			}
			if got.ID != msg.ID {
				t.Errorf("GetMessage(event id) = %s, want the newer %s (not %s)", got.ID, msg.ID, first.ID)
			}
			if _, err := e.s.GetMessage(e.ctx, app.ID, first.ID); err != nil {
				t.Errorf("GetMessage(older id): %v", err)
			}
		})
	}
}

func testListMessages(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	specs := []struct {
		eventType string
		channels  []string
	}{
		{"a", []string{"x"}},
		{"b", []string{"y"}},
		{"a", []string{"x", "y"}},
		{"c", nil},
		{"b", []string{"x"}},
		{"a", nil},
	}
	var msgs []*webhook.Message
	for _, sp := range specs {
		msgs = append(msgs, e.createMessage(t, app.ID, func(m *webhook.Message) {
			m.EventType = sp.eventType
			m.Channels = sp.channels
		}))
		e.createMessage(t, other.ID, func(m *webhook.Message) {
			m.EventType = sp.eventType
			m.Channels = sp.channels
		})
	}
	ts := func(i int) time.Time { return msgs[i].Timestamp }

	list := func(f webhook.MessageFilter) func(webhook.ListOptions) (webhook.Page[webhook.Message], error) {
		return func(opts webhook.ListOptions) (webhook.Page[webhook.Message], error) {
			f.ListOptions = opts
			f.AppID = app.ID
			return e.s.ListMessages(e.ctx, f)
		}
	}
	var want []webhook.Message
	for _, m := range msgs {
		want = append(want, *m)
	}
	if d := diff(want, listAll(t, list(webhook.MessageFilter{}))); d != "" {
		t.Errorf("ListMessages mismatch (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name   string
		filter webhook.MessageFilter
		want   []int // indexes into msgs
	}{
		{"All", webhook.MessageFilter{}, []int{0, 1, 2, 3, 4, 5}},
		{"EventType", webhook.MessageFilter{EventTypes: []string{"a"}}, []int{0, 2, 5}},
		{"EventTypes", webhook.MessageFilter{EventTypes: []string{"b", "c"}}, []int{1, 3, 4}},
		{"Channel", webhook.MessageFilter{Channel: "x"}, []int{0, 2, 4}},
		{"After", webhook.MessageFilter{After: ts(1)}, []int{2, 3, 4, 5}},
		{"Before", webhook.MessageFilter{Before: ts(4)}, []int{0, 1, 2, 3}},
		{"Window", webhook.MessageFilter{After: ts(1), Before: ts(4)}, []int{2, 3}},
		{"Combined", webhook.MessageFilter{EventTypes: []string{"a", "b"}, Channel: "y", After: ts(0)}, []int{1, 2}},
		{"NoMatch", webhook.MessageFilter{Channel: "z"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var keys []string
			for _, i := range tc.want {
				keys = append(keys, msgs[i].ID)
			}
			checkPaging(t, keys, listerOf(list(tc.filter), func(m webhook.Message) string { return m.ID }))
		})
	}
}

func testExpiry(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	lifetime := time.Hour
	short := e.createMessage(t, app.ID, func(m *webhook.Message) {
		m.EventID = "short"
		m.ExpiresAt = m.Timestamp.Add(lifetime)
	}, ep.ID)
	long := e.createMessage(t, app.ID, nil, ep.ID)
	e.clock.Set(short.Timestamp)
	shortAtt := e.newAttempt(short, ep.ID, webhook.StatusFail, 500)
	shortAtt.ExpiresAt = short.ExpiresAt
	if _, err := e.s.RecordAttempt(e.ctx, webhook.AttemptResult{Attempt: shortAtt, Attempts: 1, Status: webhook.StatusFail}); err != nil {
		t.Fatalf("RecordAttempt: %v", err)
	}
	longAtt := e.newAttempt(long, ep.ID, webhook.StatusSuccess, 200)
	if _, err := e.s.RecordAttempt(e.ctx, webhook.AttemptResult{Attempt: longAtt, Attempts: 1, Status: webhook.StatusSuccess}); err != nil {
		t.Fatalf("RecordAttempt: %v", err)
	}

	for _, tc := range []struct {
		name    string
		at      time.Time
		visible bool
	}{
		{"JustBefore", short.ExpiresAt.Add(-time.Millisecond), true},
		{"JustAfter", short.ExpiresAt.Add(time.Millisecond), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.clock.Set(tc.at)
			check := func(call string, err error) {
				t.Helper()
				if tc.visible && err != nil {
					t.Errorf("%s: %v", call, err)
				}
				if !tc.visible {
					wantNotFound(t, call, err)
				}
			}
			_, err := e.s.GetMessage(e.ctx, app.ID, short.ID)
			check("GetMessage(id)", err)
			_, err = e.s.GetMessage(e.ctx, app.ID, short.EventID)
			check("GetMessage(event id)", err)
			_, err = e.s.GetAttempt(e.ctx, app.ID, short.ID, shortAtt.ID)
			check("GetAttempt", err)
			_, err = e.s.GetDelivery(e.ctx, app.ID, short.ID, ep.ID)
			check("GetDelivery", err)

			want := []string{long.ID}
			wantAtt := []string{longAtt.ID}
			wantStats := map[webhook.Status]int{webhook.StatusSuccess: 1}
			if tc.visible {
				want = []string{short.ID, long.ID}
				wantAtt = []string{shortAtt.ID, longAtt.ID}
				wantStats = map[webhook.Status]int{webhook.StatusSuccess: 1, webhook.StatusFail: 1}
			}
			msgs, err := e.s.ListMessages(e.ctx, webhook.MessageFilter{AppID: app.ID, ListOptions: webhook.ListOptions{Ascending: true}})
			if err != nil {
				t.Fatalf("ListMessages: %v", err)
			}
			if d := diff(want, idsOf(msgs.Items, func(m webhook.Message) string { return m.ID })); d != "" {
				t.Errorf("ListMessages (-want +got):\n%s", d)
			}
			dels, err := e.s.ListDeliveries(e.ctx, webhook.DeliveryFilter{AppID: app.ID, EndpointID: ep.ID, ListOptions: webhook.ListOptions{Ascending: true}})
			if err != nil {
				t.Fatalf("ListDeliveries: %v", err)
			}
			if d := diff(want, idsOf(dels.Items, func(d webhook.Delivery) string { return d.MsgID })); d != "" {
				t.Errorf("ListDeliveries (-want +got):\n%s", d)
			}
			atts, err := e.s.ListAttempts(e.ctx, webhook.AttemptFilter{AppID: app.ID, EndpointID: ep.ID, ListOptions: webhook.ListOptions{Ascending: true}})
			if err != nil {
				t.Fatalf("ListAttempts: %v", err)
			}
			if d := diff(wantAtt, idsOf(atts.Items, func(a webhook.Attempt) string { return a.ID })); d != "" {
				t.Errorf("ListAttempts (-want +got):\n%s", d)
			}
			stats, err := e.s.EndpointStats(e.ctx, app.ID, ep.ID, time.Time{}, time.Time{})
			if err != nil {
				t.Fatalf("EndpointStats: %v", err)
			}
			if d := diff(fullStats(wantStats), fullStats(stats)); d != "" {
				t.Errorf("EndpointStats (-want +got):\n%s", d)
			}
		})
	}
}

func idsOf[T any](items []T, key func(T) string) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = key(it)
	}
	return ids
}
