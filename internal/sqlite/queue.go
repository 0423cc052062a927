package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// The claim column says who holds an unfinished delivery, and so what
// its next_attempt_at means.
const (
	// unclaimed: nobody; next_attempt_at is when its attempt is due.
	unclaimed = 0
	// claimed: a worker of the running process (ClaimDue, ClaimWaiting,
	// or a new message's delivery handed to the queue in memory, see
	// webhook.Delivery.Claimed); next_attempt_at is when the claim ends,
	// and the delivery is due again then should the worker be gone.
	claimed = 1
	// waiting: due, it waits for a slot of its endpoint (Wait); only
	// ClaimWaiting takes it, so that a backlog to one endpoint is not
	// claimed and put back at every turn.
	waiting = 2
)

// due is the condition on deliveries that ClaimDue and NextDue look at:
// unfinished and not waiting for their endpoint. It is the WHERE clause of
// the deliveries_due index, written out so that SQLite uses that index.
var due = unfinished + " AND claim < 2"

// claimCol reads the claim column into webhook.Delivery.Claimed.
type claimCol struct{ claimed *bool }

// Scan implements sql.Scanner.
func (c claimCol) Scan(v any) error {
	var n sql.NullInt64
	if err := n.Scan(v); err != nil {
		return err
	}
	*c.claimed = n.Int64 == claimed
	return nil
}

// claimOf is the claim column of a delivery written as d says.
func claimOf(d *webhook.Delivery) int {
	if d.Claimed {
		return claimed
	}
	return unclaimed
}

// ClaimDue takes up to limit deliveries that are due at now — pending or
// sending, NextAttemptAt not after now, not waiting for their endpoint —
// oldest NextAttemptAt first, and returns their current runs. Claiming
// pushes each one's NextAttemptAt to now+lease, so no other call claims it
// meanwhile, and a worker that dies holding it only delays it by the
// lease (or until the next start, see ReleaseClaims): the row itself is
// the durable queue entry. RecordAttempt, FinishDelivery or
// CancelDeliveries then settle the claimed run. The Dispatched flag plays
// no part here.
//
// Deliveries due at the same millisecond come in the order they were
// stored (rowid): that is the order of the deliveries_due index, so the
// query reads limit rows however long the queue is, where sorting on
// other columns would read every due row first.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error) {
	refs, err := s.claim(ctx, now.Add(lease), limit,
		"WHERE "+due+" AND next_attempt_at <= ?", now.UnixMilli())
	return refs, wrap("claim due", err)
}

// ClaimWaiting is ClaimDue for the deliveries to one endpoint that wait
// for a slot of it (see Wait), the longest waiting first.
func (s *Store) ClaimWaiting(ctx context.Context, endpointID string, now time.Time, lease time.Duration, limit int) ([]webhook.Ref, error) {
	refs, err := s.claim(ctx, now.Add(lease), limit,
		"WHERE "+unfinished+" AND claim = 2 AND endpoint_id = ?", endpointID)
	return refs, wrap("claim waiting", err)
}

// claim claims up to limit deliveries matching where (with its argument
// arg) until until, in the order of next_attempt_at and rowid. Two
// statements do it, in one write transaction: a SELECT of the runs in
// that order, and one UPDATE of the rows it selected, by rowid. (UPDATE
// ... RETURNING alone would return them in no particular order.)
func (s *Store) claim(ctx context.Context, until time.Time, limit int, where string, arg any) ([]webhook.Ref, error) {
	if limit <= 0 {
		return nil, nil // SQLite reads a negative LIMIT as none
	}
	var refs []webhook.Ref
	err := s.quietTx(ctx, func(tx querier) error {
		args := []any{until.UnixMilli()} // then the rowids
		var err error
		refs, err = collect(ctx, tx, `SELECT rowid, app_id, msg_id, endpoint_id, run FROM deliveries
			`+where+` ORDER BY next_attempt_at, rowid LIMIT ?`,
			[]any{arg, limit}, func(sc scanner) (webhook.Ref, error) {
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
		_, err = tx.ExecContext(ctx, "UPDATE deliveries SET next_attempt_at = ?, claim = 1 WHERE rowid IN ("+placeholders(n)+")", args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return refs, nil
}

// Wait makes deliveries to the endpoint wait, due, for a slot of it: the
// claimed runs of claims, which maps each to the end of its claim (a queue
// whose slots for the endpoint are all taken puts them back), and every
// delivery to it that is due at now and not claimed, so that ClaimDue
// stops reading past the endpoint's backlog. Only ClaimWaiting takes them
// then, as the endpoint's slots free. A run claimed again since (its claim
// ran out), settled or superseded is left alone.
func (s *Store) Wait(ctx context.Context, endpointID string, claims map[webhook.Ref]time.Time, now time.Time) error {
	err := s.quietTx(ctx, func(tx querier) error {
		for r, until := range claims {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET claim = 2, next_attempt_at = ?
				WHERE msg_id = ? AND endpoint_id = ? AND app_id = ? AND run = ? AND `+unfinished+`
				AND claim = 1 AND next_attempt_at = ?`,
				ms(now), r.MsgID, r.EndpointID, r.AppID, r.Run, ms(until)); err != nil {
				return err
			}
		}
		// Through the due index: the endpoint's own would read every
		// delivery it ever had.
		_, err := tx.ExecContext(ctx, `UPDATE deliveries INDEXED BY deliveries_due SET claim = 2
			WHERE `+due+` AND next_attempt_at <= ? AND endpoint_id = ?`, ms(now), endpointID)
		return err
	})
	return wrap("wait", err)
}

// ReleaseClaims makes every claimed delivery due at now and every waiting
// one plain due, and returns how many it changed. Call it at start, before
// any worker runs, and only when no other process can hold claims (local
// mode's data-dir lock): claims that a process left behind, by a crash or
// a stop, then run at once instead of when they end.
func (s *Store) ReleaseClaims(ctx context.Context, now time.Time) (int, error) {
	var total int64
	err := s.inTx(ctx, func(tx querier) error {
		// A live claim ends after now; one that ended is due already.
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE deliveries SET next_attempt_at = ?, claim = 0
			WHERE `+due+` AND next_attempt_at > ? AND claim = 1`, ms(now), ms(now)))
		if err != nil {
			return err
		}
		m, err := rowsAffected(tx.ExecContext(ctx, `UPDATE deliveries SET claim = 0
			WHERE `+unfinished+` AND claim = 2`))
		total = n + m
		return err
	})
	if err != nil {
		return 0, wrap("release claims", err)
	}
	return int(total), nil
}

// NextDue returns the earliest NextAttemptAt of a pending or sending
// delivery that does not wait for its endpoint, and false when there is
// none, so that a worker can sleep until then.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next time.Time
	err := s.r.QueryRowContext(ctx, "SELECT MIN(next_attempt_at) FROM deliveries WHERE "+due).Scan(nullTime{&next})
	if err != nil {
		return time.Time{}, false, wrap("next due", err)
	}
	return next, !next.IsZero(), nil
}

// PurgeExpired deletes what expired at now: up to limit messages (their
// deliveries and attempts go with them), up to limit further attempts, up
// to limit idempotency records, tasks, app tokens and app-token cut-off
// rows each. It returns how many rows of those it deleted, not counting
// the rows that went with a message; call it until it returns 0 to purge
// everything.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil // SQLite reads a negative LIMIT as none
	}
	var total int64
	err := s.inTx(ctx, func(tx querier) error {
		total = 0 // fn may run twice (inTx)
		at := now.UnixMilli()
		for _, stmt := range []string{
			"DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM app_tokens WHERE hash IN (SELECT hash FROM app_tokens WHERE expires_at <= ? LIMIT ?)",
			"DELETE FROM app_token_cutoffs WHERE rowid IN (SELECT rowid FROM app_token_cutoffs WHERE expires_at <= ? LIMIT ?)",
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
