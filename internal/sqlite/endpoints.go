package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

const endpointCols = `id, app_id, uid, url, description, disabled, disabled_at, disabled_why,
	filter_types, channels, keys, headers, metadata, throttle_rate, version, failing_since,
	created_at, updated_at`

// signingKey is how a webhook.SigningKey is kept in JSON; ExpiresAt is in
// unix milliseconds, 0 for the current key.
type signingKey struct {
	Key       []byte `json:"key"`
	ExpiresAt int64  `json:"expiresAt,omitempty"`
}

// signingKeys reads and writes the keys column.
type signingKeys struct{ keys *[]webhook.SigningKey }

// Scan implements sql.Scanner.
func (k signingKeys) Scan(v any) error {
	var stored []signingKey
	if err := (jsonCol{&stored}).Scan(v); err != nil {
		return err
	}
	*k.keys = nil
	for _, sk := range stored {
		key := webhook.SigningKey{Key: sk.Key}
		if sk.ExpiresAt != 0 {
			key.ExpiresAt = time.UnixMilli(sk.ExpiresAt).UTC()
		}
		*k.keys = append(*k.keys, key)
	}
	return nil
}

func keysJSON(keys []webhook.SigningKey) (string, error) {
	stored := make([]signingKey, len(keys))
	for i, k := range keys {
		stored[i] = signingKey{Key: k.Key}
		if !k.ExpiresAt.IsZero() {
			stored[i].ExpiresAt = k.ExpiresAt.UnixMilli()
		}
	}
	return jsonText(stored)
}

func scanEndpoint(sc scanner) (webhook.Endpoint, error) {
	var ep webhook.Endpoint
	err := sc.Scan(endpointDest(&ep)...)
	return ep, err
}

// endpointDest is where the columns of endpointCols are scanned to.
func endpointDest(ep *webhook.Endpoint) []any {
	return []any{&ep.ID, &ep.AppID, optString{&ep.UID}, &ep.URL, &ep.Description, &ep.Disabled,
		nullTime{&ep.DisabledAt}, &ep.DisabledWhy, jsonCol{&ep.FilterTypes}, jsonCol{&ep.Channels},
		signingKeys{&ep.Keys}, jsonCol{&ep.Headers}, jsonCol{&ep.Metadata}, optInt{&ep.ThrottleRate},
		&ep.Version, nullTime{&ep.FailingSince}, nullTime{&ep.CreatedAt}, nullTime{&ep.UpdatedAt}}
}

// endpointJSON returns the endpoint's JSON columns: filter_types,
// channels, keys, headers, metadata.
func endpointJSON(ep *webhook.Endpoint) ([]any, error) {
	var cols []any
	for _, v := range []any{ep.FilterTypes, ep.Channels} {
		s, err := jsonText(v)
		if err != nil {
			return nil, err
		}
		cols = append(cols, s)
	}
	keys, err := keysJSON(ep.Keys)
	if err != nil {
		return nil, err
	}
	cols = append(cols, keys)
	for _, v := range []any{ep.Headers, ep.Metadata} {
		s, err := jsonText(v)
		if err != nil {
			return nil, err
		}
		cols = append(cols, s)
	}
	return cols, nil
}

// CreateEndpoint implements webhook.Store; NotFound if the app does not
// exist.
func (s *Store) CreateEndpoint(ctx context.Context, ep *webhook.Endpoint) error {
	js, err := endpointJSON(ep)
	if err != nil {
		return wrap("create endpoint", err)
	}
	args := []any{ep.ID, ep.AppID, nullString(ep.UID), ep.URL, ep.Description, ep.Disabled, ms(ep.DisabledAt), ep.DisabledWhy}
	args = append(args, js...)
	args = append(args, intOrNull(ep.ThrottleRate), ep.Version, ms(ep.FailingSince), ms(ep.CreatedAt), ms(ep.UpdatedAt))
	_, err = s.exec(ctx, "INSERT INTO endpoints ("+endpointCols+") VALUES ("+placeholders(len(args))+")", args...)
	switch {
	case isUnique(err):
		return webhook.Conflict("an endpoint with id %s or uid %q already exists", ep.ID, ep.UID)
	case isForeignKey(err):
		return webhook.NotFound("app %s not found", ep.AppID)
	}
	return wrap("create endpoint", err)
}

// GetEndpoint implements webhook.Store.
func (s *Store) GetEndpoint(ctx context.Context, appID, idOrUID string) (*webhook.Endpoint, error) {
	row := s.r.QueryRowContext(ctx, "SELECT "+endpointCols+" FROM endpoints WHERE app_id = ? AND (id = ? OR uid = ?)",
		appID, idOrUID, idOrUID)
	ep, err := scanEndpoint(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("endpoint %s not found", idOrUID)
	}
	if err != nil {
		return nil, wrap("get endpoint", err)
	}
	return &ep, nil
}

// UpdateEndpoint implements webhook.Store. The update is one statement,
// conditional on updated_at, so it cannot interleave with RecordAttempt's
// change to failing_since: the stored value is kept, or cleared when the
// update re-enables the endpoint (SQLite evaluates the CASE against the
// row as it was). On a miss a read tells NotFound from ErrStale.
func (s *Store) UpdateEndpoint(ctx context.Context, ep *webhook.Endpoint, ifUpdatedAt time.Time) error {
	js, err := endpointJSON(ep)
	if err != nil {
		return wrap("update endpoint", err)
	}
	updatedAt := webhook.NextUpdatedAt(ifUpdatedAt, ep.UpdatedAt)
	args := []any{nullString(ep.UID), ep.URL, ep.Description, ep.Disabled, ms(ep.DisabledAt), ep.DisabledWhy}
	args = append(args, js...)
	args = append(args, intOrNull(ep.ThrottleRate), ep.Version, ep.Disabled, ms(ep.CreatedAt), ms(updatedAt),
		ep.AppID, ep.ID, ms(ifUpdatedAt))
	var failingSince time.Time
	err = s.inTx(ctx, func(tx querier) error {
		row := tx.QueryRowContext(ctx, `UPDATE endpoints
			SET uid = ?, url = ?, description = ?, disabled = ?, disabled_at = ?, disabled_why = ?,
				filter_types = ?, channels = ?, keys = ?, headers = ?, metadata = ?, throttle_rate = ?, version = ?,
				failing_since = CASE WHEN disabled = 1 AND ? = 0 THEN NULL ELSE failing_since END,
				created_at = ?, updated_at = ?
			WHERE app_id = ? AND id = ? AND updated_at IS ?
			RETURNING failing_since`, args...)
		err := row.Scan(nullTime{&failingSince})
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return missingOrStale(ctx, tx, "endpoint", "SELECT 1 FROM endpoints WHERE app_id = ? AND id = ?", ep.AppID, ep.ID)
		case isUnique(err):
			return webhook.Conflict("another endpoint of the app has uid %q", ep.UID)
		}
		return err
	})
	if err != nil {
		return wrap("update endpoint", err)
	}
	ep.UpdatedAt, ep.FailingSince = updatedAt, failingSince
	return nil
}

// DeleteEndpoint implements webhook.Store; NotFound if absent. Foreign
// keys delete its deliveries; its attempts stay in the message's log.
func (s *Store) DeleteEndpoint(ctx context.Context, appID, id string) error {
	n, err := rowsAffected(s.exec(ctx, "DELETE FROM endpoints WHERE app_id = ? AND id = ?", appID, id))
	if err != nil {
		return wrap("delete endpoint", err)
	}
	if n == 0 {
		return webhook.NotFound("endpoint %s not found", id)
	}
	return nil
}

// ListEndpoints implements webhook.Store.
func (s *Store) ListEndpoints(ctx context.Context, appID string, opts webhook.ListOptions) (webhook.Page[webhook.Endpoint], error) {
	q := query{from: endpointCols + " FROM endpoints"}
	q.and("app_id = ?", appID)
	p, err := list(ctx, s.r, q, "id", opts, scanEndpoint)
	return p, wrap("list endpoints", err)
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
