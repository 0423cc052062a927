package api

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Deliveries is what the API needs from the delivery engine
// (internal/delivery implements it).
type Deliveries interface {
	// Publish stores msg (validated, with ID, Timestamp and ExpiresAt set)
	// with one delivery per subscribed endpoint and dispatches them.
	// Conflict if the message's EventID was used recently in its app;
	// NotFound if the app is gone. An endpoint deleted meanwhile is not
	// an error.
	Publish(ctx context.Context, msg *webhook.Message) error
	// PublishKeyed is Publish that claims an idempotency key for msg in
	// the write that stores it (only called when the Store is a
	// webhook.KeyedMessageCreator); *webhook.KeyTakenError if the key is
	// held, and nothing is stored.
	PublishKeyed(ctx context.Context, msg *webhook.Message, claim webhook.KeyClaim) error
	// Resend and Recover start manual runs, as for the dashboard.
	webhook.Resender
	// AppStats stores a running background task (application.stats) and
	// starts it, in the background: per app of appIDs (every app when
	// empty), the deliveries created in [since, until).
	AppStats(ctx context.Context, appIDs []string, since, until time.Time) (webhook.Task, error)
	// AggregateEventTypes stores a running background task
	// (event-type.aggregate) and starts it, in the background: per app,
	// the event types its endpoints subscribe to.
	AggregateEventTypes(ctx context.Context) (webhook.Task, error)
}

// Config is everything the API handler needs.
type Config struct {
	Store      webhook.Store
	Deliveries Deliveries
	Clock      webhook.Clock // nil means webhook.SystemClock
	// TokenHash is the SHA-256 of the admin bearer token.
	TokenHash [32]byte
	Logger    *slog.Logger // nil discards logs
	// AllowPrivateTargets lets endpoints point at loopback and private
	// addresses (local mode only).
	AllowPrivateTargets bool
	// RequireHTTPS rejects endpoint URLs that are not https.
	RequireHTTPS bool
	// Version is hookstep's version, sent in the Server header.
	Version string
	// Fallback serves every path outside /api/ (the dashboard), so one
	// handler serves both in local mode and behind API Gateway. Nil
	// answers those paths 404.
	Fallback http.Handler
	// Retention is how long a message's payload and attempts are kept
	// when the message names no payloadRetentionPeriod (or Hours): 1 to
	// 90 days; zero means 90 days, Svix's default.
	Retention time.Duration
	// AppTokens keeps the webhooks portal's app tokens. Nil means Store,
	// which implements it (internal/sqlite, internal/dynamo); if it does
	// not, app tokens are refused (401) and the access routes answer 500.
	AppTokens webhook.AppTokenStore
	// BasePath returns the path prefix under which clients reach the
	// server (lambdafn.RequestStagePath behind API Gateway's execute-api
	// URL); nil means "". It builds the portal URLs of the access routes.
	BasePath func(*http.Request) string
	// PublicURL, when set, is the portal's public base (scheme, host and
	// path prefix, e.g. "https://hooks.example.com"), used instead of the
	// request's scheme, host and BasePath: set it when a proxy rewrites
	// the Host header.
	PublicURL string
	// Operational sends the operational webhooks of endpoint changes;
	// nil sends none.
	Operational *operational.Emitter
}

// Server is the management API: an http.Handler for /api/v1/...
type Server struct {
	store        webhook.Store
	deliveries   Deliveries
	clock        webhook.Clock
	tokenHash    [32]byte
	log          *slog.Logger
	urlPolicy    webhook.URLPolicy
	serverHeader string
	fallback     http.Handler
	mux          *http.ServeMux
	pageBytes    int // list response budget; 0 means maxPageBytes (tests set less)
	retention    time.Duration
	appTokens    webhook.AppTokenStore
	basePath     func(*http.Request) string
	publicURL    string
	ops          *operational.Emitter
	// access is every route's access, by ServeMux pattern (see handle).
	access map[string]access
}

// New returns the API handler for cfg.
func New(cfg Config) *Server {
	s := &Server{
		store:        cfg.Store,
		deliveries:   cfg.Deliveries,
		clock:        cfg.Clock,
		tokenHash:    cfg.TokenHash,
		log:          cfg.Logger,
		urlPolicy:    webhook.URLPolicy{AllowPrivate: cfg.AllowPrivateTargets, RequireHTTPS: cfg.RequireHTTPS},
		serverHeader: "hookstep",
		fallback:     cfg.Fallback,
		mux:          http.NewServeMux(),
		retention:    webhook.DefaultRetention(cfg.Retention),
		appTokens:    cfg.AppTokens,
		basePath:     cfg.BasePath,
		publicURL:    strings.TrimSuffix(cfg.PublicURL, "/"),
		access:       map[string]access{},
		ops:          cfg.Operational,
	}
	if s.appTokens == nil {
		s.appTokens, _ = cfg.Store.(webhook.AppTokenStore)
	}
	if s.clock == nil {
		s.clock = webhook.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Version != "" {
		s.serverHeader += "/" + cfg.Version
	}
	s.routes()
	return s
}

// handlerFunc is an API handler: it writes a success response itself and
// returns any error for writeError to turn into the error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers an API handler for a ServeMux pattern, callable with
// access a (checked by authorize before the handler runs).
func (s *Server) handle(pattern string, a access, h handlerFunc) {
	s.access[pattern] = a
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		err := s.authorize(r, a)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// routes registers every API route. A = /api/v1/app/{app_id} and E =
// A/endpoint/{endpoint_id}, as in API.md.
func (s *Server) routes() {
	const (
		app = "/api/v1/app/{app_id}"
		ep  = app + "/endpoint/{endpoint_id}"
		msg = app + "/msg/{msg_id}"
		et  = "/api/v1/event-type/{event_type_name}"
	)
	s.mux.HandleFunc("GET /api/v1/health", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})

	// The second argument is who may call the route besides the admin
	// token: the capability an app token needs, or adminOnly (doc.go
	// has the matrix).
	s.handle("GET /api/v1/app", adminOnly, s.listApps)
	s.handle("POST /api/v1/app", adminOnly, s.createApp)
	s.handle("GET "+app, viewBase, s.getApp)
	s.handle("PUT "+app, adminOnly, s.putApp)
	s.handle("PATCH "+app, adminOnly, s.patchApp)
	s.handle("DELETE "+app, adminOnly, s.deleteApp)

	s.handle("GET /api/v1/event-type", viewBase, s.listEventTypes)
	s.handle("POST /api/v1/event-type", adminOnly, s.createEventType)
	s.handle("GET "+et, viewBase, s.getEventType)
	s.handle("PUT "+et, adminOnly, s.putEventType)
	s.handle("PATCH "+et, adminOnly, s.patchEventType)
	s.handle("DELETE "+et, adminOnly, s.deleteEventType)

	s.handle("GET "+app+"/endpoint", viewBase, s.listEndpoints)
	s.handle("POST "+app+"/endpoint", manageEndpoint, s.createEndpoint)
	s.handle("GET "+ep, viewBase, s.getEndpoint)
	s.handle("PUT "+ep, manageEndpoint, s.putEndpoint)
	s.handle("PATCH "+ep, manageEndpoint, s.patchEndpoint)
	s.handle("DELETE "+ep, manageEndpoint, s.deleteEndpoint)
	s.handle("GET "+ep+"/secret", viewSecret, s.getEndpointSecret)
	s.handle("POST "+ep+"/secret/rotate", manageSecret, s.rotateEndpointSecret)
	s.handle("GET "+ep+"/headers", viewBase, s.getEndpointHeaders)
	s.handle("PUT "+ep+"/headers", manageEndpoint, s.putEndpointHeaders)
	s.handle("PATCH "+ep+"/headers", manageEndpoint, s.patchEndpointHeaders)
	s.handle("GET "+ep+"/stats", viewBase, s.endpointStats)
	s.handle("POST "+ep+"/recover", createAttempts, s.recoverEndpoint)
	s.handle("GET "+ep+"/msg", viewBase, s.listEndpointMessages)

	s.handle("GET "+app+"/msg", viewBase, s.listMessages)
	s.handle(createMessageRoute, adminOnly, s.createMessage)
	s.handle("GET "+msg, viewBase, s.getMessage)
	s.handle("DELETE "+msg+"/content", adminOnly, s.expungeContent)
	s.handle("GET "+msg+"/endpoint", viewBase, s.listMessageEndpoints)
	s.handle("GET "+msg+"/attempt/{attempt_id}", viewBase, s.getAttempt)
	s.handle("DELETE "+msg+"/attempt/{attempt_id}/content", adminOnly, s.expungeAttemptContent)
	s.handle("POST "+msg+"/endpoint/{endpoint_id}/resend", createAttempts, s.resend)
	s.handle("GET "+app+"/attempt/endpoint/{endpoint_id}", viewBase, s.listAttemptsByEndpoint)
	s.handle("GET "+app+"/attempt/msg/{msg_id}", viewBase, s.listAttemptsByMessage)

	s.handle("POST /api/v1/stats/usage/app", adminOnly, s.aggregateAppStats)
	s.handle("PUT /api/v1/stats/usage/event-types", adminOnly, s.aggregateEventTypes)

	s.handle("GET /api/v1/background-task", adminOnly, s.listTasks)
	s.handle("GET /api/v1/background-task/{task_id}", adminOnly, s.getTask)

	const ops = "/api/v1/operational-webhook/endpoint"
	s.handle("GET "+ops, adminOnly, s.opsRoute(s.listEndpoints))
	s.handle("POST "+ops, adminOnly, s.opsRoute(s.createEndpoint))
	s.handle("GET "+ops+"/{endpoint_id}", adminOnly, s.opsRoute(s.getEndpoint))
	s.handle("PUT "+ops+"/{endpoint_id}", adminOnly, s.opsRoute(s.putEndpoint))
	s.handle("DELETE "+ops+"/{endpoint_id}", adminOnly, s.opsRoute(s.deleteEndpoint))
	s.handle("GET "+ops+"/{endpoint_id}/secret", adminOnly, s.opsRoute(s.getEndpointSecret))
	s.handle("POST "+ops+"/{endpoint_id}/secret/rotate", adminOnly, s.opsRoute(s.rotateEndpointSecret))
	s.handle("GET "+ops+"/{endpoint_id}/headers", adminOnly, s.opsRoute(s.getEndpointHeaders))
	s.handle("PUT "+ops+"/{endpoint_id}/headers", adminOnly, s.opsRoute(s.putEndpointHeaders))

	s.handle(portalAccessRoute, adminOnly, s.appPortalAccess)
	s.handle(dashboardAccessRoute, adminOnly, s.dashboardAccess)
	s.handle(logoutRoute, anyToken, s.logout)
	s.handle(expireAllRoute, adminOnly, s.expireAll)
}

// ServeHTTP serves the API. Paths outside /api/ answer 404 for now; the
// dashboard will take them over.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
			s.writeJSON(w, r, http.StatusInternalServerError, errorBody{Code: "server_error", Detail: internalDetail})
		}
	}()
	w.Header().Set("Server", s.serverHeader)

	orig := r
	r, ok := normalize(r)
	if ok && !isAPIPath(r.URL.Path) && s.fallback != nil {
		s.fallback.ServeHTTP(w, orig)
		return
	}
	if !ok || !isAPIPath(r.URL.Path) {
		s.writeError(w, r, errNotFound("Page"))
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodOptions {
		preflight(w, r)
		return
	}
	if !(r.Method == http.MethodGet || r.Method == http.MethodHead) || r.URL.Path != "/api/v1/health" {
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		r = withPrincipal(r, p)
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.unrouted(w, r)
		return
	}
	if r.Method == http.MethodPost && r.Header.Get(idempotencyHeader) != "" && !noIdempotency[pattern] {
		s.idempotent(w, r, pattern, s.mux)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// isAPIPath reports whether the API (rather than the dashboard) owns p.
func isAPIPath(p string) bool {
	return p == "/api" || strings.HasPrefix(p, "/api/")
}

// normalize collapses repeated slashes and strips a trailing slash, since
// SDKs build URLs by concatenating a base URL that may end in "/". It
// reports false for paths with "." or ".." segments, which name nothing.
func normalize(r *http.Request) (*http.Request, bool) {
	p := r.URL.Path
	clean := collapseSlashes(p)
	if len(clean) > 1 {
		clean = strings.TrimSuffix(clean, "/")
	}
	for seg := range strings.SplitSeq(clean, "/") {
		if seg == "." || seg == ".." {
			return r, false
		}
	}
	if clean == p && r.URL.RawPath == "" {
		return r, true
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path = clean
	u.RawPath = ""
	r2.URL = &u
	return r2, true
}

func collapseSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// preflight answers a CORS preflight request.
func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "authorization, content-type, idempotency-key")
	}
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// unrouted answers a request that matched no route: 405 when the path
// exists with other methods, else 404, both in the Svix error format.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := &statusProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		s.writeJSON(w, r, http.StatusMethodNotAllowed, errorBody{Code: "method_not_allowed", Detail: "Method not allowed"})
		return
	}
	s.writeError(w, r, errNotFound("Page"))
}

// statusProbe is a ResponseWriter that keeps only the status and headers.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
