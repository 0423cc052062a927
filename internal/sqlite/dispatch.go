package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Redrive implements webhook.Store.
func (s *Store) Redrive(ctx context.Context, ref webhook.Ref, now time.Time) (*webhook.Delivery, error) {
	var d *webhook.Delivery
	err := s.inTx(ctx, func(tx querier) error {
		got, err := scanDelivery(tx.QueryRowContext(ctx, `UPDATE deliveries
			SET run = run + 1, dispatched = 0, claim = 0, next_attempt_at = ?, updated_at = ?
			WHERE msg_id = ? AND endpoint_id = ? AND app_id = ? AND run = ? AND `+unfinished+`
			RETURNING `+deliveryCols,
			ms(now), ms(now), ref.MsgID, ref.EndpointID, ref.AppID, ref.Run))
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := getDelivery(ctx, tx, ref.AppID, ref.MsgID, ref.EndpointID); err != nil {
				return err
			}
			return webhook.Conflict("delivery of message %s to endpoint %s is no longer at run %d, or is final", ref.MsgID, ref.EndpointID, ref.Run)
		}
		d = &got
		return err
	})
	if err != nil {
		return nil, wrap("redrive", err)
	}
	return d, nil
}

// MarkDispatchedBatch implements webhook.Store, in one write transaction
// (one commit for a message's whole fan-out).
func (s *Store) MarkDispatchedBatch(ctx context.Context, refs []webhook.Ref) error {
	if len(refs) == 0 {
		return nil
	}
	err := s.quietTx(ctx, func(tx querier) error {
		for _, ref := range refs {
			if _, err := tx.ExecContext(ctx, markDispatched, ref.Run, ref.AppID, ref.MsgID, ref.EndpointID); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("mark dispatched", err)
}
