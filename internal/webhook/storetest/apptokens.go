package storetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// tokens returns the store under test as a webhook.AppTokenStore, which
// every Store of hookstep also is.
func (e *env) tokens(t *testing.T) webhook.AppTokenStore {
	t.Helper()
	ts, ok := e.s.(webhook.AppTokenStore)
	if !ok {
		t.Fatalf("%T does not implement webhook.AppTokenStore", e.s)
	}
	return ts
}

// newAppToken returns a token of the app and session (may be "") with a
// random hash, living for the given time from now.
func (e *env) newAppToken(appID, session string, life time.Duration) *webhook.AppToken {
	b := make([]byte, 32)
	rand.Read(b) // never fails
	return &webhook.AppToken{
		Hash:         hex.EncodeToString(b),
		AppID:        appID,
		Capabilities: []webhook.Capability{webhook.CapViewBase, webhook.CapCreateAttempts},
		SessionID:    session,
		ExpiresAt:    e.clock.Now().Add(life),
	}
}

// createAppToken stores a token of the app and session living for a day.
func (e *env) createAppToken(t *testing.T, appID, session string) *webhook.AppToken {
	t.Helper()
	tok := e.newAppToken(appID, session, 24*time.Hour)
	if err := e.tokens(t).CreateAppToken(e.ctx, tok); err != nil {
		t.Fatalf("CreateAppToken: %v", err)
	}
	return tok
}

func (e *env) expireAppTokens(t *testing.T, appID string, sessions []string, at time.Time) {
	t.Helper()
	if err := e.tokens(t).ExpireAppTokens(e.ctx, appID, sessions, at); err != nil {
		t.Fatalf("ExpireAppTokens(%s, %v, %v): %v", appID, sessions, at, err)
	}
}

// wantAlive fails unless each token is live (GetAppToken finds it) or
// not (NotFound), as want says, at the clock's time.
func (e *env) wantAlive(t *testing.T, want bool, toks ...*webhook.AppToken) {
	t.Helper()
	for _, tok := range toks {
		_, err := e.tokens(t).GetAppToken(e.ctx, tok.Hash)
		switch {
		case want && err != nil:
			t.Errorf("at %v: GetAppToken(token of %s, session %q, created %v): %v, want it live",
				e.clock.Now(), tok.AppID, tok.SessionID, tok.CreatedAt, err)
		case !want && !webhook.IsNotFound(err):
			t.Errorf("at %v: GetAppToken(token of %s, session %q, created %v): error %v, want NotFound",
				e.clock.Now(), tok.AppID, tok.SessionID, tok.CreatedAt, err)
		}
	}
}

// testAppTokens: a token round-trips, CreatedAt is the store's clock, a
// hash is unique, a token lives from now up to MaxAppTokenLife, expires at
// ExpiresAt and is gone once deleted.
func testAppTokens(t *testing.T, e *env) {
	ts := e.tokens(t)
	tok := e.newAppToken("app_1", "user_1", time.Hour)
	tok.Capabilities = []webhook.Capability{webhook.CapViewBase, webhook.CapManageEndpoint}
	tok.ReadOnly = true
	tok.FeatureFlags = []string{"beta", "new-ui"}
	tok.CreatedAt = Epoch.Add(-time.Hour) // the store's clock wins
	if err := ts.CreateAppToken(e.ctx, tok); err != nil {
		t.Fatalf("CreateAppToken: %v", err)
	}
	if !tok.CreatedAt.Equal(e.clock.Now()) {
		t.Errorf("CreateAppToken set CreatedAt %v, want the clock's %v", tok.CreatedAt, e.clock.Now())
	}
	got, err := ts.GetAppToken(e.ctx, tok.Hash)
	if err != nil {
		t.Fatalf("GetAppToken: %v", err)
	}
	if d := diff(tok, got); d != "" {
		t.Errorf("GetAppToken mismatch (-want +got):\n%s", d)
	}
	plain := e.createAppToken(t, "app_1", "")
	if got, err := ts.GetAppToken(e.ctx, plain.Hash); err != nil || got.SessionID != "" || got.ReadOnly || len(got.FeatureFlags) != 0 {
		t.Errorf("GetAppToken(plain token) = %+v, %v", got, err)
	}

	dup := e.newAppToken("app_2", "", time.Hour)
	dup.Hash = tok.Hash
	wantConflict(t, "CreateAppToken(existing hash)", ts.CreateAppToken(e.ctx, dup))
	for _, life := range []time.Duration{0, -time.Second, webhook.MaxAppTokenLife + time.Millisecond} {
		err := ts.CreateAppToken(e.ctx, e.newAppToken("app_1", "", life))
		wantKind(t, fmt.Sprintf("CreateAppToken(living %v)", life), err, webhook.KindInvalid)
	}
	longest := e.newAppToken("app_1", "", webhook.MaxAppTokenLife)
	if err := ts.CreateAppToken(e.ctx, longest); err != nil {
		t.Errorf("CreateAppToken(living MaxAppTokenLife): %v", err)
	}
	_, err = ts.GetAppToken(e.ctx, hex.EncodeToString(make([]byte, 32)))
	wantNotFound(t, "GetAppToken(missing)", err)

	// Expiry: live 1 ms before ExpiresAt, gone 1 ms after.
	e.clock.Set(tok.ExpiresAt.Add(-time.Millisecond))
	e.wantAlive(t, true, tok, plain)
	e.clock.Set(tok.ExpiresAt.Add(time.Millisecond))
	e.wantAlive(t, false, tok)
	e.wantAlive(t, true, plain)

	// Logout.
	if err := ts.DeleteAppToken(e.ctx, plain.Hash); err != nil {
		t.Fatalf("DeleteAppToken: %v", err)
	}
	e.wantAlive(t, false, plain)
	if err := ts.DeleteAppToken(e.ctx, plain.Hash); err != nil {
		t.Errorf("DeleteAppToken(deleted): %v, want nil", err)
	}
}

// testExpireAppTokens: expiring an app's tokens kills those created up to
// the call from at on, now or later; tokens created after the call and
// other apps' tokens live on.
func testExpireAppTokens(t *testing.T, e *env) {
	a1 := e.createAppToken(t, "app_a", "")
	a2 := e.createAppToken(t, "app_a", "user_1")
	b := e.createAppToken(t, "app_b", "")
	e.clock.Advance(time.Second)

	// At once.
	e.expireAppTokens(t, "app_a", nil, e.clock.Now())
	e.wantAlive(t, false, a1, a2)
	e.wantAlive(t, true, b)
	e.clock.Advance(time.Millisecond)
	a3 := e.createAppToken(t, "app_a", "")
	a4 := e.createAppToken(t, "app_a", "user_1")
	e.wantAlive(t, true, a3, a4)

	// An at in the past means now.
	e.clock.Advance(time.Second)
	e.expireAppTokens(t, "app_a", nil, e.clock.Now().Add(-time.Hour))
	e.wantAlive(t, false, a3, a4)

	// Later: alive until then.
	e.clock.Advance(time.Second)
	a5 := e.createAppToken(t, "app_a", "user_2")
	at := e.clock.Now().Add(time.Hour)
	e.expireAppTokens(t, "app_a", nil, at)
	e.clock.Advance(time.Millisecond)
	a6 := e.createAppToken(t, "app_a", "")
	e.clock.Set(at.Add(-time.Millisecond))
	e.wantAlive(t, true, a5, a6, b)
	e.clock.Set(at.Add(time.Millisecond))
	e.wantAlive(t, false, a5)
	e.wantAlive(t, true, a6, b)

	// An app without tokens, and a token created the instant of the call,
	// which it covers.
	e.expireAppTokens(t, "app_none", nil, e.clock.Now())
	a7 := e.createAppToken(t, "app_a", "")
	e.expireAppTokens(t, "app_a", nil, e.clock.Now())
	e.wantAlive(t, false, a7, a6)
	e.wantAlive(t, true, b)
}

// testExpireAppTokensSessions: with session ids, only the tokens of those
// sessions die; an app-wide call still covers every session.
func testExpireAppTokensSessions(t *testing.T, e *env) {
	s1 := e.createAppToken(t, "app_a", "user_1")
	s2 := e.createAppToken(t, "app_a", "user_2")
	s3 := e.createAppToken(t, "app_a", "user_3")
	none := e.createAppToken(t, "app_a", "")
	other := e.createAppToken(t, "app_b", "user_1") // same session id, other app
	e.clock.Advance(time.Second)

	e.expireAppTokens(t, "app_a", []string{"user_1", "user_2"}, e.clock.Now())
	e.wantAlive(t, false, s1, s2)
	e.wantAlive(t, true, s3, none, other)
	e.clock.Advance(time.Millisecond)
	s1b := e.createAppToken(t, "app_a", "user_1")
	e.wantAlive(t, true, s1b)

	at := e.clock.Now().Add(time.Minute)
	e.expireAppTokens(t, "app_a", []string{"user_3"}, at)
	e.clock.Set(at.Add(-time.Millisecond))
	e.wantAlive(t, true, s3, s1b, none)
	e.clock.Set(at)
	e.wantAlive(t, false, s3)
	e.wantAlive(t, true, s1b, none, other)

	e.expireAppTokens(t, "app_a", nil, e.clock.Now())
	e.wantAlive(t, false, s1b, none)
	e.wantAlive(t, true, other)
}

// testExpireAppTokensNeverExtends: a later call that says later never
// revives a token an earlier call doomed, whether it covers the app or
// its session; one that says earlier brings the death forward.
func testExpireAppTokensNeverExtends(t *testing.T, e *env) {
	early := e.createAppToken(t, "app_a", "user_1")
	start := e.clock.Now()
	e.expireAppTokens(t, "app_a", nil, start.Add(time.Hour))
	e.clock.Advance(time.Second)
	middle := e.createAppToken(t, "app_a", "user_1")
	e.expireAppTokens(t, "app_a", nil, start.Add(3*time.Hour))
	e.expireAppTokens(t, "app_a", []string{"user_1"}, start.Add(4*time.Hour))
	e.clock.Advance(time.Second)
	late := e.createAppToken(t, "app_a", "user_1")

	e.clock.Set(start.Add(time.Hour - time.Millisecond))
	e.wantAlive(t, true, early, middle, late)
	e.clock.Set(start.Add(time.Hour))
	e.wantAlive(t, false, early)
	e.wantAlive(t, true, middle, late)
	e.clock.Set(start.Add(3 * time.Hour))
	e.wantAlive(t, false, middle)
	e.wantAlive(t, true, late)

	// Earlier: brings it forward.
	now := e.clock.Now()
	e.expireAppTokens(t, "app_a", []string{"user_1"}, now.Add(2*time.Hour))
	e.expireAppTokens(t, "app_a", []string{"user_1"}, now.Add(time.Hour))
	e.clock.Set(now.Add(time.Hour))
	e.wantAlive(t, false, late)
}

// testExpireAppTokensModel runs a long, seeded sequence of token
// creations and expiry calls over two apps and three sessions, checking
// every token against a model that keeps every call, so that a store
// that prunes its cut-offs wrongly is caught.
func testExpireAppTokensModel(t *testing.T, e *env) {
	type call struct {
		app      string
		sessions map[string]bool // nil: the whole app
		made, at time.Time
	}
	var (
		rng   = mrand.New(mrand.NewPCG(14, 2025))
		apps  = []string{"app_a", "app_b"}
		sess  = []string{"", "user_1", "user_2"}
		toks  []*webhook.AppToken
		calls []call
		ms    = func(max time.Duration) time.Duration {
			return time.Duration(rng.Int64N(int64(max/time.Millisecond))+1) * time.Millisecond
		}
		aliveM = func(tok *webhook.AppToken, now time.Time) bool {
			if !now.Before(tok.ExpiresAt) {
				return false
			}
			for _, c := range calls {
				covers := c.app == tok.AppID && (c.sessions == nil || c.sessions[tok.SessionID])
				if covers && !tok.CreatedAt.After(c.made) && !now.Before(c.at) && !now.Before(c.made) {
					return false
				}
			}
			return true
		}
	)
	for step := range 60 {
		e.clock.Advance(ms(6 * time.Hour))
		now := e.clock.Now()
		switch rng.IntN(3) {
		case 0:
			tok := e.newAppToken(apps[rng.IntN(2)], sess[rng.IntN(3)], ms(webhook.MaxAppTokenLife))
			if err := e.tokens(t).CreateAppToken(e.ctx, tok); err != nil {
				t.Fatalf("step %d: CreateAppToken: %v", step, err)
			}
			toks = append(toks, tok)
		case 1:
			c := call{app: apps[rng.IntN(2)], made: now, at: now.Add(ms(3*24*time.Hour) - time.Hour)}
			var list []string
			if rng.IntN(2) == 0 {
				c.sessions = map[string]bool{}
				for _, s := range sess[1:] {
					if rng.IntN(2) == 0 {
						c.sessions[s] = true
						list = append(list, s)
					}
				}
				if len(list) == 0 {
					c.sessions = nil
				}
			}
			e.expireAppTokens(t, c.app, list, c.at)
			calls = append(calls, c)
		case 2:
			for _, tok := range toks {
				want := aliveM(tok, now)
				_, err := e.tokens(t).GetAppToken(e.ctx, tok.Hash)
				if want && err != nil || !want && !webhook.IsNotFound(err) {
					t.Fatalf("step %d at %v: token of %s, session %q, created %v, expires %v: GetAppToken error %v, want live %v",
						step, now, tok.AppID, tok.SessionID, tok.CreatedAt, tok.ExpiresAt, err, want)
				}
			}
		}
	}
}

// testExpireAppTokensRace: racing calls each leave their cut-off; the
// earliest decides.
func testExpireAppTokensRace(t *testing.T, e *env) {
	tok := e.createAppToken(t, "app_a", "user_1")
	now := e.clock.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		var sessions []string
		if i%2 == 1 {
			sessions = []string{"user_1"}
		}
		wg.Go(func() {
			errs <- e.tokens(t).ExpireAppTokens(e.ctx, "app_a", sessions, now.Add(time.Duration(16-i)*time.Hour))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ExpireAppTokens: %v", err)
		}
	}
	e.clock.Set(now.Add(time.Hour - time.Millisecond))
	e.wantAlive(t, true, tok)
	e.clock.Set(now.Add(time.Hour))
	e.wantAlive(t, false, tok)
}
