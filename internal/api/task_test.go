package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func TestBackgroundTaskOfARecover(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	rec := h.must(http.StatusAccepted, "POST", "/api/v1/app/"+app+"/endpoint/"+ep+"/recover",
		map[string]any{"since": "2025-06-01T10:00:00Z"}).JSON(t)

	got := h.must(http.StatusOK, "GET", "/api/v1/background-task/"+str(rec["id"]), nil).JSON(t)
	wantKeys(t, "BackgroundTaskOut", got, "data", "id", "status", "task", "updatedAt")
	if got["id"] != rec["id"] || got["status"] != "running" || got["task"] != "endpoint.recover" || got["updatedAt"] != rec["updatedAt"] {
		t.Errorf("BackgroundTaskOut %v, want the task of RecoverOut %v", got, rec)
	}
	if data, ok := got["data"].(map[string]any); !ok || data["recovered"] != 0.0 {
		t.Errorf("BackgroundTaskOut data %v, want the task's data object", got["data"])
	}
}

func TestGetBackgroundTaskUnknown(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{
		webhook.NewID(webhook.PrefixTask), // well formed, never stored
		"qtask_nope",
		webhook.NewID(webhook.PrefixApp),
		"%00",
	} {
		res := h.do("GET", "/api/v1/background-task/"+id, nil)
		wantError(t, res, http.StatusNotFound, "not_found")
		if detail := str(res.JSON(t)["detail"]); detail != "Background task not found" {
			t.Errorf("GET task %q: detail %q, want \"Background task not found\"", id, detail)
		}
	}
}

// TestListBackgroundTasks checks the list's order, filters and paging on
// stored tasks of every status.
func TestListBackgroundTasks(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var ids []string // oldest first
	status := map[string]string{}
	for i, st := range []webhook.TaskStatus{webhook.TaskFinished, webhook.TaskRunning, webhook.TaskFailed, webhook.TaskFinished} {
		now := h.clock.Now()
		task := &webhook.Task{
			ID: webhook.NewID(webhook.PrefixTask), AppID: "app_x", EndpointID: "ep_x",
			Kind: webhook.TaskEndpointRecover, Status: st, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(webhook.TaskRetention),
		}
		if i == 0 {
			task.Data = json.RawMessage(`{"recovered":7}`)
		}
		if err := h.store.CreateTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.ID)
		status[task.ID] = string(st)
		h.clock.Advance(time.Second)
	}
	idsOf := func(items []map[string]any) []string {
		var out []string
		for _, it := range items {
			out = append(out, str(it["id"]))
		}
		return out
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"newest first by default", "", newestFirst},
		{"ascending", "?order=ascending", ids},
		{"finished", "?status=finished", []string{ids[3], ids[0]}},
		{"running recovers", "?status=running&task=endpoint.recover", []string{ids[1]}},
		{"a type hookstep never runs", "?task=sdk.generate", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.must(http.StatusOK, "GET", "/api/v1/background-task"+tt.query, nil)
			body := res.JSON(t)
			wantKeys(t, "ListResponseBackgroundTaskOut", body, "data", "iterator", "prevIterator", "done")
			items := res.Data(t)
			if got := idsOf(items); !slices.Equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
			for _, it := range items {
				wantKeys(t, "BackgroundTaskOut", it, "data", "id", "status", "task", "updatedAt")
				if it["status"] != status[str(it["id"])] {
					t.Errorf("task %s: status %v, want %s", it["id"], it["status"], status[str(it["id"])])
				}
				if _, ok := it["data"].(map[string]any); !ok {
					t.Errorf("task %s: data %v, want an object", it["id"], it["data"])
				}
			}
		})
	}

	// Pages of one, forwards then back.
	first := h.must(http.StatusOK, "GET", "/api/v1/background-task?limit=1", nil).JSON(t)
	next := h.must(http.StatusOK, "GET", "/api/v1/background-task?limit=1&iterator="+url.QueryEscape(str(first["iterator"])), nil)
	if got := idsOf(next.Data(t)); !slices.Equal(got, newestFirst[1:2]) || next.JSON(t)["done"] != false {
		t.Errorf("second page %v, want %v and more", got, newestFirst[1:2])
	}
	back := h.must(http.StatusOK, "GET", "/api/v1/background-task?limit=1&iterator="+url.QueryEscape(str(next.JSON(t)["prevIterator"])), nil)
	if got := idsOf(back.Data(t)); !slices.Equal(got, newestFirst[:1]) {
		t.Errorf("page before the second %v, want %v", got, newestFirst[:1])
	}
}

func TestListBackgroundTasksBadQuery(t *testing.T) {
	h := newHarness(t)
	appIterator := encodeIterator(webhook.NewID(webhook.PrefixApp), false)
	tests := []struct {
		query string
		loc   []string
	}{
		{"status=done", []string{"query", "status"}},
		{"status=2", []string{"query", "status"}},
		{"task=endpoint.explode", []string{"query", "task"}},
		{"limit=0", []string{"query", "limit"}},
		{"limit=251", []string{"query", "limit"}},
		{"limit=ten", []string{"query", "limit"}},
		{"order=sideways", []string{"query", "order"}},
		{"iterator=~~~", []string{"query", "iterator"}},
		{"iterator=" + url.QueryEscape(appIterator), []string{"query", "iterator"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			wantValidation(t, h.do("GET", "/api/v1/background-task?"+tt.query, nil), tt.loc)
		})
	}
}
