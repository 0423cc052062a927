package sender

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout             = 15 * time.Second
	DefaultMaxResponseBytes    = 16 << 10
	DefaultMaxIdleConnsPerHost = 64
)

// maxPhase bounds the dial and the TLS handshake separately, inside the
// total budget, so that one slow phase fails fast instead of eating it all.
const maxPhase = 10 * time.Second

// DefaultUserAgent is "hookstep/" followed by the main module's version as
// stamped by the Go toolchain ("dev" when it has none).
var DefaultUserAgent = "hookstep/" + buildVersion()

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Config configures a Sender. The zero value is a production configuration.
type Config struct {
	// Timeout is the whole budget of one attempt: dial, TLS, request,
	// response headers and reading the kept part of the body. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// AllowPrivate turns the destination guard off, admitting loopback,
	// private and other reserved addresses. Only for local development and
	// tests; never in a deployment reachable by untrusted endpoint owners.
	AllowPrivate bool
	// RequireHTTPS refuses http URLs (see webhook.URLPolicy).
	RequireHTTPS bool
	// MaxResponseBytes is how much of a response body is read and kept.
	// Zero means DefaultMaxResponseBytes.
	MaxResponseBytes int
	// MaxIdleConnsPerHost is how many keep-alive connections to one
	// endpoint host are kept for reuse. Many attempts run in parallel
	// against the same receiver, so it is well above net/http's default of
	// 2. Zero means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// UserAgent is sent as user-agent. Empty means DefaultUserAgent.
	UserAgent string
}

// Sender makes delivery attempts. It is safe for concurrent use and should
// be built once per process: it owns a pool of keep-alive connections.
type Sender struct {
	client    *http.Client
	transport *http.Transport
	dialer    *net.Dialer
	policy    webhook.URLPolicy
	timeout   time.Duration
	maxBody   int
	userAgent string
}

// New returns a Sender for cfg, with its own transport.
func New(cfg Config) *Sender {
	return newSender(cfg, nil)
}

// newSender is New with a DNS resolver (nil = the system's), so that tests
// resolve names without sending DNS queries off the machine.
func newSender(cfg Config, resolver *net.Resolver) *Sender {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxIdleConnsPerHost <= 0 {
		cfg.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	phase := min(cfg.Timeout, maxPhase)

	dialer := &net.Dialer{
		Timeout:   phase,
		KeepAlive: 30 * time.Second,
		Resolver:  resolver,
	}
	if !cfg.AllowPrivate {
		dialer.ControlContext = guardDial
	}
	transport := &http.Transport{
		// No proxy, whatever the environment says: the guard must see the
		// endpoint's own address, and a proxy would be an open relay.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    phase,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		// No Accept-Encoding is sent, so MaxResponseBytes counts the bytes
		// the endpoint really sent and a compression bomb cannot inflate.
		DisableCompression:  true,
		MaxIdleConns:        16 * cfg.MaxIdleConnsPerHost,
		MaxIdleConnsPerHost: cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Sender{
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		transport: transport,
		dialer:    dialer,
		policy:    webhook.URLPolicy{AllowPrivate: cfg.AllowPrivate, RequireHTTPS: cfg.RequireHTTPS},
		timeout:   cfg.Timeout,
		maxBody:   cfg.MaxResponseBytes,
		userAgent: cfg.UserAgent,
	}
}

// CloseIdleConnections closes the keep-alive connections not in use.
func (s *Sender) CloseIdleConnections() {
	s.transport.CloseIdleConnections()
}

// Request is one delivery attempt. The Sender signs it: the caller passes
// the keys rather than finished signature headers, so that no request can
// leave unsigned or with the two header sets disagreeing, and custom headers
// cannot override the signature.
type Request struct {
	// URL is the endpoint's URL.
	URL string
	// MsgID is the message id, sent as webhook-id and svix-id; stable
	// across the attempts of a message.
	MsgID string
	// Timestamp is the attempt's time, signed and sent in unix seconds.
	// The caller passes it (rather than the Sender reading a clock) so that
	// it matches the attempt it records.
	Timestamp time.Time
	// Keys are the endpoint's unexpired signing keys, current first; one
	// signature is sent per key.
	Keys [][]byte
	// Body is the payload, sent byte for byte as signed.
	Body []byte
	// Headers are the endpoint's custom headers. content-type, user-agent
	// and the signature headers are set after them and win.
	Headers map[string]string
}

// Result is the outcome of one attempt.
type Result struct {
	// StatusCode is the response status, 0 when no response arrived.
	StatusCode int
	// Body is the start of the response body, at most MaxResponseBytes
	// bytes, with invalid UTF-8 replaced so that it can be stored as text.
	Body string
	// Duration is the time from the start of the request to the end of
	// reading the kept body.
	Duration time.Duration
	// Err is nil exactly when the endpoint answered 2xx; otherwise it wraps
	// one of the kinds declared in this package (ErrTimeout, ErrBlocked,
	// ErrRedirect, ErrStatus, ...).
	Err error
}

// OK reports whether the attempt succeeded: a 2xx response within the
// budget.
func (r Result) OK() bool {
	return r.Err == nil && r.StatusCode >= 200 && r.StatusCode <= 299
}

// Send makes one attempt: a single POST of req.Body to req.URL, signed with
// req.Keys, within the Sender's time budget (and ctx). It never follows a
// redirect and never retries; scheduling retries is the caller's job.
//
// The status decides the outcome: a 2xx whose body then fails to arrive in
// full is still a success, with the part of the body that did arrive, since
// the receiver has accepted the message and a retry would only duplicate it.
func (s *Sender) Send(ctx context.Context, req Request) Result {
	if err := webhook.ValidateURL(req.URL, s.policy); err != nil {
		return Result{Err: err}
	}
	if err := checkRequest(req); err != nil {
		return Result{Err: err}
	}

	attemptCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return Result{Err: fmt.Errorf("%w: %w", ErrInvalidURL, err)}
	}
	for name, value := range req.Headers {
		hreq.Header.Set(name, value)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", s.userAgent)
	signing.SetHeaders(hreq.Header, req.MsgID, req.Timestamp, signing.Sign(req.Keys, req.MsgID, req.Timestamp, req.Body))

	start := time.Now()
	resp, err := s.client.Do(hreq)
	if err != nil {
		// url.Error repeats the whole URL, which may hold a token in its
		// query; the caller knows the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Result{Duration: time.Since(start), Err: classify(ctx, err)}
	}
	defer resp.Body.Close()
	// A read error leaves the part already read: the status has decided.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(s.maxBody)))
	res := Result{
		StatusCode: resp.StatusCode,
		Body:       text(body, s.maxBody),
		Duration:   time.Since(start),
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		res.Err = fmt.Errorf("%w: endpoint answered %s", ErrRedirect, resp.Status)
	default:
		res.Err = fmt.Errorf("%w: endpoint answered %s", ErrStatus, resp.Status)
	}
	return res
}

// checkRequest rejects requests that must not be sent, before any
// connection is made.
func checkRequest(req Request) error {
	switch {
	case req.MsgID == "":
		return fmt.Errorf("%w: no message id", ErrInvalidRequest)
	case req.Timestamp.IsZero():
		return fmt.Errorf("%w: no timestamp", ErrInvalidRequest)
	case len(req.Keys) == 0:
		return fmt.Errorf("%w: no signing key", ErrInvalidRequest)
	}
	for name, value := range req.Headers {
		if !validHeaderName(name) {
			return fmt.Errorf("%w: invalid header name %q", ErrInvalidRequest, name)
		}
		if !validHeaderValue(value) {
			return fmt.Errorf("%w: invalid value for header %q", ErrInvalidRequest, name)
		}
	}
	return nil
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether value holds no control characters other
// than horizontal tab, in particular no CR, LF or NUL.
func validHeaderValue(value string) bool {
	for _, c := range []byte(value) {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// text returns b as valid UTF-8 of at most max bytes: a rune cut by the
// read limit is dropped, and invalid sequences become U+FFFD (which can
// lengthen the text, hence the final trim at a rune boundary).
func text(b []byte, max int) string {
	if len(b) == max {
		for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
			if r := b[len(b)-i]; utf8.RuneStart(r) {
				if !utf8.FullRune(b[len(b)-i:]) {
					b = b[:len(b)-i]
				}
				break
			}
		}
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	for len(s) > max {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
