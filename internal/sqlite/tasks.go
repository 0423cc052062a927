package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

const taskCols = `id, app_id, endpoint_id, kind, status, data, state, created_at, updated_at, expires_at`

func scanTask(sc scanner) (webhook.Task, error) {
	var t webhook.Task
	var data, state []byte
	err := sc.Scan(&t.ID, &t.AppID, &t.EndpointID, &t.Kind, &t.Status, bytesCol{&data}, bytesCol{&state},
		nullTime{&t.CreatedAt}, nullTime{&t.UpdatedAt}, nullTime{&t.ExpiresAt})
	t.Data, t.State = data, state
	return t, err
}

// CreateTask implements webhook.Store. A request waits on it (recover
// answers with the task), so it commits ahead of the writes queued with
// it.
func (s *Store) CreateTask(ctx context.Context, t *webhook.Task) error {
	err := s.inTxFirst(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO tasks ("+taskCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			t.ID, t.AppID, t.EndpointID, string(t.Kind), string(t.Status), []byte(t.Data), []byte(t.State),
			ms(t.CreatedAt), ms(t.UpdatedAt), ms(t.ExpiresAt))
		if isUnique(err) {
			return webhook.Conflict("task %s already exists", t.ID)
		}
		return err
	})
	return wrap("create task", err)
}

// GetTask implements webhook.Store.
func (s *Store) GetTask(ctx context.Context, id string) (*webhook.Task, error) {
	t, err := scanTask(s.r.QueryRowContext(ctx, "SELECT "+taskCols+" FROM tasks WHERE id = ? AND "+visible, id, s.now()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("task %s not found", id)
	}
	if err != nil {
		return nil, wrap("get task", err)
	}
	return &t, nil
}

// UpdateTask implements webhook.Store: one conditional UPDATE, and on a
// miss a read that tells NotFound from ErrStale.
func (s *Store) UpdateTask(ctx context.Context, t *webhook.Task, ifUpdatedAt time.Time) error {
	updatedAt := webhook.NextUpdatedAt(ifUpdatedAt, t.UpdatedAt)
	err := s.inTx(ctx, func(tx querier) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE tasks SET status = ?, data = ?, state = ?, updated_at = ?
			WHERE id = ? AND updated_at IS ? AND `+visible,
			string(t.Status), []byte(t.Data), []byte(t.State), ms(updatedAt), t.ID, ms(ifUpdatedAt), s.now()))
		if err != nil || n > 0 {
			return err
		}
		return missingOrStale(ctx, tx, "task", "SELECT 1 FROM tasks WHERE "+visible+" AND id = ?", s.now(), t.ID)
	})
	if err != nil {
		return wrap("update task", err)
	}
	t.UpdatedAt = updatedAt
	return nil
}

// ListTasks implements webhook.Store.
func (s *Store) ListTasks(ctx context.Context, f webhook.TaskFilter) (webhook.Page[webhook.Task], error) {
	q := query{from: taskCols + " FROM tasks"}
	q.and(visible, s.now())
	if f.AppID != "" {
		q.and("app_id = ?", f.AppID)
	}
	if f.Status != "" {
		q.and("status = ?", string(f.Status))
	}
	if f.Kind != "" {
		q.and("kind = ?", string(f.Kind))
	}
	p, err := list(ctx, s.r, q, "id", f.ListOptions, scanTask)
	return p, wrap("list tasks", err)
}
