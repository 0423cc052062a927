package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// A background task is stored before its work starts, so that its id can
// be polled at once, and its work is resumable: RunTask goes on from the
// cursor in the task's State, writing progress after each page of work,
// so that a worker that died (a Lambda timeout, a crash, a restart) is
// replaced by running the task again by id. Progress writes are
// optimistic (Store.UpdateTask): when two workers run one task, the one
// whose write is refused stops, and the other goes on.

// recoverState is the State of a recover task: its window and how far
// its worker got.
type recoverState struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Cursor is the id of the last failed attempt whose page was done;
	// the work goes on after it. Empty before the first page.
	Cursor string `json:"cursor,omitempty"`
}

// recoverData is the Data of a recover task, as clients see it
// (BackgroundTaskOut.data; Svix does not document its keys): the window,
// how many messages it has re-sent so far, and why it failed, if it did.
type recoverData struct {
	Recovered int       `json:"recovered"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Error     string    `json:"error,omitempty"`
}

// Recover re-sends, as new manual runs, the messages whose attempts to ep
// in [since, until) failed and whose delivery there has not succeeded
// since (its status is Fail or Canceled: messages still being retried are
// left to their schedule). A zero until means now.
//
// It stores a running endpoint.recover task and returns it; the work is
// RunTask's, through Service.Go (inline when Go is nil, within ctx).
// BadRequest if ep is disabled.
func (s *Service) Recover(ctx context.Context, ep *webhook.Endpoint, since, until time.Time) (webhook.Task, error) {
	if ep.Disabled {
		return webhook.Task{}, webhook.BadRequest("generic_error", "endpoint %s is disabled; enable it before recovering", ep.ID)
	}
	now := s.Clock.Now()
	if until.IsZero() {
		// Pinned, so that a resumed worker reads the same window, and
		// the attempts of the runs it starts are not in it.
		until = now
	}
	state, err := json.Marshal(recoverState{Since: since, Until: until})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: recover %s: %w", ep.ID, err)
	}
	data, err := json.Marshal(recoverData{Since: since, Until: until})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: recover %s: %w", ep.ID, err)
	}
	task := webhook.Task{
		ID: webhook.NewID(webhook.PrefixTask), AppID: ep.AppID, EndpointID: ep.ID,
		Kind: webhook.TaskEndpointRecover, Status: webhook.TaskRunning, Data: data, State: state,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(webhook.TaskRetention),
	}
	if err := s.Store.CreateTask(ctx, &task); err != nil {
		return webhook.Task{}, err
	}
	s.startTask(ctx, task.ID)
	return task, nil
}

// startTask hands a stored task to HandTask, or runs it through Go
// (inline when Go is nil) and logs how it ended.
func (s *Service) startTask(ctx context.Context, id string) {
	if s.HandTask != nil {
		if err := s.HandTask(ctx, id); err != nil {
			s.Logger.Warn("task not handed to a worker; the sweeper resumes it", "task_id", id, "err", err)
		}
		return
	}
	run := func(ctx context.Context) {
		err := s.RunTask(ctx, id)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			s.Logger.Info("task interrupted; running it again resumes it", "task_id", id, "err", err)
		default:
			s.Logger.Error("task stopped; running it again resumes it", "task_id", id, "err", err)
		}
	}
	if s.Go != nil {
		s.Go(run)
	} else {
		run(ctx)
	}
}

// ResumeTasks starts again, as Recover does, every running task last
// updated before staleBefore: tasks whose worker stopped or died (local
// mode calls it at start, for the tasks the previous process left). It
// returns how many it started.
func (s *Service) ResumeTasks(ctx context.Context, staleBefore time.Time) (int, error) {
	f := webhook.TaskFilter{Status: webhook.TaskRunning, ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}}
	var ids []string
	for {
		page, err := s.Store.ListTasks(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, t := range page.Items {
			if t.UpdatedAt.Before(staleBefore) {
				ids = append(ids, t.ID)
			}
		}
		if !page.More || len(page.Items) == 0 {
			break
		}
		f.Cursor = page.Items[len(page.Items)-1].ID
	}
	for _, id := range ids {
		s.startTask(ctx, id)
	}
	return len(ids), nil
}

// RunTask does the work of the stored task id, or what is left of it: it
// reads the task, goes on from the cursor in its State, stores its
// progress (Data and State) after each page of work, and ends it finished
// or, when the work cannot be done (the endpoint was deleted or disabled,
// the State cannot be read), failed with the reason in Data. A task that
// is no longer running is left alone.
//
// It is safe to call again with the same id after it returned an error
// or its process died (a page may then be processed twice, which starts
// no run twice: a message is re-sent only while its delivery has ended
// without success), and while another call runs it: the call whose
// progress write is refused as stale returns nil and leaves the task to
// the other. An error means the work stopped on a store failure (or ctx):
// the task stays running with its last cursor, for the next call. NotFound
// if the task does not exist or has expired.
func (s *Service) RunTask(ctx context.Context, id string) error {
	t, err := s.Store.GetTask(ctx, id)
	if err != nil {
		return err
	}
	if t.Status != webhook.TaskRunning {
		return nil
	}
	switch t.Kind {
	case webhook.TaskEndpointRecover:
		err = s.runRecover(ctx, t)
	case webhook.TaskAppStats:
		err = s.runAppStats(ctx, t)
	case webhook.TaskEventTypeAggregate:
		err = s.runEventTypes(ctx, t)
	default:
		t.Data, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("hookstep does not run %s tasks", t.Kind)})
		err = s.saveTask(ctx, t, webhook.TaskFailed)
	}
	if errors.Is(err, webhook.ErrStale) {
		s.Logger.Info("task taken over by another worker", "task_id", id)
		return nil
	}
	return err
}

// saveTask stores the task's Data and State with the status, on
// condition that it has not changed since it was read (ErrStale).
func (s *Service) saveTask(ctx context.Context, t *webhook.Task, status webhook.TaskStatus) error {
	prev := t.UpdatedAt
	t.Status = status
	t.UpdatedAt = s.Clock.Now()
	if err := s.Store.UpdateTask(ctx, t, prev); err != nil {
		return err
	}
	if s.TaskProgress != nil {
		s.TaskProgress(ctx, *t)
	}
	if status != webhook.TaskRunning {
		// Only the worker whose write ended the task gets here.
		s.Operational.TaskFinished(ctx, t)
	}
	return nil
}

// runRecover does a recover task's work: it pages through the failed
// attempts to the endpoint in the window, by attempt id from the cursor,
// and starts a manual run of each message whose delivery ended without
// success, dispatching the page's runs together; then it stores the page's
// progress.
//
// recovered counts the runs this task started. A page cut short by an
// error has started runs that its progress does not count, and the page
// done again skips them (their deliveries are pending by then): after such
// a resumption the count can fall short, never the re-sending.
func (s *Service) runRecover(ctx context.Context, t *webhook.Task) error {
	var st recoverState
	var data recoverData
	save := func(status webhook.TaskStatus) error { return s.saveTaskProgress(ctx, t, st, data, status) }
	fail := func(why string) error {
		data.Error = why
		s.Logger.Warn("recover failed", "task_id", t.ID, "endpoint_id", t.EndpointID, "recovered", data.Recovered, "reason", why)
		return save(webhook.TaskFailed)
	}
	if err := json.Unmarshal(t.State, &st); err != nil {
		return fail("the task's state cannot be read")
	}
	if err := json.Unmarshal(t.Data, &data); err != nil {
		data = recoverData{Since: st.Since, Until: st.Until}
	}
	ep, err := s.Store.GetEndpoint(ctx, t.AppID, t.EndpointID)
	if webhook.IsNotFound(err) {
		return fail("the endpoint was deleted")
	}
	if err != nil {
		return err
	}
	if ep.Disabled {
		return fail("the endpoint was disabled")
	}

	failed := webhook.StatusFail
	f := webhook.AttemptFilter{
		ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true, Cursor: st.Cursor},
		AppID:       ep.AppID,
		EndpointID:  ep.ID,
		Status:      &failed,
		After:       st.Since.Add(-time.Nanosecond), // After is exclusive; since is not
		Before:      st.Until,
	}
	seen := map[string]bool{} // a message has an attempt per retry
	for {
		page, err := s.Store.ListAttempts(ctx, f)
		if err != nil {
			return err
		}
		var refs []webhook.Ref
		for _, a := range page.Items {
			if seen[a.MsgID] {
				continue
			}
			seen[a.MsgID] = true
			ref, ok, err := s.recoverOne(ctx, ep, a.MsgID)
			if err != nil {
				s.dispatchAll(ctx, refs)
				return err
			}
			if ok {
				refs = append(refs, ref)
			}
		}
		s.dispatchAll(ctx, refs)
		data.Recovered += len(refs)
		status := webhook.TaskRunning
		if len(page.Items) > 0 {
			st.Cursor = page.Items[len(page.Items)-1].ID
		}
		if !page.More || len(page.Items) == 0 {
			status = webhook.TaskFinished
		}
		if err := save(status); err != nil {
			return err
		}
		if status == webhook.TaskFinished {
			s.Logger.Info("recover finished", "task_id", t.ID, "endpoint_id", ep.ID, "recovered", data.Recovered)
			return nil
		}
		f.Cursor = st.Cursor
	}
}

// recoverOne starts a manual run of one message to ep if its delivery
// there ended without success, and returns the run for dispatch. A
// delivery that is pending, sending or delivered (a page done again, a
// second recover of the message) is left alone.
func (s *Service) recoverOne(ctx context.Context, ep *webhook.Endpoint, msgID string) (webhook.Ref, bool, error) {
	d, err := s.Store.GetDelivery(ctx, ep.AppID, msgID, ep.ID)
	if webhook.IsNotFound(err) {
		return webhook.Ref{}, false, nil
	}
	if err != nil {
		return webhook.Ref{}, false, err
	}
	if d.Status != webhook.StatusFail && d.Status != webhook.StatusCanceled {
		return webhook.Ref{}, false, nil
	}
	msg, err := s.Store.GetMessage(ctx, ep.AppID, msgID)
	if webhook.IsNotFound(err) {
		return webhook.Ref{}, false, nil // expired meanwhile
	}
	if err != nil {
		return webhook.Ref{}, false, err
	}
	if msg.Expunged() {
		return webhook.Ref{}, false, nil // nothing left to send
	}
	run, err := s.Store.StartRun(ctx, msg, ep.ID, s.Clock.Now())
	if err != nil {
		return webhook.Ref{}, false, err
	}
	return run.Ref(), true, nil
}

// saveTaskProgress stores t with status and its progress: data (what the
// task shows) and st (where it resumes).
func (s *Service) saveTaskProgress(ctx context.Context, t *webhook.Task, st, data any, status webhook.TaskStatus) error {
	var err error
	if t.Data, err = json.Marshal(data); err != nil {
		return fmt.Errorf("delivery: task %s: %w", t.ID, err)
	}
	if t.State, err = json.Marshal(st); err != nil {
		return fmt.Errorf("delivery: task %s: %w", t.ID, err)
	}
	return s.saveTask(ctx, t, status)
}
