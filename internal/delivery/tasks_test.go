package delivery_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// failed publishes n messages to ep and makes each one's only attempt
// fail, so that its delivery ends as Fail.
func (f *fixture) failed(t *testing.T, ep *webhook.Endpoint, n int) []*webhook.Message {
	t.Helper()
	schedule := f.svc.Schedule
	f.svc.Schedule = webhook.Schedule{} // one attempt, then fail
	defer func() { f.svc.Schedule = schedule }()
	f.post.codes = []int{500}
	var msgs []*webhook.Message
	for range n {
		m := f.publish(t, "v1.end_user.created")
		if _, err := f.svc.Attempt(context.Background(), webhook.Ref{AppID: f.app.ID, MsgID: m.ID, EndpointID: ep.ID}); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	f.clock.Advance(time.Minute)
	return msgs
}

// queue makes the fixture's Service.Go keep tasks instead of running them.
func (f *fixture) queue() *[]func(context.Context) {
	var queued []func(context.Context)
	f.svc.Go = func(task func(context.Context)) { queued = append(queued, task) }
	return &queued
}

func (f *fixture) task(t *testing.T, id string) (*webhook.Task, map[string]any) {
	t.Helper()
	task, err := f.store.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(task.Data, &data); err != nil {
		t.Fatalf("task data %s: %v", task.Data, err)
	}
	return task, data
}

// runs counts the messages by the run of their delivery to ep.
func (f *fixture) runs(t *testing.T, ep *webhook.Endpoint, msgs []*webhook.Message) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for _, m := range msgs {
		counts[f.delivery(t, m.ID, ep.ID).Run]++
	}
	return counts
}

func TestRecoverStoresARunningTaskAndWorksThroughGo(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t, nil)
	since := f.clock.Now()
	msgs := f.failed(t, ep, 2)
	queued := f.queue()

	task, err := f.svc.Recover(context.Background(), ep, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if task.Status != webhook.TaskRunning || task.Kind != webhook.TaskEndpointRecover || task.AppID != f.app.ID || task.EndpointID != ep.ID {
		t.Errorf("Recover returned %+v, want a running endpoint.recover task of the endpoint", task)
	}
	// The task is stored before any work is done, and the work waits for
	// Go.
	stored, data := f.task(t, task.ID)
	if stored.Status != webhook.TaskRunning || data["recovered"] != 0.0 {
		t.Errorf("stored task %+v, data %v; want running with recovered 0", stored, data)
	}
	if got := f.runs(t, ep, msgs); got[0] != 2 {
		t.Errorf("runs before the task ran: %v, want both messages untouched", got)
	}
	if len(*queued) != 1 {
		t.Fatalf("Recover handed %d tasks to Go, want 1", len(*queued))
	}

	(*queued)[0](context.Background())
	stored, data = f.task(t, task.ID)
	if stored.Status != webhook.TaskFinished || data["recovered"] != 2.0 {
		t.Errorf("task after its work: %s with data %v, want finished with recovered 2", stored.Status, data)
	}
	if data["since"] != since.Format(time.RFC3339Nano) || data["until"] != task.CreatedAt.Format(time.RFC3339Nano) {
		t.Errorf("task data %v, want the window since %v until its creation %v", data, since, task.CreatedAt)
	}
	if got := f.runs(t, ep, msgs); got[1] != 2 {
		t.Errorf("runs after the task ran: %v, want both messages in run 1", got)
	}
	if len(f.disp.refs) != 2+2 { // the two publishes, the two recovered runs
		t.Errorf("dispatched %d runs, want 4", len(f.disp.refs))
	}
}

// TestRunTaskResumesFromItsCursor: a worker that stops after its first
// page (its context ends: a Lambda's deadline, a shutdown) leaves the task
// running with its progress; running it again finishes it from there.
func TestRunTaskResumesFromItsCursor(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t, nil)
	since := f.clock.Now()
	msgs := f.failed(t, ep, webhook.MaxLimit+10) // two pages of attempts
	f.queue()
	task, err := f.svc.Recover(context.Background(), ep, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var progress []webhook.Task
	f.svc.TaskProgress = func(_ context.Context, t webhook.Task) {
		progress = append(progress, t)
		cancel()
	}
	if err := f.svc.RunTask(ctx, task.ID); err == nil {
		t.Fatal("RunTask whose context ended after the first page returned nil, want the error")
	}
	stored, data := f.task(t, task.ID)
	if stored.Status != webhook.TaskRunning || data["recovered"] != float64(webhook.MaxLimit) || len(progress) != 1 {
		t.Fatalf("task after the first page: %s with data %v (%d progress writes), want running with recovered %d",
			stored.Status, data, len(progress), webhook.MaxLimit)
	}
	if got := f.runs(t, ep, msgs); got[1] != webhook.MaxLimit {
		t.Errorf("runs after the first page: %v, want %d in run 1", got, webhook.MaxLimit)
	}

	if err := f.svc.RunTask(context.Background(), task.ID); err != nil {
		t.Fatalf("RunTask again: %v", err)
	}
	stored, data = f.task(t, task.ID)
	if stored.Status != webhook.TaskFinished || data["recovered"] != float64(len(msgs)) {
		t.Errorf("task after resuming: %s with data %v, want finished with recovered %d", stored.Status, data, len(msgs))
	}
	if got := f.runs(t, ep, msgs); got[1] != len(msgs) {
		t.Errorf("runs after resuming: %v, want every message in run 1 exactly", got)
	}

	// A finished task is done: running it again changes nothing.
	writes := len(progress)
	if err := f.svc.RunTask(context.Background(), task.ID); err != nil {
		t.Errorf("RunTask of a finished task: %v", err)
	}
	if again, _ := f.task(t, task.ID); !again.UpdatedAt.Equal(stored.UpdatedAt) || len(progress) != writes {
		t.Errorf("RunTask of a finished task wrote it (updated %v, was %v)", again.UpdatedAt, stored.UpdatedAt)
	}
}

// TestRunTaskTwiceAtOnce: a worker resumed while the first one still runs
// (a re-invoked Lambda) shares the work: no message gets two runs, and the
// worker whose progress write is stale stops without an error.
func TestRunTaskTwiceAtOnce(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t, nil)
	since := f.clock.Now()
	msgs := f.failed(t, ep, webhook.MaxLimit+10)
	f.queue()
	task, err := f.svc.Recover(context.Background(), ep, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	paused, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	f.svc.TaskProgress = func(context.Context, webhook.Task) {
		if calls.Add(1) == 1 { // the first worker, after its first page
			close(paused)
			<-release
		}
	}
	first := make(chan error, 1)
	go func() { first <- f.svc.RunTask(context.Background(), task.ID) }()
	<-paused
	if err := f.svc.RunTask(context.Background(), task.ID); err != nil {
		t.Fatalf("second worker: %v", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first worker, overtaken: got %v, want nil", err)
	}

	stored, data := f.task(t, task.ID)
	if stored.Status != webhook.TaskFinished || data["recovered"] != float64(len(msgs)) {
		t.Errorf("task: %s with data %v, want finished with recovered %d", stored.Status, data, len(msgs))
	}
	if got := f.runs(t, ep, msgs); got[1] != len(msgs) {
		t.Errorf("runs: %v, want every message in run 1 exactly", got)
	}
}

func TestRunTaskFailsWhenTheWorkCannotBeDone(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fixture, ep *webhook.Endpoint) error
		reason string
	}{
		{"endpoint deleted", func(f *fixture, ep *webhook.Endpoint) error {
			return f.store.DeleteEndpoint(context.Background(), f.app.ID, ep.ID)
		}, "the endpoint was deleted"},
		{"endpoint disabled", func(f *fixture, ep *webhook.Endpoint) error {
			ep.Disabled = true
			return f.store.UpdateEndpoint(context.Background(), ep, ep.UpdatedAt)
		}, "the endpoint was disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ep := f.endpoint(t, nil)
			since := f.clock.Now()
			f.failed(t, ep, 1)
			f.queue()
			task, err := f.svc.Recover(context.Background(), ep, since, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.change(f, ep); err != nil {
				t.Fatal(err)
			}
			if err := f.svc.RunTask(context.Background(), task.ID); err != nil {
				t.Fatalf("RunTask: %v", err)
			}
			stored, data := f.task(t, task.ID)
			if stored.Status != webhook.TaskFailed || data["error"] != tt.reason || data["recovered"] != 0.0 {
				t.Errorf("task: %s with data %v, want failed with error %q", stored.Status, data, tt.reason)
			}
		})
	}

	t.Run("unknown task", func(t *testing.T) {
		f := newFixture(t)
		err := f.svc.RunTask(context.Background(), webhook.NewID(webhook.PrefixTask))
		if !webhook.IsNotFound(err) {
			t.Errorf("RunTask(unknown id): got %v, want NotFound", err)
		}
	})
}

// TestResumeTasks: the running tasks a stopped process left are started
// again; tasks updated since are someone else's.
func TestResumeTasks(t *testing.T) {
	f := newFixture(t)
	ep := f.endpoint(t, nil)
	since := f.clock.Now()
	msgs := f.failed(t, ep, 3)
	queued := f.queue()
	left, err := f.svc.Recover(context.Background(), ep, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	restart := f.clock.Now().Add(time.Second)
	f.clock.Advance(2 * time.Second)
	current, err := f.svc.Recover(context.Background(), ep, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	*queued = nil

	f.svc.Go = nil // inline
	n, err := f.svc.ResumeTasks(context.Background(), restart)
	if err != nil || n != 1 {
		t.Fatalf("ResumeTasks = %d, %v; want 1 (the task left before the restart)", n, err)
	}
	if stored, data := f.task(t, left.ID); stored.Status != webhook.TaskFinished || data["recovered"] != 3.0 {
		t.Errorf("resumed task: %s with data %v, want finished with recovered 3", stored.Status, data)
	}
	if stored, _ := f.task(t, current.ID); stored.Status != webhook.TaskRunning {
		t.Errorf("task started after the restart: %s, want running, left alone", stored.Status)
	}
	if got := f.runs(t, ep, msgs); got[1] != 3 {
		t.Errorf("runs: %v, want every message in run 1", got)
	}
}
