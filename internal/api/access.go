package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/webhook"
)

// The routes of Svix's Authentication API.
const (
	portalAccessRoute    = "POST /api/v1/auth/app-portal-access/{app_id}"
	dashboardAccessRoute = "POST /api/v1/auth/dashboard-access/{app_id}"
	logoutRoute          = "POST /api/v1/auth/logout"
	expireAllRoute       = "POST /api/v1/auth/app/{app_id}/expire-all"
)

// noIdempotency are the POST routes whose idempotency keys are ignored:
// an access link's response holds a live token, which must not be stored
// (the idempotency record keeps responses for 24 h, in plain text). A
// repeated call mints another token, which is harmless; logout and
// expire-all are idempotent by nature.
var noIdempotency = map[string]bool{
	portalAccessRoute:    true,
	dashboardAccessRoute: true,
	logoutRoute:          true,
	expireAllRoute:       true,
}

// The bounds of the access API, Svix's.
const (
	// minPortalExpiry and webhook.MaxAppTokenLife bound an access link's
	// expiry, which defaults to the latter.
	minPortalExpiry = time.Hour
	// maxExpireAllDelay bounds expire-all's expiry (default 0: now).
	maxExpireAllDelay = 72 * time.Hour
	// maxSessionIDs bounds expire-all's sessionIds: each is a write.
	maxSessionIDs = 100
	// maxSessionID bounds a session id's length.
	maxSessionID = 256
)

// portalPath is where the dashboard serves the portal; the token follows
// in the fragment, which browsers send to no server and put in no
// Referer.
const portalPath = "/portal#key="

// accessOut is AppPortalAccessOut and DashboardAccessOut.
type accessOut struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// tokenSpec is what a new app token allows.
type tokenSpec struct {
	expiry       time.Duration
	capabilities []webhook.Capability
	readOnly     bool
	sessionID    string
	featureFlags []string
}

// appPortalAccess answers POST /api/v1/auth/app-portal-access/{app_id}
// (AppPortalAccessIn): a new app token for the app, and the portal URL
// that signs a browser in with it. With "application", an app that does
// not exist is created first (Svix's implicit creation).
func (s *Server) appPortalAccess(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeOptionalObject(w, r, &p)
	if err != nil {
		return err
	}
	spec := readTokenSpec(f)
	appIn := readNestedApp(f)
	if err := p.Err(); err != nil {
		return err
	}
	app, err := s.appOrCreate(r, appIn)
	if err != nil {
		return err
	}
	return s.issueToken(w, r, app, spec)
}

// dashboardAccess answers POST /api/v1/auth/dashboard-access/{app_id},
// Svix's older call: a token with every capability for 7 days. Any body
// is ignored.
func (s *Server) dashboardAccess(w http.ResponseWriter, r *http.Request) error {
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	return s.issueToken(w, r, app, tokenSpec{expiry: webhook.MaxAppTokenLife, capabilities: webhook.Capabilities})
}

// readTokenSpec reads AppPortalAccessIn's token fields. Absent (or null)
// capabilities mean all of them; ViewBase is always added.
func readTokenSpec(f *fields) tokenSpec {
	spec := tokenSpec{expiry: webhook.MaxAppTokenLife, capabilities: webhook.Capabilities}
	if e := field[int64](f, "expiry"); e.Value() {
		if e.V < int64(minPortalExpiry/time.Second) || e.V > int64(webhook.MaxAppTokenLife/time.Second) {
			f.p.Add(loc("body", "expiry"), "must be from %d (1 hour) to %d (7 days) seconds",
				int64(minPortalExpiry/time.Second), int64(webhook.MaxAppTokenLife/time.Second))
		} else {
			spec.expiry = time.Duration(e.V) * time.Second
		}
	}
	if cs := field[[]string](f, "capabilities"); cs.Value() {
		spec.capabilities = []webhook.Capability{webhook.CapViewBase}
		for _, c := range cs.V {
			if !slices.Contains(webhook.Capabilities, webhook.Capability(c)) {
				f.p.Add(loc("body", "capabilities"), "unknown capability %q: want one of %s", c, capabilityNames())
				continue
			}
			if !slices.Contains(spec.capabilities, webhook.Capability(c)) {
				spec.capabilities = append(spec.capabilities, webhook.Capability(c))
			}
		}
	}
	if ro := field[bool](f, "readOnly"); ro.Value() {
		spec.readOnly = ro.V
	}
	if sid := field[string](f, "sessionId"); sid.Value() {
		if len(sid.V) > maxSessionID {
			f.p.Add(loc("body", "sessionId"), "must be at most %d characters", maxSessionID)
		}
		spec.sessionID = sid.V
	}
	if ff := field[[]string](f, "featureFlags"); ff.Value() {
		if len(ff.V) > maxFeatureFlags {
			f.p.Add(loc("body", "featureFlags"), "at most %d feature flags", maxFeatureFlags)
		}
		for _, flag := range ff.V {
			webhook.ValidateEventTypeName(f.p, loc("body", "featureFlags"), flag)
			if !slices.Contains(spec.featureFlags, flag) {
				spec.featureFlags = append(spec.featureFlags, flag)
			}
		}
	}
	return spec
}

func capabilityNames() string {
	names := make([]string, len(webhook.Capabilities))
	for i, c := range webhook.Capabilities {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// readNestedApp reads the "application" (ApplicationIn) of the body f,
// an AppPortalAccessIn or a MessageIn: nil when it has none, or when it
// is not valid, with its problems under ["body", "application", ...].
func readNestedApp(body *fields) *appInput {
	raw := field[json.RawMessage](body, "application")
	if !raw.Value() {
		return nil
	}
	p := body.p
	var inner webhook.Problems
	f, err := parseObject(raw.V, &inner)
	if err != nil {
		p.Add(loc("body", "application"), "must be an object")
		return nil
	}
	in := readAppInput(f, true)
	var e *webhook.Error
	if err := inner.Err(); errors.As(err, &e) {
		for _, fe := range e.Fields {
			l := append(loc("body", "application"), fe.Loc[min(1, len(fe.Loc)):]...)
			p.Add(l, "%s", fe.Msg)
		}
		return nil
	}
	return &in
}

// appOrCreate returns the app of {app_id}; when it does not exist and the
// request has an application, it creates it, as Svix does: the body's uid
// must then be the path's (a body without a uid takes the path's). Both
// AppPortalAccessIn and MessageIn carry such an application.
func (s *Server) appOrCreate(r *http.Request, in *appInput) (*webhook.App, error) {
	app, err := s.appFromPath(r)
	if in == nil || !webhook.IsNotFound(err) {
		return app, err
	}
	pathUID := r.PathValue("app_id")
	if !in.uid.Value() {
		var p webhook.Problems
		webhook.ValidateUID(&p, loc("body", "application", "uid"), pathUID)
		if err := p.Err(); err != nil {
			return nil, webhook.Invalid(loc("body", "application", "uid"),
				"Application UID not set in body, and the path's %q is not a valid uid", pathUID)
		}
		in.uid = opt[string]{Set: true, V: pathUID}
	} else if in.uid.V != pathUID {
		return nil, webhook.Invalid(loc("body", "application", "uid"), "Application UID in the path and body must match")
	}
	ctx := r.Context()
	now := s.now()
	app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	in.apply(app)
	if err := s.store.CreateApp(ctx, app); err != nil {
		if !webhook.IsConflict(err) {
			return nil, err
		}
		// A concurrent request created it first.
		existing, err := s.store.GetApp(ctx, app.UID)
		if err != nil {
			return nil, errUIDTaken("An application", app.UID)
		}
		return existing, nil
	}
	return app, nil
}

// issueToken mints and stores an app token for app and answers its URL.
// The token is the app's id (never the uid the path may have named), so
// a later rename of the uid keeps it working. The token is never logged.
func (s *Server) issueToken(w http.ResponseWriter, r *http.Request, app *webhook.App, spec tokenSpec) error {
	if s.appTokens == nil {
		return errors.New("api: no AppTokenStore configured")
	}
	token, err := authtoken.GenerateApp()
	if err != nil {
		return err
	}
	t := &webhook.AppToken{
		Hash:         authtoken.EncodeHash(authtoken.Hash(token)),
		AppID:        app.ID,
		Capabilities: spec.capabilities,
		ReadOnly:     spec.readOnly,
		SessionID:    spec.sessionID,
		FeatureFlags: spec.featureFlags,
		ExpiresAt:    s.now().Add(spec.expiry),
	}
	if err := s.appTokens.CreateAppToken(r.Context(), t); err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, accessOut{URL: s.publicBase(r) + portalPath + token, Token: token})
	return nil
}

// publicBase is the scheme, host and path prefix under which browsers
// reach this server: PublicURL when set, else the request's (https when
// the request came over TLS or a proxy says so in X-Forwarded-Proto, as
// the dashboard decides it).
func (s *Server) publicBase(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ","); strings.EqualFold(strings.TrimSpace(proto), "https") {
		scheme = "https"
	}
	base := ""
	if s.basePath != nil {
		base = strings.TrimSuffix(s.basePath(r), "/")
	}
	return scheme + "://" + r.Host + base
}

// logout answers POST /api/v1/auth/logout: the app token that calls it is
// dead at once (204). The admin token cannot be logged out (Svix: "trying
// to log out other tokens will fail"): 403.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	p := principalOf(r)
	if p == nil || p.app == nil {
		return webhook.Forbidden("Only an app token can be logged out; the admin token is not")
	}
	if err := s.appTokens.DeleteAppToken(r.Context(), p.app.Hash); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// expireAll answers POST /api/v1/auth/app/{app_id}/expire-all
// (ApplicationTokenExpireIn): every token of the app created so far — or
// of the sessions named — dies expiry seconds from now (0 to 72 hours,
// default 0). A later call never extends an earlier one.
func (s *Server) expireAll(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeOptionalObject(w, r, &p)
	if err != nil {
		return err
	}
	var delay time.Duration
	if e := field[int64](f, "expiry"); e.Value() {
		if e.V < 0 || e.V > int64(maxExpireAllDelay/time.Second) {
			p.Add(loc("body", "expiry"), "must be from 0 to %d seconds (72 hours)", int64(maxExpireAllDelay/time.Second))
		} else {
			delay = time.Duration(e.V) * time.Second
		}
	}
	var sessions []string
	if ids := field[[]string](f, "sessionIds"); ids.Value() {
		if len(ids.V) > maxSessionIDs {
			p.Add(loc("body", "sessionIds"), "must hold at most %d session ids", maxSessionIDs)
		}
		for _, id := range ids.V {
			if id == "" || len(id) > maxSessionID {
				p.Add(loc("body", "sessionIds"), "each session id must be 1 to %d characters", maxSessionID)
				break
			}
			if !slices.Contains(sessions, id) {
				sessions = append(sessions, id)
			}
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	if s.appTokens == nil {
		return errors.New("api: no AppTokenStore configured")
	}
	if err := s.appTokens.ExpireAppTokens(r.Context(), app.ID, sessions, s.now().Add(delay)); err != nil {
		return err
	}
	// The stores stamp tokens and cut-offs to the millisecond, so a token
	// minted in the cut-off's millisecond would read as covered by it:
	// answer once that millisecond is over, so that every link asked for
	// after this answer ("log out everywhere, then open Webhooks again")
	// works.
	webhook.SleepPastMillisecond(s.clock)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
