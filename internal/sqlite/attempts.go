package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

const attemptCols = `id, app_id, msg_id, endpoint_id, event_type, url, response, response_status_code,
	response_duration_ms, status, trigger_type, timestamp, expires_at`

func scanAttempt(sc scanner) (webhook.Attempt, error) {
	var a webhook.Attempt
	err := sc.Scan(&a.ID, &a.AppID, &a.MsgID, &a.EndpointID, &a.EventType, &a.URL, &a.Response,
		&a.ResponseStatusCode, &a.ResponseDurationMs, &a.Status, &a.Trigger, nullTime{&a.Timestamp}, nullTime{&a.ExpiresAt})
	return a, err
}

// RecordAttempt implements webhook.Store. Advancing the delivery, storing
// the attempt and updating the endpoint's health happen in one
// transaction, so two results for the same attempt cannot both apply and
// a concurrent DisableEndpoint sees either none or all of it.
//
// The delivery is advanced by one UPDATE conditional on the state the
// attempt was made from (RETURNING the new row); only when that matches
// nothing is the delivery read, to return it unchanged or report it
// missing.
func (s *Store) RecordAttempt(ctx context.Context, res webhook.AttemptResult) (*webhook.Delivery, error) {
	a := res.Attempt
	var d *webhook.Delivery
	err := s.inTx(ctx, func(tx querier) error {
		advanced, err := scanDelivery(tx.QueryRowContext(ctx, `UPDATE deliveries
			SET status = ?, attempts = ?, next_attempt_at = ?, claim = 0, updated_at = ?
			WHERE msg_id = ? AND endpoint_id = ? AND app_id = ? AND run = ? AND attempts = ? AND `+unfinished+`
			RETURNING `+deliveryCols,
			res.Status, res.Attempts, ms(res.NextAttemptAt), ms(a.Timestamp),
			a.MsgID, a.EndpointID, a.AppID, res.Run, res.Attempts-1))
		switch {
		case err == nil:
			d = &advanced
		case errors.Is(err, sql.ErrNoRows):
			// Moved on (other run, final, other attempt count), or gone.
			if d, err = getDelivery(ctx, tx, a.AppID, a.MsgID, a.EndpointID); err != nil {
				return err
			}
		default:
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO attempts ("+attemptCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			a.ID, a.AppID, a.MsgID, a.EndpointID, a.EventType, a.URL, a.Response, a.ResponseStatusCode,
			a.ResponseDurationMs, a.Status, a.Trigger, ms(a.Timestamp), ms(a.ExpiresAt))
		if isUnique(err) {
			return webhook.Conflict("attempt %s already exists", a.ID)
		}
		if err != nil {
			return err
		}

		// The request reached (or failed to reach) the endpoint whatever
		// became of the delivery, so its health follows the attempt.
		if a.Status == webhook.StatusSuccess {
			_, err = tx.ExecContext(ctx, `UPDATE endpoints SET failing_since = NULL
				WHERE app_id = ? AND id = ? AND failing_since IS NOT NULL`, a.AppID, a.EndpointID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE endpoints SET failing_since = ?
				WHERE app_id = ? AND id = ? AND failing_since IS NULL`, ms(a.Timestamp), a.AppID, a.EndpointID)
		}
		return err
	})
	if err != nil {
		return nil, wrap("record attempt", err)
	}
	return d, nil
}

// ExpungeAttemptContent implements webhook.Store.
func (s *Store) ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error {
	n, err := rowsAffected(s.exec(ctx, `UPDATE attempts SET response = ?
		WHERE id = ? AND app_id = ? AND msg_id = ? AND `+visible, webhook.ExpungedResponse, attemptID, appID, msgID, s.now()))
	if err != nil {
		return wrap("expunge attempt content", err)
	}
	if n == 0 {
		return webhook.NotFound("attempt %s not found", attemptID)
	}
	return nil
}

// GetAttempt implements webhook.Store.
func (s *Store) GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*webhook.Attempt, error) {
	row := s.r.QueryRowContext(ctx, "SELECT "+attemptCols+` FROM attempts
		WHERE id = ? AND app_id = ? AND msg_id = ? AND `+visible, attemptID, appID, msgID, s.now())
	a, err := scanAttempt(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("attempt %s not found", attemptID)
	}
	if err != nil {
		return nil, wrap("get attempt", err)
	}
	return &a, nil
}

// ListAttempts implements webhook.Store.
func (s *Store) ListAttempts(ctx context.Context, f webhook.AttemptFilter) (webhook.Page[webhook.Attempt], error) {
	q := query{from: attemptCols + " FROM attempts"}
	q.and("app_id = ?", f.AppID)
	if f.EndpointID != "" {
		q.and("endpoint_id = ?", f.EndpointID)
	}
	if f.MsgID != "" {
		q.and("msg_id = ?", f.MsgID)
	}
	q.and(visible, s.now())
	if f.Status != nil {
		q.and("status = ?", *f.Status)
	}
	if f.StatusCodeClass != nil {
		class := *f.StatusCodeClass
		q.and("response_status_code >= ? AND response_status_code < ?", class, class+100)
	}
	in(&q, "event_type", f.EventTypes)
	if !f.Before.IsZero() {
		q.and("timestamp < ?", f.Before.UnixMilli())
	}
	if !f.After.IsZero() {
		q.and("timestamp > ?", f.After.UnixMilli())
	}
	p, err := list(ctx, s.r, q, "id", f.ListOptions, scanAttempt)
	return p, wrap("list attempts", err)
}

// ListFailingEndpoints implements webhook.Store, longest failing first.
func (s *Store) ListFailingEndpoints(ctx context.Context, failingSince time.Time, limit int) ([]webhook.Endpoint, error) {
	if limit <= 0 {
		return nil, nil // SQLite reads a negative LIMIT as none
	}
	eps, err := collect(ctx, s.r, "SELECT "+endpointCols+` FROM endpoints
		WHERE disabled = 0 AND failing_since IS NOT NULL AND failing_since <= ?
		ORDER BY failing_since, id LIMIT ?`,
		[]any{failingSince.UnixMilli(), limit}, scanEndpoint)
	return eps, wrap("list failing endpoints", err)
}

// DisableEndpoint implements webhook.Store; NotFound if the endpoint does
// not exist. updated_at moves on as webhook.NextUpdatedAt says (NULL, the
// zero time, reads as 0).
func (s *Store) DisableEndpoint(ctx context.Context, appID, id string, failingSince, now time.Time) error {
	err := s.inTx(ctx, func(tx querier) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE endpoints
			SET disabled = 1, disabled_at = ?, disabled_why = ?, updated_at = MAX(?, COALESCE(updated_at, 0) + 1)
			WHERE app_id = ? AND id = ? AND disabled = 0 AND failing_since IS ?`,
			ms(now), webhook.DisabledFailing, now.UnixMilli(), appID, id, ms(failingSince)))
		if err != nil || n > 0 {
			return err
		}
		var disabled bool
		err = tx.QueryRowContext(ctx, "SELECT disabled FROM endpoints WHERE app_id = ? AND id = ?", appID, id).Scan(&disabled)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return webhook.NotFound("endpoint %s not found", id)
		case err != nil:
			return err
		case disabled:
			return webhook.Conflict("endpoint %s is already disabled", id)
		}
		return webhook.Conflict("endpoint %s is no longer failing since %s", id, failingSince.Format(time.RFC3339Nano))
	})
	return wrap("disable endpoint", err)
}

// BeginIdempotent implements webhook.Store. A claim from before the
// claimed_at column (NULL) counts as stale.
func (s *Store) BeginIdempotent(ctx context.Context, key, resource string, expiresAt, staleBefore time.Time) (*webhook.IdempotencyRecord, error) {
	var rec *webhook.IdempotencyRecord
	err := s.inTx(ctx, func(tx querier) error {
		now := s.clock.Now()
		r := webhook.IdempotencyRecord{Key: key}
		var res sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT done, status_code, body, claimed_at, expires_at, resource FROM idempotency WHERE key = ?", key).
			Scan(&r.Done, &r.StatusCode, &r.Body, nullTime{&r.ClaimedAt}, nullTime{&r.ExpiresAt}, &res)
		r.Resource = res.String
		switch {
		case err == nil && r.ExpiresAt.After(now) && (r.Done || r.Resource != "" || !r.ClaimedAt.IsZero() && !r.ClaimedAt.Before(staleBefore)):
			rec = &r
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		// Free, expired, or claimed by a request that died: claim it.
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO idempotency (key, done, status_code, body, claimed_at, expires_at, resource)
			VALUES (?, 0, 0, NULL, ?, ?, ?)`, key, now.UnixMilli(), expiresAt.UnixMilli(), sql.NullString{String: resource, Valid: resource != ""})
		return err
	})
	if err != nil {
		return nil, wrap("begin idempotent", err)
	}
	return rec, nil
}

// FinishIdempotent implements webhook.Store; NotFound if the key has no
// record.
func (s *Store) FinishIdempotent(ctx context.Context, key string, statusCode int, body []byte) error {
	if body == nil {
		body = []byte{} // NULL marks a record without a response
	}
	n, err := rowsAffected(s.exec(ctx, "UPDATE idempotency SET done = 1, status_code = ?, body = ? WHERE key = ?",
		statusCode, body, key))
	if err != nil {
		return wrap("finish idempotent", err)
	}
	if n == 0 {
		return webhook.NotFound("idempotency key %q not found", key)
	}
	return nil
}

// ReleaseIdempotent implements webhook.Store.
func (s *Store) ReleaseIdempotent(ctx context.Context, key string) error {
	_, err := s.exec(ctx, "DELETE FROM idempotency WHERE key = ?", key)
	return wrap("release idempotent", err)
}
