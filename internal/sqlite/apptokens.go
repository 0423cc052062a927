package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

var _ webhook.AppTokenStore = (*Store)(nil)

// allSessions is the session_id of an app's app-wide cut-offs.
const allSessions = ""

// cutoffsJSON is how a row of app_token_cutoffs keeps its cut-offs:
// [createdBy, deadAt] pairs in unix milliseconds.
type cutoffsJSON [][2]int64

func toCutoffsJSON(cs webhook.AppTokenCutoffs) cutoffsJSON {
	out := make(cutoffsJSON, len(cs))
	for i, c := range cs {
		out[i] = [2]int64{c.CreatedBy.UnixMilli(), c.DeadAt.UnixMilli()}
	}
	return out
}

func (j cutoffsJSON) cutoffs() webhook.AppTokenCutoffs {
	out := make(webhook.AppTokenCutoffs, len(j))
	for i, p := range j {
		out[i] = webhook.AppTokenCutoff{CreatedBy: time.UnixMilli(p[0]).UTC(), DeadAt: time.UnixMilli(p[1]).UTC()}
	}
	return out
}

// CreateAppToken implements webhook.AppTokenStore. A request waits on it
// (the access link answers with the token), so it commits ahead of the
// writes queued with it.
func (s *Store) CreateAppToken(ctx context.Context, t *webhook.AppToken) error {
	now := s.clock.Now()
	if err := webhook.CheckAppTokenLife(t, now); err != nil {
		return err
	}
	caps, err := jsonText(t.Capabilities)
	if err != nil {
		return wrap("create app token", err)
	}
	flags, err := jsonText(t.FeatureFlags)
	if err != nil {
		return wrap("create app token", err)
	}
	err = s.inTxFirst(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO app_tokens
			(hash, app_id, capabilities, read_only, session_id, feature_flags, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			t.Hash, t.AppID, caps, t.ReadOnly, t.SessionID, flags, now.UnixMilli(), t.ExpiresAt.UnixMilli())
		if isUnique(err) {
			return webhook.Conflict("an app token with this hash exists")
		}
		return err
	})
	if err != nil {
		return wrap("create app token", err)
	}
	t.CreatedAt = time.UnixMilli(now.UnixMilli()).UTC()
	return nil
}

// GetAppToken implements webhook.AppTokenStore with one query, which
// reads the token with its app's and its session's cut-offs.
func (s *Store) GetAppToken(ctx context.Context, hash string) (*webhook.AppToken, error) {
	var t webhook.AppToken
	var appCuts, sessionCuts cutoffsJSON
	err := s.r.QueryRowContext(ctx, `SELECT t.hash, t.app_id, t.capabilities, t.read_only, t.session_id,
			t.feature_flags, t.created_at, t.expires_at, a.cutoffs, c.cutoffs
		FROM app_tokens t
		LEFT JOIN app_token_cutoffs a ON a.app_id = t.app_id AND a.session_id = ''
		LEFT JOIN app_token_cutoffs c ON t.session_id != '' AND c.app_id = t.app_id AND c.session_id = t.session_id
		WHERE t.hash = ?`, hash).
		Scan(&t.Hash, &t.AppID, jsonCol{&t.Capabilities}, &t.ReadOnly, &t.SessionID,
			jsonCol{&t.FeatureFlags}, nullTime{&t.CreatedAt}, nullTime{&t.ExpiresAt}, jsonCol{&appCuts}, jsonCol{&sessionCuts})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("app token not found")
	}
	if err != nil {
		return nil, wrap("get app token", err)
	}
	if !t.Alive(s.clock.Now(), appCuts.cutoffs(), sessionCuts.cutoffs()) {
		return nil, webhook.NotFound("app token expired")
	}
	return &t, nil
}

// DeleteAppToken implements webhook.AppTokenStore.
func (s *Store) DeleteAppToken(ctx context.Context, hash string) error {
	err := s.inTxFirst(ctx, func(tx querier) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM app_tokens WHERE hash = ?", hash)
		return err
	})
	return wrap("delete app token", err)
}

// ExpireAppTokens implements webhook.AppTokenStore: in one transaction,
// each scope's row of cut-offs is read, merged with the new one
// (webhook.AppTokenCutoffs.Add) and written back. Empty session ids name
// no session.
func (s *Store) ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) error {
	scopes := []string{allSessions}
	if len(sessionIDs) > 0 {
		scopes = scopes[:0]
		for _, id := range sessionIDs {
			if id != "" {
				scopes = append(scopes, id)
			}
		}
	}
	err := s.inTxFirst(ctx, func(tx querier) error {
		now := s.clock.Now()
		cut := webhook.AppTokenCutoff{CreatedBy: now, DeadAt: at}
		for _, session := range scopes {
			var old cutoffsJSON
			err := tx.QueryRowContext(ctx, "SELECT cutoffs FROM app_token_cutoffs WHERE app_id = ? AND session_id = ?",
				appID, session).Scan(jsonCol{&old})
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			cs := old.cutoffs().Add(cut, now)
			text, err := jsonText(toCutoffsJSON(cs))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO app_token_cutoffs (app_id, session_id, cutoffs, expires_at)
				VALUES (?, ?, ?, ?)
				ON CONFLICT (app_id, session_id) DO UPDATE SET cutoffs = excluded.cutoffs, expires_at = excluded.expires_at`,
				appID, session, text, cs.ExpiresAt().UnixMilli())
			if err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("expire app tokens", err)
}
