package delivery_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// failingEndpoints fails ListEndpoints after the first n calls.
type failingEndpoints struct {
	webhook.Store
	n     int32
	calls atomic.Int32
}

func (s *failingEndpoints) ListEndpoints(ctx context.Context, appID string, opts webhook.ListOptions) (webhook.Page[webhook.Endpoint], error) {
	if s.calls.Add(1) > s.n {
		return webhook.Page[webhook.Endpoint]{}, errors.New("store down")
	}
	return s.Store.ListEndpoints(ctx, appID, opts)
}

// TestPerAppTasksResumeWithoutCountingTwice: an application.stats task
// over more apps than one page stops on a store failure with its first
// page saved, and running it again finishes it with every app once; an
// event-type.aggregate task pages through every app too.
func TestPerAppTasksResumeWithoutCountingTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for i := range 119 { // 120 apps with the fixture's
		app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: fmt.Sprint("app ", i), CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now()}
		if err := f.store.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	appsIn := func(task *webhook.Task, key string) map[string]int {
		t.Helper()
		var data map[string][]struct {
			AppID string `json:"appId"`
		}
		if err := json.Unmarshal(task.Data, &data); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, e := range data[key] {
			seen[e.AppID]++
		}
		return seen
	}

	down := &failingEndpoints{Store: f.store, n: 60} // past the first page of 50 apps
	f.svc.Store = down
	task, err := f.svc.AppStats(ctx, nil, f.clock.Now().Add(-1), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := f.store.GetTask(ctx, task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := appsIn(stored, "appStats"); stored.Status != webhook.TaskRunning || len(got) != 50 {
		t.Fatalf("after the failure: status %s with %d apps, want running with the first page's 50", stored.Status, len(got))
	}

	f.svc.Store = f.store
	if err := f.svc.RunTask(ctx, task.ID); err != nil {
		t.Fatalf("RunTask again: %v", err)
	}
	stored, _ = f.store.GetTask(ctx, task.ID)
	got := appsIn(stored, "appStats")
	if stored.Status != webhook.TaskFinished || len(got) != 120 {
		t.Errorf("resumed: status %s with %d apps, want finished with 120", stored.Status, len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("app %s counted %d times", id, n)
		}
	}

	task, err = f.svc.AggregateEventTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ = f.store.GetTask(ctx, task.ID)
	if got := appsIn(stored, "event_types"); stored.Status != webhook.TaskFinished || len(got) != 120 {
		t.Errorf("event-type.aggregate: status %s with %d apps, want finished with 120", stored.Status, len(got))
	}
}

// TestStatsLeaveOutTheReservedApp: the operational webhooks' app is
// hookstep's, not a customer's, and is in no usage statistics, whether
// the task lists every app or is given its id.
func TestStatsLeaveOutTheReservedApp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	now := f.clock.Now()
	if err := f.store.CreateApp(ctx, &webhook.App{ID: operational.AppID, Name: "operational", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]string{nil, {operational.AppID, f.app.ID}} {
		task, err := f.svc.AppStats(ctx, ids, now.Add(-1), now)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := f.store.GetTask(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			AppStats []struct {
				AppID string `json:"appId"`
			} `json:"appStats"`
		}
		if err := json.Unmarshal(stored.Data, &data); err != nil {
			t.Fatal(err)
		}
		if len(data.AppStats) != 1 || data.AppStats[0].AppID != f.app.ID {
			t.Errorf("app stats of %v: %+v, want only the customer's app %s", ids, data.AppStats, f.app.ID)
		}
	}
}
