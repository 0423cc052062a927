package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// BeginIdempotent implements webhook.Store. A claim from before the
// claimed_at column (NULL) counts as stale.
//
// Idempotency keys are quiet writes (quietTx), as are FinishIdempotent's
// and ReleaseIdempotent's: no attempt or fan-out reads them.
func (s *Store) BeginIdempotent(ctx context.Context, key, resource string, expiresAt, staleBefore time.Time) (*webhook.IdempotencyRecord, error) {
	var rec *webhook.IdempotencyRecord
	err := s.quietTx(ctx, func(tx querier) error {
		rec = nil // fn may run twice (inTx), and only one branch sets it
		now := s.clock.Now()
		r, err := readIdempotency(ctx, tx, key)
		switch {
		case err == nil && r.ExpiresAt.After(now) && (r.Done || r.Resource != "" || !r.ClaimedAt.IsZero() && !r.ClaimedAt.Before(staleBefore)):
			rec = &r
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		// Free, expired, or claimed by a request that died: claim it.
		return claimIdempotency(ctx, tx, key, resource, now, expiresAt)
	})
	if err != nil {
		return nil, wrap("begin idempotent", err)
	}
	return rec, nil
}

// readIdempotency reads key's record, live or not; sql.ErrNoRows if it
// has none.
func readIdempotency(ctx context.Context, tx querier, key string) (webhook.IdempotencyRecord, error) {
	r := webhook.IdempotencyRecord{Key: key}
	var res sql.NullString
	err := tx.QueryRowContext(ctx, "SELECT done, status_code, body, claimed_at, expires_at, resource FROM idempotency WHERE key = ?", key).
		Scan(&r.Done, &r.StatusCode, &r.Body, nullTime{&r.ClaimedAt}, nullTime{&r.ExpiresAt}, &res)
	r.Resource = res.String
	return r, err
}

// claimIdempotency stores an unfinished claim of key made now, naming
// resource (none when empty), replacing any record the key had.
func claimIdempotency(ctx context.Context, tx querier, key, resource string, now, expiresAt time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO idempotency (key, done, status_code, body, claimed_at, expires_at, resource)
		VALUES (?, 0, 0, NULL, ?, ?, ?)`, key, now.UnixMilli(), expiresAt.UnixMilli(), sql.NullString{String: resource, Valid: resource != ""})
	return err
}

// FinishIdempotent implements webhook.Store; NotFound if the key has no
// record.
func (s *Store) FinishIdempotent(ctx context.Context, key string, statusCode int, body []byte) error {
	if body == nil {
		body = []byte{} // NULL marks a record without a response
	}
	n, err := rowsAffected(s.quietExec(ctx, "UPDATE idempotency SET done = 1, status_code = ?, body = ? WHERE key = ?",
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
	_, err := s.quietExec(ctx, "DELETE FROM idempotency WHERE key = ?", key)
	return wrap("release idempotent", err)
}
