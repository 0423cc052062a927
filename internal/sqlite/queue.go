package sqlite

import (
	"context"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// ClaimDue takes up to limit deliveries that are due at now — pending or
// sending, NextAttemptAt not after now — oldest NextAttemptAt first, and
// returns their current runs. Claiming pushes each one's NextAttemptAt to
// now+lease, so no other call claims it meanwhile, and a worker that dies
// holding it only delays it by the lease: the row itself is the durable
// queue entry. RecordAttempt, FinishDelivery or CancelDeliveries then
// settle the claimed run. The Dispatched flag plays no part here.
//
// Deliveries due at the same millisecond come in the order they were
// stored (rowid): that is the order of the deliveries_due index, so the
// query reads limit rows however long the queue is, where sorting on
// other columns would read every due row first.
//
// Two statements do it, in one write transaction: a SELECT of the due
// runs in that order, and one UPDATE of the rows it selected, by rowid.
// (UPDATE ... RETURNING alone would return them in no particular order.)
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error) {
	if limit <= 0 {
		return nil, nil // SQLite reads a negative LIMIT as none
	}
	var refs []webhook.Ref
	err := s.inTx(ctx, func(tx querier) error {
		args := []any{now.Add(lease).UnixMilli()} // then the rowids
		var err error
		refs, err = collect(ctx, tx, `SELECT rowid, app_id, msg_id, endpoint_id, run FROM deliveries
			WHERE `+unfinished+` AND next_attempt_at <= ?
			ORDER BY next_attempt_at, rowid LIMIT ?`,
			[]any{now.UnixMilli(), limit}, func(sc scanner) (webhook.Ref, error) {
				var ref webhook.Ref
				var rowid int64
				err := sc.Scan(&rowid, &ref.AppID, &ref.MsgID, &ref.EndpointID, &ref.Run)
				args = append(args, rowid)
				return ref, err
			})
		if err != nil || len(refs) == 0 {
			return err
		}
		// The list is padded to a power of two with the last rowid
		// again, so that a handful of statements, each prepared once,
		// serve every batch size.
		n := 1
		for n < len(refs) {
			n *= 2
		}
		for len(args) <= n {
			args = append(args, args[len(args)-1])
		}
		_, err = tx.ExecContext(ctx, "UPDATE deliveries SET next_attempt_at = ? WHERE rowid IN ("+placeholders(n)+")", args...)
		return err
	})
	if err != nil {
		return nil, wrap("claim due", err)
	}
	return refs, nil
}

// Release makes claimed runs due at now again: a queue that stops gives
// back what it claimed and did not attempt, so that they need not wait for
// their lease after a restart. A run that was settled or superseded
// meanwhile is left alone.
func (s *Store) Release(ctx context.Context, refs []webhook.Ref, now time.Time) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx querier) error {
		for _, r := range refs {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?
				WHERE msg_id = ? AND endpoint_id = ? AND app_id = ? AND run = ? AND `+unfinished+` AND next_attempt_at > ?`,
				ms(now), r.MsgID, r.EndpointID, r.AppID, r.Run, ms(now)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("release", err)
}

// NextDue returns the earliest NextAttemptAt of a pending or sending
// delivery, and false when there is none, so that a worker can sleep until
// then.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next time.Time
	err := s.r.QueryRowContext(ctx, "SELECT MIN(next_attempt_at) FROM deliveries WHERE "+unfinished).Scan(nullTime{&next})
	if err != nil {
		return time.Time{}, false, wrap("next due", err)
	}
	return next, !next.IsZero(), nil
}

// PurgeExpired deletes what expired at now: up to limit messages (their
// deliveries and attempts go with them), up to limit further attempts, and
// up to limit idempotency records. It returns how many messages, attempts
// and idempotency records it deleted, not counting the rows that went with
// a message; call it until it returns 0 to purge everything.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil // SQLite reads a negative LIMIT as none
	}
	var total int64
	err := s.inTx(ctx, func(tx querier) error {
		at := now.UnixMilli()
		for _, stmt := range []string{
			"DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE expires_at <= ? LIMIT ?)",
		} {
			n, err := rowsAffected(tx.ExecContext(ctx, stmt, at, limit))
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, wrap("purge expired", err)
	}
	return int(total), nil
}
