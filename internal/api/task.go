package api

import (
	"encoding/json"
	"net/http"

	"github.com/hookstep/hookstep/internal/webhook"
)

// taskOut is BackgroundTaskOut. data is the task's JSON object as its
// worker wrote it ({} when it wrote none).
type taskOut struct {
	Data      json.RawMessage `json:"data"`
	ID        string          `json:"id"`
	Status    string          `json:"status"`
	Task      string          `json:"task"`
	UpdatedAt timestamp       `json:"updatedAt"`
}

func toTaskOut(t *webhook.Task) taskOut {
	data := t.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return taskOut{Data: data, ID: t.ID, Status: string(t.Status), Task: string(t.Kind), UpdatedAt: timestamp(t.UpdatedAt)}
}

// listTasks lists background tasks, newest first unless asked otherwise,
// filtered by status and task (a BackgroundTaskType: any of Svix's is
// accepted, although only endpoint.recover tasks exist). Admin only, as
// every route for now; tasks keep their app so that an app-scoped token
// can be limited to its own.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	f := webhook.TaskFilter{ListOptions: q.listOptions(false, isID(webhook.PrefixTask))}
	if st := webhook.TaskStatus(q.str("status")); st != "" {
		if !st.Valid() {
			p.Add(loc("query", "status"), "must be running, finished or failed")
		}
		f.Status = st
	}
	if k := webhook.TaskKind(q.str("task")); k != "" {
		if !k.Valid() {
			p.Add(loc("query", "task"), "not a background task type")
		}
		f.Kind = k
	}
	if err := p.Err(); err != nil {
		return err
	}
	page, err := s.store.ListTasks(r.Context(), f)
	if err != nil {
		return err
	}
	return writeList(s, w, r, f.ListOptions, page, func(t *webhook.Task) string { return t.ID }, each(toTaskOut))
}

// getTask answers one background task; an id that is not one is a 404,
// as an unknown one.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("task_id")
	if !isID(webhook.PrefixTask)(id) {
		return errNotFound("Background task")
	}
	t, err := s.store.GetTask(r.Context(), id)
	if webhook.IsNotFound(err) {
		return errNotFound("Background task")
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, toTaskOut(t))
	return nil
}
