package api

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/webhook"
)

// principal is who a request authenticated as: the admin (app == nil) or
// the holder of an app token.
type principal struct {
	app *webhook.AppToken
	// pathApp is the app of the path's {app_id} as authorize resolved it
	// for an app token, so that the handler acts on the app authorize
	// checked (and reads it once).
	pathApp *webhook.App
}

type principalKey struct{}

// principalOf returns the request's principal; nil before authentication
// (and for the health check, which needs none).
func principalOf(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// maxTokenLen bounds a bearer token: no token hookstep makes is longer,
// so a longer one is refused before any hashing or store lookup.
const maxTokenLen = 512

// authenticate checks the request's bearer token: the admin token (its
// hash, in constant time), or an app token, looked up by its hash on
// every request so that logout and expire-all take effect at once. A
// token without the app prefix is never looked up.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, unauthorized("Missing Authorization header")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, unauthorized("Authorization header must be 'Bearer <token>'")
	}
	token = strings.TrimSpace(token)
	if authtoken.Matches(s.tokenHash, token) {
		return &principal{}, nil
	}
	if s.appTokens == nil || len(token) > maxTokenLen || !strings.HasPrefix(token, authtoken.AppPrefix) {
		return nil, unauthorized("Invalid token")
	}
	t, err := s.appTokens.GetAppToken(r.Context(), authtoken.EncodeHash(authtoken.Hash(token)))
	if webhook.IsNotFound(err) {
		return nil, unauthorized("Invalid or expired token")
	}
	if err != nil {
		return nil, err
	}
	return &principal{app: t}, nil
}

func unauthorized(detail string) error {
	return &webhook.Error{Kind: webhook.KindUnauthorized, Msg: detail}
}

// tokenHashOf returns the SHA-256 of the request's bearer token, which
// scopes idempotency keys. The request has already been authenticated.
func tokenHashOf(r *http.Request) [32]byte {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return sha256.Sum256([]byte(strings.TrimSpace(token)))
}

// access is who may call a route: every route is registered with one
// (Server.handle), so the table of routes in routes is also the table of
// what an app token may do. The admin token may call every route.
type access struct {
	// admin: the admin token only; an app token gets 403.
	admin bool
	// anyToken: any valid token; the handler decides (logout).
	anyToken bool
	// capability an app token needs (see webhook.AppToken.Can, which
	// also refuses every capability but the view ones to a read-only
	// token).
	capability webhook.Capability
}

// The accesses routes are registered with.
var (
	adminOnly      = access{admin: true}
	anyToken       = access{anyToken: true}
	viewBase       = access{capability: webhook.CapViewBase}
	viewSecret     = access{capability: webhook.CapViewEndpointSecret}
	manageSecret   = access{capability: webhook.CapManageEndpointSecret}
	manageEndpoint = access{capability: webhook.CapManageEndpoint}
	createAttempts = access{capability: webhook.CapCreateAttempts}
)

// authorize checks an authenticated request against its route's access.
// For an app token, a route under {app_id} must name the token's app (by
// id or uid): another app, or one that does not exist, is a 404 as if it
// did not exist, before any 403, so that a token learns nothing about
// other apps. Then the route must be one for app tokens (else 403) and
// the token must have the capability (else 403).
func (s *Server) authorize(r *http.Request, a access) error {
	p := principalOf(r)
	if p == nil || p.app == nil || a.anyToken {
		return nil
	}
	if strings.Contains(r.Pattern, "{app_id}") {
		app, err := s.appFromPath(r)
		if err != nil {
			return err
		}
		if app.ID != p.app.AppID {
			return errNotFound("Application")
		}
		p.pathApp = app
	}
	if a.admin {
		return webhook.Forbidden("This operation needs the admin token; an app token cannot do it")
	}
	if !p.app.Can(a.capability) {
		if p.app.ReadOnly && a.capability != webhook.CapViewEndpointSecret {
			return webhook.Forbidden("This app token is read-only")
		}
		return webhook.Forbidden("This app token lacks the %s capability", a.capability)
	}
	return nil
}

// withPrincipal returns r carrying p, for authorize and the handlers.
func withPrincipal(r *http.Request, p *principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}
