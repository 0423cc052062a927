package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
)

// AppStats runs the real engine's task, inline (Go is nil), so that the
// task is finished when the request returns.
func (d *fakeDeliveries) AppStats(ctx context.Context, appIDs []string, since, until time.Time) (webhook.Task, error) {
	engine := &delivery.Service{Store: d.store, Dispatcher: noDispatch{}, Clock: d.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return engine.AppStats(ctx, appIDs, since, until)
}

// AggregateEventTypes runs the real engine's task, inline.
func (d *fakeDeliveries) AggregateEventTypes(ctx context.Context) (webhook.Task, error) {
	engine := &delivery.Service{Store: d.store, Dispatcher: noDispatch{}, Clock: d.clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return engine.AggregateEventTypes(ctx)
}

// TestSvixGoSDKAggregateEventTypes drives Statistics.AggregateEventTypes
// through the official Go SDK on both stores: per app, the sorted union of
// its endpoints' filterTypes and whether one endpoint takes everything.
func TestSvixGoSDKAggregateEventTypes(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		_, _, client := sdkHarness(t, open)
		sdk := client(testToken)
		ctx := context.Background()
		check := sdkCheck(t)
		newApp := func(uid string, filters ...[]string) string {
			t.Helper()
			app, err := sdk.Application.Create(ctx, models.ApplicationIn{Name: uid, Uid: ptr(uid)}, nil)
			check("create app", err)
			for _, types := range filters {
				in := models.EndpointIn{Url: "https://example.com/" + uid}
				if types != nil {
					in.FilterTypes = types
				}
				_, err := sdk.Endpoint.Create(ctx, app.Id, in, nil)
				check("create endpoint", err)
			}
			return app.Id
		}
		for _, name := range []string{"user.created", "user.deleted", "order.paid"} {
			_, err := sdk.EventType.Create(ctx, models.EventTypeIn{Name: name, Description: name}, nil)
			check("create event type", err)
		}
		a := newApp("a", []string{"user.deleted", "user.created"}, []string{"user.created", "order.paid"})
		b := newApp("b", []string{"user.created"}, nil)
		c := newApp("c")

		out, err := sdk.Statistics.AggregateEventTypes(ctx)
		check("aggregate event types", err)
		if out.Task != models.BACKGROUNDTASKTYPE_EVENT_TYPE_AGGREGATE {
			t.Errorf("AggregateEventTypes: %+v, want an event-type.aggregate task", out)
		}
		task, err := sdk.BackgroundTask.Get(ctx, out.Id)
		check("get the task", err)
		if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED {
			t.Fatalf("task %+v, want finished", task)
		}
		type entry struct {
			types    string
			catchAll bool
		}
		got := map[string]entry{}
		entries, _ := task.Data["event_types"].([]any)
		for _, e := range entries {
			m, _ := e.(map[string]any)
			var names []string
			for _, n := range m["explicitlySubscribedEventTypes"].([]any) {
				names = append(names, n.(string))
			}
			catchAll, _ := m["hasCatchAllEndpoint"].(bool)
			got[m["appId"].(string)] = entry{strings.Join(names, ","), catchAll}
		}
		want := map[string]entry{
			a: {"order.paid,user.created,user.deleted", false},
			b: {"user.created", true},
			c: {"", false},
		}
		if !maps.Equal(got, want) {
			t.Errorf("event_types: got %v, want %v", got, want)
		}
	})
}

// TestSvixGoSDKAggregateAppStats drives Statistics.AggregateAppStats
// through the official Go SDK on both stores: the task it starts counts
// each app's deliveries (messageDestinations) of the window — every app,
// or those appIds names, with the unknown ones returned as unresolved.
func TestSvixGoSDKAggregateAppStats(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h, _, client := sdkHarness(t, open)
		sdk := client(testToken)
		ctx := context.Background()
		check := sdkCheck(t)

		newApp := func(uid string, endpoints int) string {
			t.Helper()
			app, err := sdk.Application.Create(ctx, models.ApplicationIn{Name: uid, Uid: ptr(uid)}, nil)
			check("create app", err)
			for range endpoints {
				_, err := sdk.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/" + uid}, nil)
				check("create endpoint", err)
			}
			return app.Id
		}
		send := func(appID string, n int) {
			t.Helper()
			for range n {
				_, err := sdk.Message.Create(ctx, appID, models.MessageIn{EventType: "user.created", Payload: map[string]any{}}, nil)
				check("send", err)
			}
		}
		a, b, c := newApp("a", 2), newApp("b", 1), newApp("c", 0)
		since := h.clock.Now().Add(-time.Hour)
		send(a, 2) // 2 messages x 2 endpoints
		send(b, 3)
		send(c, 1) // no endpoint: no destination
		until := h.clock.Now().Add(time.Hour)
		h.clock.Advance(2 * time.Hour)
		send(b, 1) // after the window

		stats := func(in models.AppUsageStatsIn, wantUnresolved []string) map[string]int {
			t.Helper()
			out, err := sdk.Statistics.AggregateAppStats(ctx, in, nil)
			check("aggregate app stats", err)
			if out.Task != models.BACKGROUNDTASKTYPE_APPLICATION_STATS || !slices.Equal(out.UnresolvedAppIds, wantUnresolved) {
				t.Errorf("AggregateAppStats: %+v, want an application.stats task and unresolved %v", out, wantUnresolved)
			}
			task, err := sdk.BackgroundTask.Get(ctx, out.Id)
			check("get the task", err)
			if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED {
				t.Fatalf("task %+v, want finished", task)
			}
			got := map[string]int{}
			entries, _ := task.Data["appStats"].([]any)
			for _, e := range entries {
				m, _ := e.(map[string]any)
				n, _ := m["messageDestinations"].(float64)
				id, _ := m["appId"].(string)
				if uid, _ := m["appUid"].(string); id == "" || (uid != "a" && uid != "b" && uid != "c") {
					t.Errorf("entry %v: want appId and appUid", m)
				}
				got[id] = int(n)
			}
			return got
		}
		if got, want := stats(models.AppUsageStatsIn{Since: since, Until: until}, []string{}), map[string]int{a: 4, b: 3, c: 0}; !maps.Equal(got, want) {
			t.Errorf("every app: messageDestinations %v, want %v", got, want)
		}
		if got, want := stats(models.AppUsageStatsIn{Since: since, Until: until.Add(2 * time.Hour), AppIds: []string{"b", a, "nope"}}, []string{"nope"}), map[string]int{a: 4, b: 4}; !maps.Equal(got, want) {
			t.Errorf("apps b and a over a longer window: messageDestinations %v, want %v", got, want)
		}

		_, err := sdk.Statistics.AggregateAppStats(ctx, models.AppUsageStatsIn{Since: since, Until: until, AppIds: []string{"nope"}}, nil)
		var se *svix.Error
		if !errors.As(err, &se) || se.Status() != http.StatusUnprocessableEntity {
			t.Errorf("no app resolves: got %v, want 422", err)
		}
	})
}

// TestAggregateAppStatsInput: bad windows and app lists are 422s at the
// field, and app tokens cannot ask (the stats span every app).
func TestAggregateAppStatsInput(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		body map[string]any
		loc  []string
	}{
		{"NoSince", map[string]any{"until": "2025-06-01T00:00:00Z"}, []string{"body", "since"}},
		{"UntilBeforeSince", map[string]any{"since": "2025-06-02T00:00:00Z", "until": "2025-06-01T00:00:00Z"}, []string{"body", "until"}},
		{"AppIdsNotAList", map[string]any{"since": "2025-06-01T00:00:00Z", "until": "2025-06-02T00:00:00Z", "appIds": "a"}, []string{"body", "appIds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantValidation(t, h.do("POST", "/api/v1/stats/usage/app", tc.body), tc.loc)
		})
	}
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	wantError(t, h.as(h.mint(app, nil), "POST", "/api/v1/stats/usage/app",
		map[string]any{"since": "2025-06-01T00:00:00Z", "until": "2025-06-02T00:00:00Z"}), http.StatusForbidden, "insufficient access")
}

// TestAggregateAppStatsReservedApp: the operational webhooks' reserved app
// is no customer app, so appIds naming it leave it unresolved, like an
// unknown id, as every other app route answers 404 for it.
func TestAggregateAppStatsReservedApp(t *testing.T) {
	h := newHarness(t)
	h.must(http.StatusOK, "GET", opsPath, nil) // creates the reserved app
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	window := func(appIDs ...string) map[string]any {
		return map[string]any{"since": "2025-06-01T00:00:00Z", "until": "2025-06-02T00:00:00Z", "appIds": appIDs}
	}

	out := h.must(http.StatusAccepted, "POST", "/api/v1/stats/usage/app", window(operational.AppID, app)).JSON(t)
	got, _ := out["unresolvedAppIds"].([]any)
	if len(got) != 1 || got[0] != operational.AppID {
		t.Errorf("unresolvedAppIds %v, want [%s]", out["unresolvedAppIds"], operational.AppID)
	}
	wantValidation(t, h.do("POST", "/api/v1/stats/usage/app", window(operational.AppID)), []string{"body", "appIds"})
}
