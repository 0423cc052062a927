package webhook

import (
	"context"
	"slices"
	"time"
)

// Capability is what an app token lets its holder do in the app's
// webhooks portal and on the app's API routes (Svix's
// AppPortalCapability).
type Capability string

// The capabilities. ViewBase is implied by every token.
const (
	// CapViewBase: read the app's endpoints (without secrets), messages,
	// attempts, statistics and the event-type catalog.
	CapViewBase Capability = "ViewBase"
	// CapViewEndpointSecret: also read endpoint secrets.
	CapViewEndpointSecret Capability = "ViewEndpointSecret"
	// CapManageEndpointSecret: also rotate them (and read them).
	CapManageEndpointSecret Capability = "ManageEndpointSecret"
	// CapManageTransformations is accepted for Svix compatibility and
	// grants nothing: hookstep has no transformations.
	CapManageTransformations Capability = "ManageTransformations"
	// CapCreateAttempts: resend messages, recover failed ones, send
	// example messages.
	CapCreateAttempts Capability = "CreateAttempts"
	// CapManageEndpoint: create, change, disable, enable and delete
	// endpoints, their headers and secrets.
	CapManageEndpoint Capability = "ManageEndpoint"
)

// Capabilities are all the capabilities, which a token gets when its
// request names none.
var Capabilities = []Capability{CapViewBase, CapViewEndpointSecret, CapManageEndpointSecret,
	CapManageTransformations, CapCreateAttempts, CapManageEndpoint}

// AppToken is an app-scoped access token (Svix's app portal token): it
// signs a browser into one app's webhooks portal, and works as a Bearer
// token on that app's API routes, within its capabilities. Only its
// SHA-256 is stored (Hash, hex, as authtoken.EncodeHash writes it).
type AppToken struct {
	Hash         string
	AppID        string
	Capabilities []Capability
	ReadOnly     bool
	SessionID    string
	FeatureFlags []string
	CreatedAt    time.Time // the store's clock
	ExpiresAt    time.Time
}

// Can reports whether the token allows c: a read-only token allows
// reading only (ViewBase and ViewEndpointSecret); ManageEndpoint implies
// the secret capabilities, ManageEndpointSecret ViewEndpointSecret.
func (t *AppToken) Can(c Capability) bool {
	if c == CapViewBase {
		return true
	}
	if t.ReadOnly && c != CapViewEndpointSecret {
		return false
	}
	has := func(c Capability) bool { return slices.Contains(t.Capabilities, c) }
	switch c {
	case CapViewEndpointSecret:
		return has(c) || has(CapManageEndpointSecret) || has(CapManageEndpoint)
	case CapManageEndpointSecret:
		return has(c) || has(CapManageEndpoint)
	}
	return has(c)
}

// SeesEventType reports whether the token's holder may see et in the
// catalog, as in Svix: a type without feature flags, or one whose every
// flag the token holds (a type gated twice stays hidden from a token
// opened for one gate only). A nil token is the admin's, who sees every
// type. A hidden type reads as absent wherever the holder looks.
func (t *AppToken) SeesEventType(et *EventType) bool {
	if t == nil {
		return true
	}
	for _, ff := range et.FeatureFlags {
		if !slices.Contains(t.FeatureFlags, ff) {
			return false
		}
	}
	return true
}

// SleepPastMillisecond returns once c's clock is in a later millisecond
// than when it was called, sleeping at most a millisecond: stores stamp
// app tokens and the cut-offs of ExpireAppTokens to the millisecond, and
// a token created in the millisecond of a cut-off is covered by it.
func SleepPastMillisecond(c Clock) {
	now := c.Now()
	if d := now.Truncate(time.Millisecond).Add(time.Millisecond).Sub(now); d > 0 {
		time.Sleep(d)
	}
}

// MaxAppTokenLife is the longest an app token lives (Svix's bound on
// the portal access expiry: 7 days). Stores rely on it to forget a
// cut-off of ExpireAppTokens once every token it covers has expired.
const MaxAppTokenLife = 7 * 24 * time.Hour

// AppTokenStore keeps app tokens (internal/sqlite, internal/dynamo).
// The contract suite's AppTokens tests (internal/webhook/storetest) pin
// it down.
type AppTokenStore interface {
	// CreateAppToken stores a new token, created now: it sets CreatedAt
	// (the store's clock). Conflict if its hash exists; Invalid if
	// ExpiresAt is not after now or more than MaxAppTokenLife after it.
	CreateAppToken(ctx context.Context, t *AppToken) error
	// GetAppToken returns the live token with the hash: NotFound if it
	// does not exist, has expired (ExpiresAt, the store's clock), was
	// deleted, or an ExpireAppTokens that covers it has taken effect.
	GetAppToken(ctx context.Context, hash string) (*AppToken, error)
	// DeleteAppToken removes a token (logout); deleting a missing one is
	// not an error.
	DeleteAppToken(ctx context.Context, hash string) error
	// ExpireAppTokens makes every token of the app created up to now (the
	// store's clock) — or, when sessionIDs is not empty, those of these
	// sessions — dead from at on (now or later; an earlier at means now).
	// A token dies at the earliest time any call that covers it says: a
	// later call never extends an earlier one. Tokens created after the
	// call are not affected. It reads no token (no scan): it records a
	// cut-off per app or per session (AppTokenCutoffs), which GetAppToken
	// applies.
	ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) error
}

// AppTokenCutoff is what one ExpireAppTokens call says about one scope
// (an app, or one session of it): the tokens created at or before
// CreatedBy die at DeadAt.
type AppTokenCutoff struct {
	CreatedBy time.Time
	DeadAt    time.Time
}

// AppTokenCutoffs are the cut-offs of one scope, which a store keeps in
// one record, as few as decide the same: see Add.
type AppTokenCutoffs []AppTokenCutoff

// Add returns the cut-offs with c added, keeping only those that can
// still decide a token's death at now or later, oldest CreatedBy first.
// Dropped are those
//
//   - whose tokens have all expired (CreatedBy + MaxAppTokenLife is not
//     after now), and
//   - dominated by another that covers every token they cover
//     (CreatedBy as late or later) and kills them no later (DeadAt, or
//     now for a DeadAt already passed, as early or earlier): of the
//     cut-offs already in effect only the latest CreatedBy is kept.
//
// Since calls come in the order of their clock, a new cut-off dominates
// every earlier one with a later DeadAt; the ones left die later than
// the new one, and each covers fewer tokens than the one before: a
// staircase no longer than the calls of the last MaxAppTokenLife.
func (cs AppTokenCutoffs) Add(c AppTokenCutoff, now time.Time) AppTokenCutoffs {
	if c.DeadAt.Before(now) {
		c.DeadAt = now
	}
	effective := func(c AppTokenCutoff) time.Time {
		if c.DeadAt.Before(now) {
			return now
		}
		return c.DeadAt
	}
	all := append(slices.Clone(cs), c)
	// Latest CreatedBy first, then earliest DeadAt: a cut-off is
	// dominated iff one before it in this order dies no later.
	slices.SortStableFunc(all, func(a, b AppTokenCutoff) int {
		if d := b.CreatedBy.Compare(a.CreatedBy); d != 0 {
			return d
		}
		return a.DeadAt.Compare(b.DeadAt)
	})
	var kept AppTokenCutoffs
	var earliest time.Time // the earliest effective DeadAt kept so far
	for _, x := range all {
		if !x.CreatedBy.Add(MaxAppTokenLife).After(now) {
			continue
		}
		if e := effective(x); len(kept) == 0 || e.Before(earliest) {
			kept = append(kept, x)
			earliest = e
		}
	}
	slices.Reverse(kept)
	return kept
}

// DeadAt returns when the cut-offs kill a token created at created: the
// earliest DeadAt of those that cover it, or the zero time if none does.
func (cs AppTokenCutoffs) DeadAt(created time.Time) time.Time {
	var dead time.Time
	for _, c := range cs {
		if !created.After(c.CreatedBy) && (dead.IsZero() || c.DeadAt.Before(dead)) {
			dead = c.DeadAt
		}
	}
	return dead
}

// ExpiresAt is when a store may forget the cut-offs: when every token
// they cover has expired.
func (cs AppTokenCutoffs) ExpiresAt() time.Time {
	var last time.Time
	for _, c := range cs {
		if c.CreatedBy.After(last) {
			last = c.CreatedBy
		}
	}
	return last.Add(MaxAppTokenLife)
}

// Alive reports whether a token is live at now under the cut-offs of its
// app and of its session.
func (t *AppToken) Alive(now time.Time, cutoffs ...AppTokenCutoffs) bool {
	if !now.Before(t.ExpiresAt) {
		return false
	}
	for _, cs := range cutoffs {
		if dead := cs.DeadAt(t.CreatedAt); !dead.IsZero() && !now.Before(dead) {
			return false
		}
	}
	return true
}

// CheckAppTokenLife reports, as an Invalid error, a token that a store
// must refuse: one that does not live after now or lives longer than
// MaxAppTokenLife from now.
func CheckAppTokenLife(t *AppToken, now time.Time) error {
	if !t.ExpiresAt.After(now) || t.ExpiresAt.After(now.Add(MaxAppTokenLife)) {
		return Invalid([]string{"body", "expiry"}, "an app token lives up to %s", MaxAppTokenLife)
	}
	return nil
}
