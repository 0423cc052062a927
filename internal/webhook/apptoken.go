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

// AppTokenStore keeps app tokens (internal/sqlite, internal/dynamo).
type AppTokenStore interface {
	// CreateAppToken stores a new token; Conflict if its hash exists.
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
	// sessions — dead from at on (now or later). A token dies at the
	// earliest time any call that covers it says: a later call never
	// extends an earlier one. Tokens created after the call are not
	// affected. It reads no token (no scan): it records a cut-off per app
	// or per session, which GetAppToken applies.
	ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) error
}
