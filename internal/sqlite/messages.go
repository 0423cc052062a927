package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// eventIDWindow is how long an EventID stays taken within an app.
const eventIDWindow = 24 * time.Hour

// unfinished is the condition on deliveries that are neither succeeded,
// failed nor canceled: pending or sending.
var unfinished = fmt.Sprintf("status IN (%d, %d)", webhook.StatusPending, webhook.StatusSending)

const messageCols = "id, app_id, event_type, event_id, payload, channels, tags, timestamp, expires_at"

func scanMessage(sc scanner) (webhook.Message, error) {
	var m webhook.Message
	err := sc.Scan(messageDest(&m)...)
	return m, err
}

// messageDest is where the columns of messageCols are scanned to.
func messageDest(m *webhook.Message) []any {
	return []any{&m.ID, &m.AppID, &m.EventType, optString{&m.EventID}, bytesCol{(*[]byte)(&m.Payload)},
		jsonCol{&m.Channels}, jsonCol{&m.Tags}, nullTime{&m.Timestamp}, nullTime{&m.ExpiresAt}}
}

// CreateMessage implements webhook.Store. The message and its deliveries
// are written in one transaction; NotFound if the app does not exist.
// Deliveries to endpoints that are not (or no longer) the app's are
// dropped inside the transaction: an endpoint deleted after the caller
// listed it is not an error, and its delivery would have nothing to go to.
func (s *Store) CreateMessage(ctx context.Context, msg *webhook.Message, deliveries []webhook.Delivery) error {
	return s.createMessage(ctx, msg, deliveries, nil)
}

// CreateMessageKeyed implements webhook.KeyedMessageCreator: the key is
// claimed in the transaction that stores the message.
func (s *Store) CreateMessageKeyed(ctx context.Context, msg *webhook.Message, deliveries []webhook.Delivery, claim webhook.KeyClaim) error {
	return s.createMessage(ctx, msg, deliveries, &claim)
}

func (s *Store) createMessage(ctx context.Context, msg *webhook.Message, deliveries []webhook.Delivery, claim *webhook.KeyClaim) error {
	channels, err := jsonText(msg.Channels)
	if err != nil {
		return wrap("create message", err)
	}
	tags, err := jsonText(msg.Tags)
	if err != nil {
		return wrap("create message", err)
	}
	rows := make([][]any, len(deliveries)) // made before the write, which has one goroutine
	for i, d := range deliveries {
		if rows[i], err = deliveryArgs(d, msg); err != nil {
			return wrap("create message", err)
		}
	}
	err = s.quietTxFirst(ctx, func(tx querier) error { // a request waits on it
		// The checks first: one that fails has written nothing, and the
		// writes of its group go on without it (noWrites).
		if claim != nil {
			// As BeginIdempotent, but a live record of any kind is the
			// caller's to handle: nothing is written.
			rec, err := readIdempotency(ctx, tx, claim.Key)
			switch {
			case err == nil && rec.ExpiresAt.After(s.clock.Now()):
				return noWrites(&webhook.KeyTakenError{Record: rec})
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if msg.EventID != "" {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM messages
				WHERE app_id = ? AND event_id = ? AND timestamp > ? AND `+visible+` LIMIT 1`,
				msg.AppID, msg.EventID, msg.Timestamp.Add(-eventIDWindow).UnixMilli(), s.now()).Scan(&one)
			if err == nil {
				return noWrites(webhook.Conflict("event id %q was used by another message in the last 24 hours", msg.EventID))
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if claim != nil {
			if err := claimIdempotency(ctx, tx, claim.Key, msg.ID, s.clock.Now(), claim.ExpiresAt); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO messages ("+messageCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			msg.ID, msg.AppID, msg.EventType, nullString(msg.EventID), []byte(msg.Payload), channels, tags,
			ms(msg.Timestamp), ms(msg.ExpiresAt))
		switch {
		case isUnique(err):
			return webhook.Conflict("message %s already exists", msg.ID)
		case isForeignKey(err):
			return webhook.NotFound("app %s not found", msg.AppID)
		case err != nil:
			return err
		}
		for start := 0; start < len(rows); start += deliveryRows {
			if err := insertDeliveries(ctx, tx, msg, rows[start:min(start+deliveryRows, len(rows))]); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("create message", err)
}

// deliveryRows is the most deliveries one INSERT stores: a message's
// fan-out takes one statement per 32 endpoints, not one per endpoint.
const deliveryRows = 32

// deliveryArgs are the values of one delivery's row, in the order of
// deliveryCols and expires_at.
func deliveryArgs(d webhook.Delivery, msg *webhook.Message) ([]any, error) {
	d.Normalize(msg)
	channels, err := jsonText(d.Channels)
	if err != nil {
		return nil, err
	}
	return []any{d.AppID, d.MsgID, d.EndpointID, d.EventType, channels, d.Status, d.Run, d.Trigger, d.Attempts,
		ms(d.NextAttemptAt), d.Dispatched, claimOf(&d), ms(d.CreatedAt), ms(d.UpdatedAt), ms(msg.ExpiresAt)}, nil
}

// insertDeliveriesSQL[n] stores those of n deliveries whose endpoint is
// (still) the app's, the app id its last argument: one that was deleted
// since the caller listed it, or that is another app's, gets no
// delivery.
var insertDeliveriesSQL = func() (q [deliveryRows + 1]string) {
	row := "(" + placeholders(15) + ")"
	for n := 1; n <= deliveryRows; n++ {
		q[n] = "INSERT INTO deliveries (" + deliveryCols + ", expires_at) SELECT * FROM (VALUES " +
			strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") +
			") AS v WHERE EXISTS (SELECT 1 FROM endpoints WHERE app_id = ? AND id = v.column3)"
	}
	return q
}()

// insertDeliveries stores a message's deliveries (rows of deliveryArgs)
// in one statement, but those to endpoints that are not the app's.
func insertDeliveries(ctx context.Context, tx querier, msg *webhook.Message, rows [][]any) error {
	args := make([]any, 0, len(rows)*15+1)
	for _, r := range rows {
		args = append(args, r...)
	}
	_, err := tx.ExecContext(ctx, insertDeliveriesSQL[len(rows)], append(args, msg.AppID)...)
	return deliveriesErr(msg, err)
}

// deliveriesErr is what storing a message's deliveries failed with.
func deliveriesErr(msg *webhook.Message, err error) error {
	if isUnique(err) {
		return webhook.Conflict("message %s lists an endpoint twice", msg.ID)
	}
	return err
}

// GetMessage implements webhook.Store: a match on the id wins over one on
// the event id, and of several messages with the event id the latest wins.
//
// It looks up the id first and the event id only when no message has that
// id: two index lookups, where one query with "id = ? OR event_id = ?"
// would read every message of the app.
func (s *Store) GetMessage(ctx context.Context, appID, idOrEventID string) (*webhook.Message, error) {
	now := s.now()
	m, err := scanMessage(s.r.QueryRowContext(ctx, "SELECT "+messageCols+` FROM messages
		WHERE id = ? AND app_id = ? AND `+visible, idOrEventID, appID, now))
	if errors.Is(err, sql.ErrNoRows) {
		m, err = scanMessage(s.r.QueryRowContext(ctx, "SELECT "+messageCols+` FROM messages
			WHERE app_id = ? AND event_id = ? AND `+visible+`
			ORDER BY timestamp DESC, id DESC LIMIT 1`, appID, idOrEventID, now))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("message %s not found", idOrEventID)
	}
	if err != nil {
		return nil, wrap("get message", err)
	}
	return &m, nil
}

// ExpungeContent implements webhook.Store: the payload becomes an empty
// blob, which reads return as an empty Payload.
func (s *Store) ExpungeContent(ctx context.Context, appID, msgID string) error {
	n, err := rowsAffected(s.exec(ctx, `UPDATE messages SET payload = X''
		WHERE id = ? AND app_id = ? AND `+visible, msgID, appID, s.now()))
	if err != nil {
		return wrap("expunge message content", err)
	}
	if n == 0 {
		return webhook.NotFound("message %s not found", msgID)
	}
	return nil
}

// ListMessages implements webhook.Store.
func (s *Store) ListMessages(ctx context.Context, f webhook.MessageFilter) (webhook.Page[webhook.Message], error) {
	q := query{from: messageCols + " FROM messages"}
	q.and("app_id = ?", f.AppID)
	q.and(visible, s.now())
	in(&q, "event_type", f.EventTypes)
	hasChannel(&q, "channels", f.Channel)
	if !f.Before.IsZero() {
		q.and("timestamp < ?", f.Before.UnixMilli())
	}
	if !f.After.IsZero() {
		q.and("timestamp > ?", f.After.UnixMilli())
	}
	p, err := list(ctx, s.r, q, "id", f.ListOptions, scanMessage)
	return p, wrap("list messages", err)
}
