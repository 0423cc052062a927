package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/hookstep/hookstep/internal/webhook"
)

var _ webhook.AppTokenStore = (*Store)(nil)

// App tokens (the portal's): a token item per token, by the hex SHA-256
// of the token, and the cut-offs of ExpireAppTokens in one item per app
// and one per app and session, each holding the scope's few cut-offs
// (webhook.AppTokenCutoffs). A token's key cannot carry its app, since a
// request names the token only; the cut-off items carry it.

func appTokenKey(hash string) key { return key{"APPTOKEN#" + hash, "TOKEN"} }

// appTokenCutoffKey is the cut-off item of an app (session "") or of one
// session of it.
func appTokenCutoffKey(appID, session string) key {
	if session == "" {
		return key{"APPTOKENCUT#" + appID, "APP"}
	}
	return key{"APPTOKENCUT#" + appID, "S#" + session}
}

type appTokenItem struct {
	PK           string   `dynamodbav:"pk"`
	SK           string   `dynamodbav:"sk"`
	AppID        string   `dynamodbav:"appId"`
	Capabilities []string `dynamodbav:"caps,omitempty"`
	ReadOnly     bool     `dynamodbav:"readOnly,omitempty"`
	SessionID    string   `dynamodbav:"sessionId,omitempty"`
	FeatureFlags []string `dynamodbav:"featureFlags,omitempty"`
	CreatedAt    int64    `dynamodbav:"createdAt"`
	ExpMs        int64    `dynamodbav:"expMs"`
	ExpiresAt    int64    `dynamodbav:"expiresAt"`
}

// appTokenCutoffItem holds a scope's cut-offs as [createdBy, deadAt]
// pairs (unix ms). Version numbers its writes: each is conditional on
// the version it read, so that of two racing calls neither loses the
// other's cut-off. It expires when every token it covers has.
type appTokenCutoffItem struct {
	PK        string     `dynamodbav:"pk"`
	SK        string     `dynamodbav:"sk"`
	Cutoffs   [][2]int64 `dynamodbav:"cutoffs"`
	Version   int64      `dynamodbav:"version"`
	ExpMs     int64      `dynamodbav:"expMs"`
	ExpiresAt int64      `dynamodbav:"expiresAt"`
}

func decodeCutoffs(it item) (webhook.AppTokenCutoffs, int64, error) {
	var r appTokenCutoffItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return nil, 0, err
	}
	cs := make(webhook.AppTokenCutoffs, len(r.Cutoffs))
	for i, p := range r.Cutoffs {
		cs[i] = webhook.AppTokenCutoff{CreatedBy: fromMillis(p[0]), DeadAt: fromMillis(p[1])}
	}
	return cs, r.Version, nil
}

// CreateAppToken implements webhook.AppTokenStore: one conditional put.
func (s *Store) CreateAppToken(ctx context.Context, t *webhook.AppToken) error {
	now := s.clock.Now()
	if err := webhook.CheckAppTokenLife(t, now); err != nil {
		return err
	}
	k := appTokenKey(t.Hash)
	caps := make([]string, len(t.Capabilities))
	for i, c := range t.Capabilities {
		caps[i] = string(c)
	}
	it, err := attributevalue.MarshalMap(appTokenItem{
		PK: k.pk, SK: k.sk, AppID: t.AppID, Capabilities: caps, ReadOnly: t.ReadOnly, SessionID: t.SessionID,
		FeatureFlags: t.FeatureFlags, CreatedAt: millis(now), ExpMs: millis(t.ExpiresAt), ExpiresAt: ttl(t.ExpiresAt),
	})
	if err != nil {
		return wrapf(err, "create app token")
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		return webhook.Conflict("an app token with this hash exists")
	}
	if err != nil {
		return wrapf(err, "create app token")
	}
	t.CreatedAt = fromMillis(millis(now))
	return nil
}

// GetAppToken implements webhook.AppTokenStore: a consistent GetItem of
// the token, then one consistent BatchGetItem of the cut-off items of its
// app and, if it has one, its session. The hash names no app, so the
// cut-offs cannot be read with the token.
func (s *Store) GetAppToken(ctx context.Context, hash string) (*webhook.AppToken, error) {
	it, found, err := s.getItem(ctx, appTokenKey(hash), true)
	if err != nil {
		return nil, wrapf(err, "get app token")
	}
	now := s.clock.Now()
	if !found || !visible(numAttr(it, "expMs"), now) {
		return nil, webhook.NotFound("app token not found")
	}
	var r appTokenItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return nil, wrapf(err, "get app token")
	}
	t := &webhook.AppToken{
		Hash: hash, AppID: r.AppID, ReadOnly: r.ReadOnly, SessionID: r.SessionID, FeatureFlags: r.FeatureFlags,
		CreatedAt: fromMillis(r.CreatedAt), ExpiresAt: fromMillis(r.ExpMs),
	}
	for _, c := range r.Capabilities {
		t.Capabilities = append(t.Capabilities, webhook.Capability(c))
	}
	keys := []key{appTokenCutoffKey(t.AppID, "")}
	if t.SessionID != "" {
		keys = append(keys, appTokenCutoffKey(t.AppID, t.SessionID))
	}
	items, err := s.getMany(ctx, keys, true)
	if err != nil {
		return nil, wrapf(err, "get app token")
	}
	cutoffs := make([]webhook.AppTokenCutoffs, len(items))
	for i, it := range items {
		if cutoffs[i], _, err = decodeCutoffs(it); err != nil {
			return nil, wrapf(err, "get app token")
		}
	}
	if !t.Alive(now, cutoffs...) {
		return nil, webhook.NotFound("app token expired")
	}
	return t, nil
}

// DeleteAppToken implements webhook.AppTokenStore.
func (s *Store) DeleteAppToken(ctx context.Context, hash string) error {
	_, err := s.deleteItem(ctx, &dynamodb.DeleteItemInput{Key: appTokenKey(hash).item()})
	return wrapf(err, "delete app token")
}

// ExpireAppTokens implements webhook.AppTokenStore: per scope (the app,
// or each session), a consistent read of its cut-off item and a put of
// the merged cut-offs conditional on the version read, again on a race;
// a few scopes at a time. Empty session ids name no session.
func (s *Store) ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) error {
	scopes := []string{""}
	if len(sessionIDs) > 0 {
		scopes = scopes[:0]
		for _, id := range sessionIDs {
			if id != "" {
				scopes = append(scopes, id)
			}
		}
	}
	if len(scopes) == 0 {
		return nil
	}
	err := forEach(ctx, len(scopes), func(ctx context.Context, i int) error {
		return s.addCutoff(ctx, appTokenCutoffKey(appID, scopes[i]), at)
	})
	return wrapf(err, "expire app tokens of %s", appID)
}

// addCutoff merges the cut-off (the tokens created up to now die at at)
// into the item k.
func (s *Store) addCutoff(ctx context.Context, k key, at time.Time) error {
	for range maxTries {
		now := s.clock.Now()
		var cs webhook.AppTokenCutoffs
		var version int64
		it, found, err := s.getItem(ctx, k, true)
		if err != nil {
			return err
		}
		if found {
			if cs, version, err = decodeCutoffs(it); err != nil {
				return err
			}
		}
		cs = cs.Add(webhook.AppTokenCutoff{CreatedBy: now, DeadAt: at}, now)
		pairs := make([][2]int64, len(cs))
		for i, c := range cs {
			pairs[i] = [2]int64{millis(c.CreatedBy), millis(c.DeadAt)}
		}
		exp := cs.ExpiresAt()
		next, err := attributevalue.MarshalMap(appTokenCutoffItem{
			PK: k.pk, SK: k.sk, Cutoffs: pairs, Version: version + 1, ExpMs: millis(exp), ExpiresAt: ttl(exp),
		})
		if err != nil {
			return err
		}
		var e expr
		var cond string
		if found {
			cond = e.eq("version", num(version))
		} else {
			cond = e.missing(AttrPK)
		}
		_, err = s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      next,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
		if !conditionFailed(err) {
			return err
		}
	}
	return webhook.Conflict("app token cut-off %s/%s is contended", k.pk, k.sk)
}
