package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// newTask returns a running recover task of the endpoint, created now.
func (e *env) newTask(appID, endpointID string) *webhook.Task {
	now := e.clock.Now()
	return &webhook.Task{
		ID:         webhook.NewID(webhook.PrefixTask),
		AppID:      appID,
		EndpointID: endpointID,
		Kind:       webhook.TaskEndpointRecover,
		Status:     webhook.TaskRunning,
		Data:       json.RawMessage(`{"recovered":0}`),
		State:      json.RawMessage(`{"since":"2025-03-01T11:00:00Z","cursor":""}`),
		CreatedAt:  now,
		UpdatedAt:  now,
		ExpiresAt:  now.Add(webhook.TaskRetention),
	}
}

func (e *env) createTask(t *testing.T, appID, endpointID string, mods ...func(*webhook.Task)) *webhook.Task {
	t.Helper()
	task := e.newTask(appID, endpointID)
	for _, mod := range mods {
		mod(task)
	}
	if err := e.s.CreateTask(e.ctx, task); err != nil {
		t.Fatalf("CreateTask(%s): %v", task.ID, err)
	}
	return task
}

func (e *env) getTask(t *testing.T, id string) *webhook.Task {
	t.Helper()
	task, err := e.s.GetTask(e.ctx, id)
	if err != nil {
		t.Fatalf("GetTask(%s): %v", id, err)
	}
	return task
}

func testTasks(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	task := e.createTask(t, app.ID, ep.ID, func(task *webhook.Task) {
		// Kept byte for byte, whitespace and key order included.
		task.Data = json.RawMessage("{ \"recovered\": 0,\n \"since\": \"2025-03-01T11:00:00Z\" }")
	})
	got := e.getTask(t, task.ID)
	if d := diff(task, got); d != "" {
		t.Errorf("GetTask mismatch (-want +got):\n%s", d)
	}
	if string(got.Data) != string(task.Data) || string(got.State) != string(task.State) {
		t.Errorf("GetTask: got data %s, state %s; want %s, %s byte for byte", got.Data, got.State, task.Data, task.State)
	}

	// A task need not concern an app or endpoint that exists (it outlives
	// them: its worker then fails it).
	e.createTask(t, "app_gone", "ep_gone")

	dup := e.newTask(app.ID, ep.ID)
	dup.ID = task.ID
	wantConflict(t, "CreateTask(existing id)", e.s.CreateTask(e.ctx, dup))
	_, err := e.s.GetTask(e.ctx, "qtask_missing")
	wantNotFound(t, "GetTask(missing)", err)

	// An update stores status, data and state, and moves UpdatedAt on.
	read := e.getTask(t, task.ID)
	prev := read.UpdatedAt
	e.clock.Advance(time.Second)
	read.Data = json.RawMessage(`{"recovered":250}`)
	read.State = json.RawMessage(`{"cursor":"atmpt_250"}`)
	read.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateTask(e.ctx, read, prev); err != nil {
		t.Fatalf("UpdateTask: %v", err)
	}
	if !read.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("UpdateTask set UpdatedAt %v, want %v", read.UpdatedAt, e.clock.Now())
	}
	if d := diff(read, e.getTask(t, task.ID)); d != "" {
		t.Errorf("GetTask after UpdateTask mismatch (-want +got):\n%s", d)
	}

	// A worker that read the task before that update is stale and
	// changes nothing: of two workers resuming one task, one goes on.
	stale := *task
	stale.Status = webhook.TaskFailed
	stale.Data = json.RawMessage(`{"error":"lost"}`)
	stale.UpdatedAt = e.clock.Now()
	wantStale(t, "UpdateTask(stale)", e.s.UpdateTask(e.ctx, &stale, task.UpdatedAt))
	if d := diff(read, e.getTask(t, task.ID)); d != "" {
		t.Errorf("GetTask after a stale UpdateTask mismatch (-want +got):\n%s", d)
	}

	// Within one millisecond, UpdatedAt still moves on; fields other than
	// status, data and state never change.
	last := read.UpdatedAt
	next := *read
	next.Status = webhook.TaskFinished
	next.Data = json.RawMessage(`{"recovered":300}`)
	next.AppID, next.EndpointID, next.Kind = "app_other", "ep_other", "endpoint.replay"
	next.CreatedAt, next.ExpiresAt = last, last.Add(time.Hour)
	if err := e.s.UpdateTask(e.ctx, &next, last); err != nil {
		t.Fatalf("UpdateTask(same millisecond): %v", err)
	}
	want := *read
	want.Status, want.Data, want.UpdatedAt = webhook.TaskFinished, next.Data, last.Add(time.Millisecond)
	if !next.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("UpdateTask(same millisecond) set UpdatedAt %v, want %v", next.UpdatedAt, want.UpdatedAt)
	}
	if d := diff(&want, e.getTask(t, task.ID)); d != "" {
		t.Errorf("GetTask after UpdateTask(same millisecond) mismatch (-want +got):\n%s", d)
	}

	missing := e.newTask(app.ID, ep.ID)
	wantNotFound(t, "UpdateTask(missing)", e.s.UpdateTask(e.ctx, missing, missing.UpdatedAt))
}

func testListTasks(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	otherEp := e.createEndpoint(t, other.ID)
	// Status and kind interleave, so that a filter selects items that are
	// not neighbours.
	statuses := []webhook.TaskStatus{webhook.TaskRunning, webhook.TaskFinished, webhook.TaskFailed, webhook.TaskFinished}
	var all []webhook.Task
	for i := range 9 {
		appID, epID := app.ID, ep.ID
		if i%3 == 2 {
			appID, epID = other.ID, otherEp.ID
		}
		task := e.createTask(t, appID, epID, func(task *webhook.Task) {
			task.Status = statuses[i%len(statuses)]
			if i%3 == 1 {
				task.Kind = "endpoint.replay"
			}
			task.Data = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		})
		all = append(all, *task)
		e.clock.Advance(time.Second)
	}

	for _, tc := range []struct {
		name string
		f    webhook.TaskFilter
	}{
		{"All", webhook.TaskFilter{}},
		{"Finished", webhook.TaskFilter{Status: webhook.TaskFinished}},
		{"Recover", webhook.TaskFilter{Kind: webhook.TaskEndpointRecover}},
		{"FinishedReplay", webhook.TaskFilter{Status: webhook.TaskFinished, Kind: "endpoint.replay"}},
		{"App", webhook.TaskFilter{AppID: other.ID}},
		{"AppFailedRecover", webhook.TaskFilter{AppID: app.ID, Status: webhook.TaskFailed, Kind: webhook.TaskEndpointRecover}},
		{"None", webhook.TaskFilter{Kind: "sdk.generate"}},
	} {
		f := tc.f
		t.Run(tc.name, func(t *testing.T) {
			var want []webhook.Task
			var keys []string
			for _, task := range all {
				if (f.AppID == "" || task.AppID == f.AppID) && (f.Status == "" || task.Status == f.Status) &&
					(f.Kind == "" || task.Kind == f.Kind) {
					want = append(want, task)
					keys = append(keys, task.ID)
				}
			}
			list := func(opts webhook.ListOptions) (webhook.Page[webhook.Task], error) {
				f := f
				f.ListOptions = opts
				return e.s.ListTasks(e.ctx, f)
			}
			if d := diff(want, listAll(t, list)); d != "" {
				t.Errorf("ListTasks mismatch (-want +got):\n%s", d)
			}
			checkPaging(t, keys, listerOf(list, func(task webhook.Task) string { return task.ID }))
		})
	}

	// A status change moves a task between the filtered lists.
	moved := all[0]
	moved.Status = webhook.TaskFinished
	moved.UpdatedAt = e.clock.Now()
	if err := e.s.UpdateTask(e.ctx, &moved, all[0].UpdatedAt); err != nil {
		t.Fatalf("UpdateTask: %v", err)
	}
	for _, tc := range []struct {
		status webhook.TaskStatus
		in     bool
	}{{webhook.TaskRunning, false}, {webhook.TaskFinished, true}} {
		p, err := e.s.ListTasks(e.ctx, webhook.TaskFilter{Status: tc.status, ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit}})
		if err != nil {
			t.Fatalf("ListTasks(%s): %v", tc.status, err)
		}
		found := false
		for _, task := range p.Items {
			found = found || task.ID == moved.ID
		}
		if found != tc.in {
			t.Errorf("ListTasks(status %s) after the task became finished: listed %v, want %v", tc.status, found, tc.in)
		}
	}
}

func testTaskExpiry(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	short := e.createTask(t, app.ID, ep.ID, func(task *webhook.Task) { task.ExpiresAt = task.CreatedAt.Add(time.Hour) })
	long := e.createTask(t, app.ID, ep.ID)

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
			_, err := e.s.GetTask(e.ctx, short.ID)
			if tc.visible && err != nil {
				t.Errorf("GetTask: %v", err)
			}
			if !tc.visible {
				wantNotFound(t, "GetTask", err)
				wantNotFound(t, "UpdateTask", e.s.UpdateTask(e.ctx, short, short.UpdatedAt))
			}
			want := []string{long.ID}
			if tc.visible {
				want = []string{short.ID, long.ID}
			}
			for _, f := range []webhook.TaskFilter{{}, {Status: webhook.TaskRunning}} {
				f.Ascending = true
				p, err := e.s.ListTasks(e.ctx, f)
				if err != nil {
					t.Fatalf("ListTasks: %v", err)
				}
				if d := diff(want, idsOf(p.Items, func(task webhook.Task) string { return task.ID })); d != "" {
					t.Errorf("ListTasks(%+v) ids mismatch (-want +got):\n%s", f, d)
				}
			}
		})
	}
}
