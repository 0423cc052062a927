package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/webhook"
)

// The portal (see doc.go): the dashboard of one app for that app's owner,
// signed in with an app token, under /portal.
const (
	portalPrefix        = "/portal"
	portalSessionCookie = "hookstep_portal_session" // the app token itself
	portalCSRFCookie    = "hookstep_portal_csrf"    // the portal session's CSRF nonce
	// maxPortalToken bounds a token read from a request; longer ones are
	// refused without asking the store.
	maxPortalToken = 512
	// maxSessionBody bounds the body of POST /portal/session.
	maxSessionBody = 4 << 10
	// defaultPortalName is what the portal calls itself.
	defaultPortalName = "Webhooks"
)

// errNoSession is a portal request without a live app token: none, or one
// that expired, was deleted or expired early. fail shows the "link
// expired" page.
var errNoSession = errors.New("dashboard: no live portal session")

func forbidden() error {
	return &userError{status: http.StatusForbidden,
		msg: "Your access does not allow this. Ask the service you came from for a link with more rights."}
}

type portalKey struct{} // a *portalRequest: the request is under /portal

// portalRequest is what the portal knows of a request. It is shared by
// pointer through the request's contexts, so that fail, which sees the
// request as it came in, also knows the session a route checked.
type portalRequest struct {
	theme theme
	token *webhook.AppToken // the live session's token, once a route checked it
	app   *webhook.App      // the token's app
}

func portalOf(ctx context.Context) *portalRequest {
	p, _ := ctx.Value(portalKey{}).(*portalRequest)
	return p
}

// sessionOf returns the app token of a portal session, nil outside one
// (the admin dashboard, or a portal page that needs no session).
func sessionOf(ctx context.Context) *webhook.AppToken {
	if p := portalOf(ctx); p != nil {
		return p.token
	}
	return nil
}

// linkBase prefixes every link, form action and redirect of a page: the
// base path, and /portal on portal pages, so that a portal page only
// links to the portal.
func linkBase(ctx context.Context) string {
	if portalOf(ctx) != nil {
		return basePath(ctx) + portalPrefix
	}
	return basePath(ctx)
}

// can reports whether the request may do what c allows: always in the
// admin dashboard, per the session's token in the portal (nothing
// without a session).
func can(ctx context.Context, c webhook.Capability) bool {
	p := portalOf(ctx)
	return p == nil || (p.token != nil && p.token.Can(c))
}

// inScope reports whether the request may see app: admins see every app,
// a portal session only its token's (resolved by id or uid when the
// session was checked).
func inScope(ctx context.Context, app *webhook.App) bool {
	p := portalOf(ctx)
	return p == nil || (p.app != nil && p.app.ID == app.ID)
}

// perms are the capabilities a page shows the forms of.
type perms struct {
	ManageEndpoint bool // add, change, disable, enable and delete endpoints
	ViewSecret     bool // reveal signing secrets
	RotateSecret   bool
	CreateAttempts bool // resend, recover, send examples
}

func permsOf(ctx context.Context) perms {
	return perms{
		ManageEndpoint: can(ctx, webhook.CapManageEndpoint),
		ViewSecret:     can(ctx, webhook.CapViewEndpointSecret),
		RotateSecret:   can(ctx, webhook.CapManageEndpointSecret),
		CreateAttempts: can(ctx, webhook.CapCreateAttempts),
	}
}

// portalRoutes registers the portal's own pages; every other portal path
// is a dashboard route under /portal (see route).
func (h *handler) portalRoutes() {
	h.portal.Handle("GET /portal", h.serve(h.portalLanding))
	h.portal.Handle("POST /portal/session", h.serve(h.startPortalSession))
	h.portal.Handle("GET /portal/expired", h.serve(func(http.ResponseWriter, *http.Request) error { return errNoSession }))
	h.portal.Handle("GET /portal/theme.css", h.serve(h.themeStylesheet))
	h.portal.Handle("GET /portal/{$}", h.serve(h.portalHome))
	h.portal.Handle("/portal/", http.StripPrefix(portalPrefix, h.mux))
}

// isPortalPath reports whether a path is the portal's.
func isPortalPath(p string) bool {
	return p == portalPrefix || strings.HasPrefix(p, portalPrefix+"/")
}

// servePortal serves a portal path: it marks the request as the portal's,
// reads its theme and sets the portal's headers. The session is checked by
// each route that needs one.
func (h *handler) servePortal(w http.ResponseWriter, r *http.Request) {
	pr := &portalRequest{}
	r = r.WithContext(context.WithValue(r.Context(), portalKey{}, pr))
	// The stylesheet's parameters are its content, not the session's
	// theme; and a response that caches may not set cookies.
	if r.URL.Path != portalPrefix+"/theme.css" {
		pr.theme = h.portalTheme(w, r, r.URL.Path == portalPrefix && r.Method == http.MethodGet)
	}
	hd := w.Header()
	img := "'self'"
	if o := pr.theme.origin(); o != "" {
		img += " " + o
	}
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src "+img+
		"; base-uri 'none'; form-action 'self'; frame-ancestors "+h.frameAncestors+"; object-src 'none'")
	// The link's token is in the fragment, never sent; and no portal
	// address leaves for another site.
	hd.Set("Referrer-Policy", "no-referrer")
	if h.frameAncestors == "'none'" {
		hd.Set("X-Frame-Options", "DENY")
	}
	h.portal.ServeHTTP(w, r)
}

// portalRoute checks a portal request of a dashboard route: a live app
// token in the session cookie, a CSRF token on forms, and cap. Routes of
// the admin dashboard only (cap adminOnly) do not exist in the portal.
// Another app's ids are not found (loadApp): the check that comes first
// is the capability, which needs no read.
func (h *handler) portalRoute(w http.ResponseWriter, r *http.Request, cap webhook.Capability, form bool, f handlerFunc) error {
	if cap == adminOnly {
		return notFound()
	}
	tok, app, err := h.portalSession(r)
	if err != nil {
		return err
	}
	p := portalOf(r.Context())
	p.token, p.app = tok, app
	w.Header().Set("Cache-Control", "no-store")
	if form {
		if err := h.checkForm(w, r); err != nil {
			return err
		}
	}
	if !tok.Can(cap) {
		return forbidden()
	}
	return f(w, r)
}

// portalSession returns the live app token of the request's session
// cookie and its app, read anew from the store on every request, so that
// a token that expired, was deleted (logout) or expired early stops
// working at once. errNoSession when there is none, or its app is gone.
func (h *handler) portalSession(r *http.Request) (*webhook.AppToken, *webhook.App, error) {
	c, err := r.Cookie(portalSessionCookie)
	if err != nil {
		return nil, nil, errNoSession
	}
	tok, err := h.liveAppToken(r.Context(), c.Value)
	if err != nil {
		return nil, nil, err
	}
	app, err := h.tokenApp(r.Context(), tok)
	return tok, app, err
}

// tokenApp returns the app of a token (by id or uid): errNoSession when
// it was deleted.
func (h *handler) tokenApp(ctx context.Context, tok *webhook.AppToken) (*webhook.App, error) {
	if tok.AppID == "" || len(tok.AppID) > maxPathValue {
		return nil, errNoSession
	}
	app, err := h.store.GetApp(ctx, tok.AppID)
	if webhook.IsNotFound(err) {
		return nil, errNoSession
	}
	return app, err
}

// liveAppToken looks a token up by its hash: errNoSession unless it is
// live.
func (h *handler) liveAppToken(ctx context.Context, token string) (*webhook.AppToken, error) {
	if token == "" || len(token) > maxPortalToken {
		return nil, errNoSession
	}
	tok, err := h.appTokens.GetAppToken(ctx, authtoken.EncodeHash(authtoken.Hash(token)))
	if webhook.IsNotFound(err) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	return tok, nil // live: GetAppToken finds no expired or cut-off token
}

type portalLandingData struct {
	layout
}

// portalLanding is the page a portal link opens: its script posts the
// token of the link's fragment to /portal/session and goes on to the
// app's page (see static/app.js).
func (h *handler) portalLanding(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	data := portalLandingData{h.newPage(w, r, "Opening", "")}
	return h.render(w, r, http.StatusOK, "portal.html", &data)
}

// startPortalSession turns the token of a portal link into a session: it
// checks the token and keeps it in the partitioned session cookie, with a
// new CSRF nonce. It answers JSON with the page to go to: the app's, or
// the "link expired" page.
//
// Only the portal's own script can call it: a cross-site form cannot send
// JSON, and a cross-site fetch of JSON needs a preflight this handler does
// not answer; the browser's Sec-Fetch-Site says so too.
func (h *handler) startPortalSession(w http.ResponseWriter, r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return forbidden()
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &userError{status: http.StatusUnsupportedMediaType, msg: "Send the token as JSON."}
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSessionBody)).Decode(&body); err != nil {
		return badRequest("The request could not be read.")
	}
	w.Header().Set("Cache-Control", "no-store")
	tok, err := h.liveAppToken(r.Context(), body.Token)
	var app *webhook.App
	if err == nil {
		app, err = h.tokenApp(r.Context(), tok)
	}
	if errors.Is(err, errNoSession) {
		h.setCookie(w, r, portalSessionCookie, "", -1)
		return writeJSON(w, http.StatusUnauthorized, map[string]string{"location": linkBase(r.Context()) + "/expired"})
	}
	if err != nil {
		return err
	}
	h.setCookie(w, r, portalSessionCookie, body.Token, 0)
	h.setCookie(w, r, portalCSRFCookie, newNonce(), 0)
	return writeJSON(w, http.StatusOK, map[string]string{"location": linkBase(r.Context()) + appPath(app.ID)})
}

// portalHome is /portal/: the session's app.
func (h *handler) portalHome(w http.ResponseWriter, r *http.Request) error {
	_, app, err := h.portalSession(r)
	if err != nil {
		return err
	}
	loc := appPath(app.ID)
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	return redirect(w, r, loc)
}

func appPath(appID string) string { return "/app/" + url.PathEscape(appID) }

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// ParseFrameAncestors reads the origins that may embed the portal in a
// frame (HOOKSTEP_PORTAL_FRAME_ANCESTORS): a space- or comma-separated
// list of http or https origins, such as https://dashboard.example.com or
// https://*.example.com:8443. It returns them as they go into the
// portal's Content-Security-Policy (frame-ancestors), or an error naming
// every entry that is not an origin.
func ParseFrameAncestors(s string) ([]string, error) {
	var out, bad []string
	for _, item := range splitList(s) {
		o, ok := frameAncestor(item)
		if !ok {
			bad = append(bad, fmt.Sprintf("%q", item))
			continue
		}
		out = append(out, o)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%s: want origins such as https://dashboard.example.com (scheme, host, optional port; no path)", strings.Join(bad, ", "))
	}
	return out, nil
}

// frameAncestor returns item as a CSP source of one origin, if it is one.
func frameAncestor(item string) (string, bool) {
	u, err := url.Parse(item)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return "", false
	}
	if !hostChars.MatchString(strings.TrimPrefix(u.Host, "*.")) {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}
