package main

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
)

// pauseFirstProgress makes the first progress write of a background task
// in servers started afterwards wait (on the task's goroutine) until the
// test ends or release is called; paused receives the task as written.
// It stands in for a slow task: a recover that has done one page of its
// work and is not done.
func pauseFirstProgress(t *testing.T) (paused <-chan webhook.Task, release func()) {
	t.Helper()
	ch := make(chan webhook.Task, 1)
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	var calls atomic.Int32
	taskProgress = func(ctx context.Context, task webhook.Task) {
		if calls.Add(1) != 1 {
			return
		}
		ch <- task
		select {
		case <-released:
		case <-ctx.Done(): // the server stops
		}
	}
	t.Cleanup(func() { taskProgress = nil })
	return ch, release
}

// failedMessages creates n messages concurrently for an endpoint that
// answers 503, and waits until every delivery has failed.
func failedMessages(t *testing.T, c *svix.Svix, appID, epID string, n int) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				m, err := c.Message.Create(ctx, appID, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", i)}, nil)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = m.Id
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create message: %v", err)
	}
	eventually(t, 2*time.Minute, "every message to fail", func() bool {
		st, err := c.Endpoint.GetStats(ctx, appID, epID, nil)
		return err == nil && st.Fail == int64(n)
	})
	return ids
}

// recovered reads a recover task's data.recovered.
func recovered(t *testing.T, task *models.BackgroundTaskOut) int {
	t.Helper()
	n, ok := task.Data["recovered"].(float64)
	if !ok {
		t.Fatalf("task %s: data %v has no recovered count", task.Id, task.Data)
	}
	return int(n)
}

// listed reports whether a page of tasks holds the id.
func listed(l *models.ListResponseBackgroundTaskOut, id string) bool {
	for _, task := range l.Data {
		if task.Id == id {
			return true
		}
	}
	return false
}

// TestSvixSDKRecoverRunsAsABackgroundTask recovers 2,000 failed messages:
// the recover call answers while its task is held after its first page,
// the task reports its progress while it runs, and it ends finished with
// every message recovered and delivered.
func TestSvixSDKRecoverRunsAsABackgroundTask(t *testing.T) {
	const n = 2000
	ctx := context.Background()
	paused, release := pauseFirstProgress(t)
	s := startServer(t, map[string]string{"HOOKSTEP_RETRY_SCHEDULE": "0s"}) // 2 attempts, then fail
	// Registered after startServer, so it runs before the server stops.
	t.Cleanup(release)
	c := s.Client
	var down atomic.Bool
	down.Store(true)
	rcv := newReceiver(t, func(string, int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	ids := failedMessages(t, c, app.Id, ep.Id, n)
	down.Store(false)

	// The task cannot finish while its first progress write is held, so
	// a recover that answers has left its work to the background.
	answered := make(chan *models.RecoverOut, 1)
	go func() {
		out, err := c.Endpoint.Recover(ctx, app.Id, ep.Id, models.RecoverIn{Since: since}, nil)
		if err != nil {
			t.Errorf("recover: %v", err)
		}
		answered <- out
	}()
	var rec *models.RecoverOut
	select {
	case rec = <-answered:
	case <-time.After(30 * time.Second):
		t.Fatal("recover did not answer while its task was held after its first page: the work is on the request path")
	}
	if rec == nil {
		t.FailNow()
	}
	if rec.Status != models.BACKGROUNDTASKSTATUS_RUNNING || rec.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER {
		t.Errorf("RecoverOut %+v, want a running endpoint.recover task", rec)
	}

	// Held after its first page: running, with that page's progress.
	var first webhook.Task
	select {
	case first = <-paused:
	case <-time.After(time.Minute):
		t.Fatal("the recover task wrote no progress")
	}
	if first.ID != rec.Id {
		t.Fatalf("the task that wrote progress is %s, want the recover's %s", first.ID, rec.Id)
	}
	task, err := c.BackgroundTask.Get(ctx, rec.Id)
	if err != nil {
		t.Fatal(err)
	}
	page := recovered(t, task)
	if task.Status != models.BACKGROUNDTASKSTATUS_RUNNING || page <= 0 || page >= n {
		t.Errorf("task after its first page: %s with data %v; want running with 0 < recovered < %d", task.Status, task.Data, n)
	}
	running, err := c.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{
		Status: ptr(models.BACKGROUNDTASKSTATUS_RUNNING), Task: ptr(models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER),
	})
	if err != nil || !listed(running, rec.Id) {
		t.Errorf("running recover tasks: got %+v, %v; want the task listed", running, err)
	}

	// Released, it goes on, its count never going back, to the end.
	release()
	last := page
	eventually(t, time.Minute, "the recover task to finish", func() bool {
		task, err = c.BackgroundTask.Get(ctx, rec.Id)
		if err != nil {
			t.Fatalf("get task: %v", err)
		}
		if got := recovered(t, task); got < last {
			t.Fatalf("recovered went from %d back to %d", last, got)
		} else {
			last = got
		}
		return task.Status != models.BACKGROUNDTASKSTATUS_RUNNING
	})
	if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED || recovered(t, task) != n {
		t.Errorf("task at its end: %s with data %v; want finished with recovered %d", task.Status, task.Data, n)
	}
	finished, err := c.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Status: ptr(models.BACKGROUNDTASKSTATUS_FINISHED)})
	if err != nil || !listed(finished, rec.Id) {
		t.Errorf("finished tasks: got %+v, %v; want the task listed", finished, err)
	}
	if running, err := c.BackgroundTask.List(ctx, &svix.BackgroundTaskListOptions{Status: ptr(models.BACKGROUNDTASKSTATUS_RUNNING)}); err != nil || listed(running, rec.Id) {
		t.Errorf("running tasks: got %+v, %v; want the finished task not listed", running, err)
	}

	eventually(t, 2*time.Minute, "every recovered message to be delivered", func() bool { return rcv.succeededAll(ids) == n })
	eventually(t, 10*time.Second, "stats to show the recovery", func() bool {
		st, err := c.Endpoint.GetStats(ctx, app.Id, ep.Id, nil)
		return err == nil && st.Success == n && st.Fail == 0
	})
}

// TestRecoverResumesAfterARestart stops local mode while a recover task is
// held after its first page; the next start resumes the task from there,
// and it ends with every message recovered once.
func TestRecoverResumesAfterARestart(t *testing.T) {
	const n = 300 // 600 failed attempts: three pages
	ctx := context.Background()
	paused, _ := pauseFirstProgress(t)
	env := map[string]string{"HOOKSTEP_RETRY_SCHEDULE": "0s", "HOOKSTEP_DATA_DIR": t.TempDir()}
	s := startServer(t, env)
	c := s.Client
	var down atomic.Bool
	down.Store(true)
	rcv := newReceiver(t, func(string, int) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	ids := failedMessages(t, c, app.Id, ep.Id, n)
	down.Store(false)
	rec, err := c.Endpoint.Recover(ctx, app.Id, ep.Id, models.RecoverIn{Since: since}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first webhook.Task
	select {
	case first = <-paused:
	case <-time.After(time.Minute):
		t.Fatal("the recover task wrote no progress")
	}
	if first.Status != webhook.TaskRunning {
		t.Fatalf("task held after its first page is %s, want running", first.Status)
	}

	// Stopped, the process leaves the task running after its first page.
	s.stop()
	store, err := sqlite.Open(ctx, filepath.Join(env["HOOKSTEP_DATA_DIR"], "hookstep.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	left, err := store.GetTask(ctx, rec.Id)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if left.Status != webhook.TaskRunning || string(left.Data) != string(first.Data) || string(left.State) != string(first.State) {
		t.Fatalf("task left by the stopped process: %s, data %s, state %s; want running as after its first page (%s, %s)",
			left.Status, left.Data, left.State, first.Data, first.State)
	}

	s = startServer(t, env)
	eventually(t, time.Minute, "the resumed task to finish", func() bool {
		task, err := s.Client.BackgroundTask.Get(ctx, rec.Id)
		return err == nil && task.Status != models.BACKGROUNDTASKSTATUS_RUNNING
	})
	task, err := s.Client.BackgroundTask.Get(ctx, rec.Id)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != models.BACKGROUNDTASKSTATUS_FINISHED || recovered(t, task) != n {
		t.Errorf("resumed task at its end: %s with data %v; want finished with recovered %d", task.Status, task.Data, n)
	}
	eventually(t, time.Minute, "every recovered message to be delivered", func() bool { return rcv.succeededAll(ids) == n })
	eventually(t, 10*time.Second, "stats to show the recovery", func() bool {
		st, err := s.Client.Endpoint.GetStats(ctx, app.Id, ep.Id, nil)
		return err == nil && st.Success == n && st.Fail == 0
	})
}
