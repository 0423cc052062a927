package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/webhook"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Config is everything the dashboard needs.
type Config struct {
	Store webhook.Store
	// Deliveries is what the dashboard needs from the delivery engine
	// (internal/delivery.Service): manual runs only. Messages never reach
	// the dashboard through Publish: it only re-sends, and sends examples
	// to one endpoint as manual runs (see doc.go).
	Deliveries webhook.Resender
	Clock      webhook.Clock // nil means webhook.SystemClock
	// TokenHash is the SHA-256 of the admin token, the one credential of
	// both the API and the dashboard.
	TokenHash [32]byte
	Logger    *slog.Logger // nil discards logs
	// AllowPrivateTargets and RequireHTTPS are the endpoint URL policy,
	// as for the API.
	AllowPrivateTargets bool
	RequireHTTPS        bool
	// Play keeps what the Play test receiver got. Nil turns Play off: no
	// "Use Play" button, and /play/ answers 404.
	Play play.Store
	// BasePath, when set, gives each request's public path prefix (the
	// API Gateway stage, e.g. "/prod"); it is applied as WithBasePath.
	BasePath func(*http.Request) string
	// Retention is how long an example message sent from an event type's
	// page is kept (see api.Config.Retention); zero means 90 days.
	Retention time.Duration
	// Operational sends the operational webhooks of the endpoint changes
	// made here (admin and portal); nil sends none.
	Operational *operational.Emitter
	// AppTokens checks the app tokens that sign customers into the portal
	// (/portal, see doc.go). Nil turns the portal off: /portal is 404.
	AppTokens webhook.AppTokenStore
	// PortalFrameAncestors are the origins that may embed the portal in a
	// frame (its CSP frame-ancestors), each as ParseFrameAncestors returns
	// it; none means no site may. The admin dashboard may never be framed.
	PortalFrameAncestors []string
	// PortalName is what the portal calls itself; "" means "Webhooks".
	PortalName string
}

type basePathKey struct{}

// WithBasePath returns a context under which the dashboard prefixes every
// link, form action, redirect and cookie path with base: "/prod" when API
// Gateway serves it under a stage while the handler sees paths without it.
// Without it the prefix is "".
func WithBasePath(ctx context.Context, base string) context.Context {
	base = strings.TrimRight(base, "/")
	if base != "" && !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	return context.WithValue(ctx, basePathKey{}, base)
}

// basePath returns the prefix set by WithBasePath, or "".
func basePath(ctx context.Context) string {
	s, _ := ctx.Value(basePathKey{}).(string)
	return s
}

// handler is the dashboard. Its methods that serve a route return an error
// for fail to turn into an error page.
type handler struct {
	store      webhook.Store
	deliveries webhook.Resender
	clock      webhook.Clock
	tokenHash  [32]byte
	log        *slog.Logger
	urlPolicy  webhook.URLPolicy
	play       play.Store
	basePathOf func(*http.Request) string
	retention  time.Duration // of an example message
	ops        *operational.Emitter
	pages      map[string]*template.Template
	mux        *http.ServeMux // the dashboard's routes, of the admin and (under /portal) the portal
	// The portal; portal is nil when it is off.
	appTokens      webhook.AppTokenStore
	frameAncestors string // the portal's CSP frame-ancestors
	portalName     string
	portal         *http.ServeMux
}

// New returns the dashboard: an http.Handler for every path outside /api/.
// It panics if its embedded templates do not parse, which a test catches,
// or if an entry of cfg.PortalFrameAncestors is not an origin (read them
// with ParseFrameAncestors).
func New(cfg Config) http.Handler {
	h := &handler{
		store:      cfg.Store,
		deliveries: cfg.Deliveries,
		clock:      cfg.Clock,
		tokenHash:  cfg.TokenHash,
		log:        cfg.Logger,
		urlPolicy:  webhook.URLPolicy{AllowPrivate: cfg.AllowPrivateTargets, RequireHTTPS: cfg.RequireHTTPS},
		play:       cfg.Play,
		basePathOf: cfg.BasePath,
		retention:  webhook.DefaultRetention(cfg.Retention),
		ops:        cfg.Operational,
		pages:      parsePages(),
		mux:        http.NewServeMux(),
		appTokens:  cfg.AppTokens,
		portalName: cfg.PortalName,
	}
	if h.portalName == "" {
		h.portalName = defaultPortalName
	}
	h.frameAncestors = "'none'"
	if len(cfg.PortalFrameAncestors) > 0 {
		for _, o := range cfg.PortalFrameAncestors {
			if _, ok := frameAncestor(o); !ok {
				panic("dashboard: PortalFrameAncestors: " + o + " is not an origin")
			}
		}
		h.frameAncestors = strings.Join(cfg.PortalFrameAncestors, " ")
	}
	if h.clock == nil {
		h.clock = webhook.SystemClock{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.routes()
	if h.appTokens != nil {
		h.portal = http.NewServeMux()
		h.portalRoutes()
	}
	return h
}

// adminOnly is the capability of a route that the portal does not have.
const adminOnly webhook.Capability = ""

// routes registers every page. A = /app/{app_id}, E = A/endpoint/{endpoint_id}.
// page routes need a signed-in admin, or a portal session whose token
// allows the route's capability; action routes (POST) also need the CSRF
// token. Under /portal the same routes serve the portal (portalRoute).
func (h *handler) routes() {
	const (
		app = "/app/{app_id}"
		ep  = app + "/endpoint/{endpoint_id}"
		msg = app + "/msg/{msg_id}"
	)
	const (
		view    = webhook.CapViewBase
		manage  = webhook.CapManageEndpoint
		rotate  = webhook.CapManageEndpointSecret
		attempt = webhook.CapCreateAttempts
	)
	static, _ := fs.Sub(staticFiles, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	h.handle("GET /signin", h.signInPage)
	h.handle("POST /signin", h.signIn)
	h.action("POST /signout", adminOnly, h.signOut)

	h.page("GET /{$}", adminOnly, h.appsPage)
	h.action("POST /app", adminOnly, h.createApp)
	h.page("GET "+app, view, h.appPage)
	h.page("GET "+app+"/endpoint/new", manage, h.newEndpointPage)
	h.action("POST "+app+"/endpoint", manage, h.createEndpoint)
	h.page("GET "+ep, view, h.endpointPage) // ?reveal=secret: ViewEndpointSecret
	h.action("POST "+ep+"/event-types", manage, h.saveEventTypes)
	h.action("POST "+ep+"/secret/rotate", rotate, h.rotateSecret)
	h.action("POST "+ep+"/headers", manage, h.saveHeader)
	h.action("POST "+ep+"/headers/delete", manage, h.deleteHeader)
	h.action("POST "+ep+"/disable", manage, h.disableEndpoint)
	h.action("POST "+ep+"/enable", manage, h.enableEndpoint)
	h.page("GET "+ep+"/recover", attempt, h.recoverPage)
	h.action("POST "+ep+"/recover", attempt, h.recoverEndpoint)
	h.page("GET "+ep+"/delete", manage, h.deleteEndpointPage)
	h.action("POST "+ep+"/delete", manage, h.deleteEndpoint)
	h.action("POST "+ep+"/send-example", attempt, h.sendExample)
	h.page("GET "+app+"/msg", view, h.messagesPage)
	h.page("GET "+msg, view, h.messagePage)
	h.action("POST "+msg+"/resend", attempt, h.resend)
	h.page("GET /event-types", view, h.eventTypesPage)
	h.action("POST /event-types/send-example", attempt, h.sendExample)

	h.handle("POST /play/{token}", h.playReceive)
	h.page("GET /play/{token}", view, h.playPage)
	h.page("GET /play/{token}/requests", view, h.playRequests)

	h.mux.Handle("/", h.serve(func(w http.ResponseWriter, r *http.Request) error {
		return notFound()
	}))
}

// ServeHTTP serves the dashboard with the headers every response gets.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("panic serving dashboard", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
			http.Error(w, "Internal server error", http.StatusInternalServerError)
		}
	}()
	if h.basePathOf != nil {
		r = r.WithContext(WithBasePath(r.Context(), h.basePathOf(r)))
	}
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	if h.portal != nil && isPortalPath(r.URL.Path) {
		h.servePortal(w, r)
		return
	}
	hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// handlerFunc serves a route and returns any error for fail.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// serve adapts f, sending its error to fail.
func (h *handler) serve(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.fail(w, r, err)
		}
	}
}

// handle registers a route of the admin dashboard that needs no sign-in;
// the portal does not have it.
func (h *handler) handle(pattern string, f handlerFunc) {
	h.mux.Handle(pattern, h.serve(func(w http.ResponseWriter, r *http.Request) error {
		if portalOf(r.Context()) != nil {
			return notFound()
		}
		return f(w, r)
	}))
}

// page registers a page for signed-in admins, and for portal sessions
// allowed cap; signed-out admins are sent to sign in.
func (h *handler) page(pattern string, cap webhook.Capability, f handlerFunc) {
	h.route(pattern, cap, false, f)
}

// action registers a form POST, for the same users as page, with a valid
// CSRF token, and a body of at most maxFormBytes.
func (h *handler) action(pattern string, cap webhook.Capability, f handlerFunc) {
	h.route(pattern, cap, true, f)
}

func (h *handler) route(pattern string, cap webhook.Capability, form bool, f handlerFunc) {
	h.mux.Handle(pattern, h.serve(func(w http.ResponseWriter, r *http.Request) error {
		if portalOf(r.Context()) != nil {
			return h.portalRoute(w, r, cap, form, f)
		}
		if !h.signedIn(r) {
			h.toSignIn(w, r)
			return nil
		}
		if form {
			if err := h.checkForm(w, r); err != nil {
				return err
			}
		} else {
			w.Header().Set("Cache-Control", "no-store")
		}
		return f(w, r)
	}))
}

// redirect answers a form POST with 303 See Other to a dashboard path.
func redirect(w http.ResponseWriter, r *http.Request, path string) error {
	http.Redirect(w, r, linkBase(r.Context())+path, http.StatusSeeOther)
	return nil
}

// userError is an error whose text is written for the person using the
// dashboard. Errors of the domain are shown by kind only (fail).
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

func notFound() error {
	return &userError{status: http.StatusNotFound, msg: "There is nothing here. It may have been deleted, or the link is wrong."}
}

func badRequest(msg string) error { return &userError{status: http.StatusBadRequest, msg: msg} }

// fail is the one place where an error becomes a response: an error page
// with a status from the error's kind. Internal errors are logged and
// shown as a generic message.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong on our side. Try again; if it keeps happening, check the server log."
	title := ""
	var ue *userError
	switch {
	case errors.Is(err, errNoSession):
		// The portal without a live link: the one thing to do is to
		// come from the platform's dashboard again.
		status = http.StatusUnauthorized
		title = "This link has expired"
		msg = "This link has expired — open " + h.portalName + " again from your dashboard."
	case errors.As(err, &ue):
		status, msg = ue.status, ue.msg
	case webhook.IsNotFound(err):
		status, msg = http.StatusNotFound, "There is nothing here. It may have been deleted, or the link is wrong."
	case webhook.IsConflict(err):
		status, msg = http.StatusConflict, "It was changed by someone else meanwhile. Go back, reload and try again."
	case webhook.ErrorKind(err) == webhook.KindBadRequest || webhook.ErrorKind(err) == webhook.KindInvalid:
		status, msg = http.StatusBadRequest, "That request cannot be done. Go back, reload and try again."
	default:
		h.log.ErrorContext(r.Context(), "dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if title == "" {
		title = http.StatusText(status)
	}
	data := struct {
		layout
		Status  int
		Message string
	}{h.newPage(w, r, title, ""), status, msg}
	if portalOf(r.Context()) == nil {
		data.SignedIn = h.signedIn(r)
	}
	if rerr := h.render(w, r, status, "error.html", &data); rerr != nil {
		h.log.ErrorContext(r.Context(), "render error page", "err", rerr)
		http.Error(w, msg, status)
	}
}

// layout is what the layout template of every page needs.
type layout struct {
	Base     string // prefixed to every link: the base path, and /portal in the portal (linkBase)
	Static   string // prefixed to the stylesheet and the script: the base path, or Base in the portal
	CSRF     string // the form token of this browser's session
	Title    string
	Brand    string // what the dashboard calls itself: "hookstep", or the portal's name
	Nav      string // the active main-menu entry: "apps" or "event-types"
	Tab      string // the active tab of an app: "endpoints" or "messages"
	SignedIn bool   // an admin, or a live portal session
	Notice   string // the result of the last action, after a redirect
	PlayOn   bool
	Perms    perms // the forms to show
	// The portal's: the session's app (its id; "" without a session), and
	// the look the link asked for.
	Portal    bool
	PortalApp string
	ThemeCSS  string // the theme's stylesheet, "" for the default look
	Icon      string
}

// newPage returns the layout data for a page of r, setting the CSRF
// cookie when the browser has none yet.
func (h *handler) newPage(w http.ResponseWriter, r *http.Request, title, nav string) layout {
	ctx := r.Context()
	l := layout{
		Base:     linkBase(ctx),
		Static:   basePath(ctx),
		CSRF:     h.csrfToken(w, r),
		Title:    title,
		Brand:    "hookstep",
		Nav:      nav,
		SignedIn: true,
		Notice:   notices[r.URL.Query().Get("done")],
		PlayOn:   h.play != nil,
		Perms:    permsOf(ctx),
	}
	if p := portalOf(ctx); p != nil {
		l.Portal = true
		l.Static = l.Base // a portal page names nothing outside /portal
		l.Brand = h.portalName
		l.SignedIn = p.token != nil
		if p.app != nil {
			l.PortalApp = p.app.ID
		}
		if q := p.theme.stylesheet(); q != "" {
			l.ThemeCSS = l.Base + "/theme.css?" + q
		}
		l.Icon = p.theme.Icon
	}
	return l
}

// notices are the messages shown after an action redirects back with
// ?done=<key>. A fixed set, so a link cannot make the page say anything.
var notices = map[string]string{
	"created":   "Endpoint created.",
	"saved":     "Saved.",
	"rotated":   "Secret rotated. The previous secret keeps signing for 24 hours, so receivers can switch over.",
	"disabled":  "Endpoint disabled. Nothing is sent to it until you enable it.",
	"enabled":   "Endpoint enabled.",
	"recover":   "Recovery started: failed messages of the window are being re-sent to this endpoint.",
	"resent":    "Message resent. Its new attempt appears below in a moment.",
	"example":   "Example sent. Its attempt appears in the log in a moment.",
	"deleted":   "Endpoint deleted.",
	"app":       "App created.",
	"header":    "Header saved.",
	"unheader":  "Header removed.",
	"signedout": "Signed out.",
}

// render executes a page template into a buffer, then writes it with
// status, so a template error never leaves half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) error {
	t, ok := h.pages[name]
	if !ok {
		return errors.New("dashboard: no template " + name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// renderFragment executes one named template of a page alone (what the
// Play page polls).
func (h *handler) renderFragment(w http.ResponseWriter, page, name string, data any) error {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := w.Write(buf.Bytes())
	return err
}

// parsePages parses each page template together with the layout and the
// shared partials.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "templates/")
		if base == "layout.html" || base == "partials.html" {
			continue
		}
		pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFiles,
			"templates/layout.html", "templates/partials.html", name))
	}
	return pages
}

// staticHandler serves the stylesheet and the script. They change only
// with a new build, so browsers may keep them for an hour.
func staticHandler(files fs.FS) http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}
