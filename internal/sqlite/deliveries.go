package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

const deliveryCols = `app_id, msg_id, endpoint_id, event_type, channels, status, run, trigger_type, attempts,
	next_attempt_at, dispatched, claim, created_at, updated_at`

func scanDelivery(sc scanner) (webhook.Delivery, error) {
	var d webhook.Delivery
	err := sc.Scan(deliveryDest(&d)...)
	return d, err
}

// deliveryDest is where the columns of deliveryCols are scanned to.
func deliveryDest(d *webhook.Delivery) []any {
	return []any{&d.AppID, &d.MsgID, &d.EndpointID, &d.EventType, jsonCol{&d.Channels}, &d.Status, &d.Run,
		&d.Trigger, &d.Attempts, nullTime{&d.NextAttemptAt}, &d.Dispatched, claimCol{&d.Claimed},
		nullTime{&d.CreatedAt}, nullTime{&d.UpdatedAt}}
}

func insertDelivery(ctx context.Context, tx querier, d *webhook.Delivery, expiresAt time.Time) error {
	channels, err := jsonText(d.Channels)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO deliveries ("+deliveryCols+", expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		d.AppID, d.MsgID, d.EndpointID, d.EventType, channels, d.Status, d.Run, d.Trigger, d.Attempts,
		ms(d.NextAttemptAt), d.Dispatched, claimOf(d), ms(d.CreatedAt), ms(d.UpdatedAt), ms(expiresAt))
	return err
}

// getDelivery reads a delivery whether or not its message has expired:
// writers use it, and a write is not a read of the message.
func getDelivery(ctx context.Context, db querier, appID, msgID, endpointID string) (*webhook.Delivery, error) {
	row := db.QueryRowContext(ctx, "SELECT "+deliveryCols+" FROM deliveries WHERE app_id = ? AND msg_id = ? AND endpoint_id = ?",
		appID, msgID, endpointID)
	d, err := scanDelivery(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("no delivery of message %s to endpoint %s", msgID, endpointID)
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// GetDelivery implements webhook.Store.
func (s *Store) GetDelivery(ctx context.Context, appID, msgID, endpointID string) (*webhook.Delivery, error) {
	row := s.r.QueryRowContext(ctx, "SELECT "+deliveryCols+` FROM deliveries
		WHERE app_id = ? AND msg_id = ? AND endpoint_id = ? AND `+visible, appID, msgID, endpointID, s.now())
	d, err := scanDelivery(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("no delivery of message %s to endpoint %s", msgID, endpointID)
	}
	if err != nil {
		return nil, wrap("get delivery", err)
	}
	return &d, nil
}

// LoadRun reads what an attempt of the run ref needs — its delivery,
// endpoint and message, as GetDelivery, GetEndpoint and GetMessage return
// them — in one query, and so in one read transaction; it implements
// webhook.Store. When one of them is missing it returns NotFound
// with those found before it, in that order: a nil delivery means the
// delivery is missing, a nil endpoint the endpoint, a nil message the
// message.
//
// The query joins the three rows on their keys and applies the Gets'
// expiry conditions; when it finds nothing, the Gets themselves tell
// which row is missing, which happens once at most per run. The join
// takes ref's ids as ids only: it does not also try them as an endpoint
// uid or a message event id as GetEndpoint and GetMessage do, which an
// attempt never needs (a visible delivery's endpoint and message exist).
func (s *Store) LoadRun(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	var (
		d   webhook.Delivery
		ep  webhook.Endpoint
		msg webhook.Message
	)
	dest := append(append(deliveryDest(&d), endpointDest(&ep)...), messageDest(&msg)...)
	err := s.r.QueryRowContext(ctx, loadRun, ref.AppID, ref.MsgID, ref.EndpointID, s.now()).Scan(dest...)
	switch {
	case err == nil:
		return &d, &ep, &msg, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, nil, nil, wrap("load run", err)
	}
	found, err := s.GetDelivery(ctx, ref.AppID, ref.MsgID, ref.EndpointID)
	if err != nil {
		return nil, nil, nil, err
	}
	foundEp, err := s.GetEndpoint(ctx, ref.AppID, ref.EndpointID)
	if err != nil {
		return found, nil, nil, err
	}
	foundMsg, err := s.GetMessage(ctx, ref.AppID, ref.MsgID)
	if err != nil {
		return found, foundEp, nil, err
	}
	return found, foundEp, foundMsg, nil // all there by now
}

// loadRun is LoadRun's query; its arguments are the app, message and
// endpoint ids and s.now().
var loadRun = "SELECT " + qualified("d", deliveryCols) + ", " + qualified("e", endpointCols) + ", " + qualified("m", messageCols) + `
	FROM deliveries d, endpoints e, messages m
	WHERE d.app_id = ?1 AND d.msg_id = ?2 AND d.endpoint_id = ?3 AND (d.expires_at IS NULL OR d.expires_at > ?4)
		AND e.app_id = ?1 AND e.id = ?3
		AND m.app_id = ?1 AND m.id = ?2 AND (m.expires_at IS NULL OR m.expires_at > ?4)`

// ListDeliveries implements webhook.Store. With MsgID set it lists by
// endpoint id (EndpointID, if also set, filters); otherwise by message id.
func (s *Store) ListDeliveries(ctx context.Context, f webhook.DeliveryFilter) (webhook.Page[webhook.Delivery], error) {
	q := query{from: deliveryCols + " FROM deliveries"}
	q.and("app_id = ?", f.AppID)
	key := "msg_id"
	switch {
	case f.MsgID != "":
		q.and("msg_id = ?", f.MsgID)
		key = "endpoint_id"
		if f.EndpointID != "" {
			q.and("endpoint_id = ?", f.EndpointID)
		}
	case f.EndpointID != "":
		q.and("endpoint_id = ?", f.EndpointID)
	default:
		return webhook.Page[webhook.Delivery]{}, fmt.Errorf("sqlite: list deliveries: filter names neither a message nor an endpoint")
	}
	q.and(visible, s.now())
	in(&q, "status", f.Statuses)
	in(&q, "event_type", f.EventTypes)
	hasChannel(&q, "channels", f.Channel)
	if !f.Since.IsZero() {
		q.and("created_at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		q.and("created_at < ?", f.Until.UnixMilli())
	}
	p, err := list(ctx, s.r, q, key, f.ListOptions, scanDelivery)
	return p, wrap("list deliveries", err)
}

// StartRun implements webhook.Store; NotFound if the message or the
// endpoint does not exist in the message's app.
func (s *Store) StartRun(ctx context.Context, msg *webhook.Message, endpointID string, now time.Time) (*webhook.Delivery, error) {
	var d *webhook.Delivery
	err := s.inTx(ctx, func(tx querier) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages m, endpoints e
			WHERE m.app_id = ? AND m.id = ? AND e.app_id = m.app_id AND e.id = ?`,
			msg.AppID, msg.ID, endpointID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return webhook.NotFound("message %s or endpoint %s not found", msg.ID, endpointID)
		}
		if err != nil {
			return err
		}
		old, err := getDelivery(ctx, tx, msg.AppID, msg.ID, endpointID)
		if err != nil && !webhook.IsNotFound(err) {
			return err
		}
		run := webhook.NewRun(msg, endpointID, 1, now)
		d = &run
		if old == nil {
			return insertDelivery(ctx, tx, d, msg.ExpiresAt)
		}
		d.Run = old.Run + 1
		_, err = tx.ExecContext(ctx, `UPDATE deliveries
			SET status = ?, run = ?, trigger_type = ?, attempts = 0, next_attempt_at = ?, dispatched = 0, claim = 0, updated_at = ?
			WHERE msg_id = ? AND endpoint_id = ?`,
			d.Status, d.Run, d.Trigger, ms(now), ms(now), msg.ID, endpointID)
		if err != nil {
			return err
		}
		// The other fields are the stored ones (copied from the message
		// at fan-out).
		d.EventType, d.Channels, d.CreatedAt = old.EventType, old.Channels, old.CreatedAt
		return nil
	})
	if err != nil {
		return nil, wrap("start run", err)
	}
	return d, nil
}

// updateRun runs an UPDATE of deliveries whose arguments end with the
// delivery's key (app, message, endpoint) and reports NotFound if it
// changed nothing because the delivery does not exist. A delivery that
// exists but did not match the rest of the WHERE clause (stale run, final)
// is left alone without error.
//
// It runs through write: inTx for an update that is a change
// (Changes), quietTx for one that is not.
func (s *Store) updateRun(ctx context.Context, write func(context.Context, func(querier) error) error, op, stmt string, ref webhook.Ref, args ...any) error {
	args = append(args, ref.AppID, ref.MsgID, ref.EndpointID) // outside fn, which may run twice (inTx)
	err := write(ctx, func(tx querier) error {
		n, err := rowsAffected(tx.ExecContext(ctx, stmt, args...))
		if err != nil || n > 0 {
			return err
		}
		_, err = getDelivery(ctx, tx, ref.AppID, ref.MsgID, ref.EndpointID)
		return noWrites(err) // the UPDATE changed nothing
	})
	return wrap(op, err)
}

// MarkDispatched implements webhook.Store; NotFound if the delivery does
// not exist.
func (s *Store) MarkDispatched(ctx context.Context, ref webhook.Ref) error {
	return s.updateRun(ctx, s.quietTx, "mark dispatched", markDispatched, ref, ref.Run)
}

const markDispatched = `UPDATE deliveries SET dispatched = 1
	WHERE run = ? AND app_id = ? AND msg_id = ? AND endpoint_id = ?`

// FinishDelivery implements webhook.Store; NotFound if the delivery does
// not exist.
func (s *Store) FinishDelivery(ctx context.Context, ref webhook.Ref, status webhook.Status, now time.Time) error {
	if !status.Final() {
		return fmt.Errorf("sqlite: finish delivery: status %v is not final", status)
	}
	return s.updateRun(ctx, s.inTx, "finish delivery", `UPDATE deliveries SET status = ?, updated_at = ?
		WHERE run = ? AND `+unfinished+` AND app_id = ? AND msg_id = ? AND endpoint_id = ?`,
		ref, status, ms(now), ref.Run)
}

// ListUndispatched implements webhook.Store.
func (s *Store) ListUndispatched(ctx context.Context, before time.Time, limit int) ([]webhook.Delivery, error) {
	if limit <= 0 {
		return nil, nil // SQLite reads a negative LIMIT as none
	}
	ds, err := collect(ctx, s.r, "SELECT "+deliveryCols+` FROM deliveries
		WHERE dispatched = 0 AND `+unfinished+` AND updated_at < ?
		ORDER BY updated_at, msg_id, endpoint_id LIMIT ?`,
		[]any{before.UnixMilli(), limit}, scanDelivery)
	return ds, wrap("list undispatched", err)
}

// CancelDeliveries implements webhook.Store.
func (s *Store) CancelDeliveries(ctx context.Context, appID, endpointID string, now time.Time) (int, error) {
	n, err := rowsAffected(s.exec(ctx, `UPDATE deliveries SET status = ?, updated_at = ?
		WHERE app_id = ? AND endpoint_id = ? AND `+unfinished,
		webhook.StatusCanceled, ms(now), appID, endpointID))
	return int(n), wrap("cancel deliveries", err)
}

// EndpointStats implements webhook.Store. Statuses without deliveries are
// absent from the map.
func (s *Store) EndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (map[webhook.Status]int, error) {
	q := query{from: "status, COUNT(*) FROM deliveries"}
	q.and("app_id = ?", appID)
	q.and("endpoint_id = ?", endpointID)
	q.and(visible, s.now())
	if !since.IsZero() {
		q.and("created_at >= ?", since.UnixMilli())
	}
	if !until.IsZero() {
		q.and("created_at < ?", until.UnixMilli())
	}
	type count struct {
		status webhook.Status
		n      int
	}
	stmt, args := q.sql("GROUP BY status")
	counts, err := collect(ctx, s.r, stmt, args, func(sc scanner) (count, error) {
		var c count
		err := sc.Scan(&c.status, &c.n)
		return c, err
	})
	if err != nil {
		return nil, wrap("endpoint stats", err)
	}
	stats := make(map[webhook.Status]int, len(counts))
	for _, c := range counts {
		stats[c.status] = c.n
	}
	return stats, nil
}
