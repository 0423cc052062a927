package api

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

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
	// Resend starts a new manual run of msg to ep, skipping the endpoint's
	// filters, and dispatches it. BadRequest if ep is disabled.
	Resend(ctx context.Context, msg *webhook.Message, ep *webhook.Endpoint) error
	// Recover stores a running background task (endpoint.recover) and
	// starts it, in the background: a manual run for every message whose
	// attempts to ep failed in [since, until) and whose delivery there
	// ended without success. BadRequest if ep is disabled.
	Recover(ctx context.Context, ep *webhook.Endpoint, since, until time.Time) (webhook.Task, error)
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
}

// Server is the management API: an http.Handler for /api/v1/...
type Server struct {
	store        webhook.Store
	deliveries   Deliveries
	clock        webhook.Clock
	tokenHash    [32]byte
	log          *slog.Logger
	allowPrivate bool
	requireHTTPS bool
	serverHeader string
	fallback     http.Handler
	mux          *http.ServeMux
	pageBytes    int // list response budget; 0 means maxPageBytes (tests set less)
	retention    time.Duration
}

// New returns the API handler for cfg.
func New(cfg Config) *Server {
	s := &Server{
		store:        cfg.Store,
		deliveries:   cfg.Deliveries,
		clock:        cfg.Clock,
		tokenHash:    cfg.TokenHash,
		log:          cfg.Logger,
		allowPrivate: cfg.AllowPrivateTargets,
		requireHTTPS: cfg.RequireHTTPS,
		serverHeader: "hookstep",
		fallback:     cfg.Fallback,
		mux:          http.NewServeMux(),
		retention:    webhook.DefaultRetention(cfg.Retention),
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

// handle registers an API handler for a ServeMux pattern.
func (s *Server) handle(pattern string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
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

	s.handle("GET /api/v1/app", s.listApps)
	s.handle("POST /api/v1/app", s.createApp)
	s.handle("GET "+app, s.getApp)
	s.handle("PUT "+app, s.putApp)
	s.handle("PATCH "+app, s.patchApp)
	s.handle("DELETE "+app, s.deleteApp)

	s.handle("GET /api/v1/event-type", s.listEventTypes)
	s.handle("POST /api/v1/event-type", s.createEventType)
	s.handle("GET "+et, s.getEventType)
	s.handle("PUT "+et, s.putEventType)
	s.handle("PATCH "+et, s.patchEventType)
	s.handle("DELETE "+et, s.deleteEventType)

	s.handle("GET "+app+"/endpoint", s.listEndpoints)
	s.handle("POST "+app+"/endpoint", s.createEndpoint)
	s.handle("GET "+ep, s.getEndpoint)
	s.handle("PUT "+ep, s.putEndpoint)
	s.handle("PATCH "+ep, s.patchEndpoint)
	s.handle("DELETE "+ep, s.deleteEndpoint)
	s.handle("GET "+ep+"/secret", s.getEndpointSecret)
	s.handle("POST "+ep+"/secret/rotate", s.rotateEndpointSecret)
	s.handle("GET "+ep+"/headers", s.getEndpointHeaders)
	s.handle("PUT "+ep+"/headers", s.putEndpointHeaders)
	s.handle("PATCH "+ep+"/headers", s.patchEndpointHeaders)
	s.handle("GET "+ep+"/stats", s.endpointStats)
	s.handle("POST "+ep+"/recover", s.recoverEndpoint)
	s.handle("GET "+ep+"/msg", s.listEndpointMessages)

	s.handle("GET "+app+"/msg", s.listMessages)
	s.handle(createMessageRoute, s.createMessage)
	s.handle("GET "+msg, s.getMessage)
	s.handle("GET "+msg+"/endpoint", s.listMessageEndpoints)
	s.handle("GET "+msg+"/attempt/{attempt_id}", s.getAttempt)
	s.handle("POST "+msg+"/endpoint/{endpoint_id}/resend", s.resend)
	s.handle("GET "+app+"/attempt/endpoint/{endpoint_id}", s.listAttemptsByEndpoint)
	s.handle("GET "+app+"/attempt/msg/{msg_id}", s.listAttemptsByMessage)

	s.handle("GET /api/v1/background-task", s.listTasks)
	s.handle("GET /api/v1/background-task/{task_id}", s.getTask)
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
		if err := s.authenticate(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		s.unrouted(w, r)
		return
	}
	if r.Method == http.MethodPost && r.Header.Get(idempotencyHeader) != "" {
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
