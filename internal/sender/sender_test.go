package sender

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/hookstep/hookstep/internal/signing"
)

// Live tests talk only to servers on this machine's loopback interface
// (the "canaries"), and resolve names only through offlineResolver, so
// that a broken guard cannot send a packet anywhere else.

// offlineResolver resolves from /etc/hosts only ("localhost"); it refuses
// to reach a DNS server, so names such as "*.invalid" fail without a query
// leaving the machine.
func offlineResolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("DNS is disabled in tests")
		},
	}
}

// newTestSender is New for tests: offline DNS, and a short budget unless
// cfg sets one.
func newTestSender(t *testing.T, cfg Config) *Sender {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hookstep/test"
	}
	s := newSender(cfg, offlineResolver())
	t.Cleanup(s.CloseIdleConnections)
	return s
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// canary is a loopback HTTP server that counts accepted connections.
type canary struct {
	*httptest.Server
	ln *countingListener
}

// Conns returns how many connections the canary accepted.
func (c *canary) Conns() int64 { return c.ln.accepted.Load() }

// startCanary starts h on addr ("127.0.0.1:0" or "[::1]:0"); it returns nil
// when the address family is unavailable on this machine.
func startCanary(t *testing.T, addr string, h http.Handler) *canary {
	t.Helper()
	inner, err := net.Listen("tcp", addr)
	if err != nil {
		t.Logf("no listener on %s: %v", addr, err)
		return nil
	}
	ln := &countingListener{Listener: inner}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return &canary{Server: srv, ln: ln}
}

func mustStartCanary(t *testing.T, h http.Handler) *canary {
	t.Helper()
	c := startCanary(t, "127.0.0.1:0", h)
	if c == nil {
		t.Fatal("cannot listen on 127.0.0.1")
	}
	return c
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
}

func port(t *testing.T, c *canary) string {
	t.Helper()
	_, p, err := net.SplitHostPort(c.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var testKey = []byte("0123456789abcdef01234567")

func request(url string) Request {
	return Request{
		URL:       url,
		MsgID:     "msg_2a8SNrh3ZmSp1LbMFLm4ANgs2Ej",
		Timestamp: time.Now(),
		Keys:      [][]byte{testKey},
		Body:      []byte(`{"type":"invoice.paid"}`),
	}
}

// checkFailed asserts that res is a failure without a response, of kind want.
func checkFailed(t *testing.T, res Result, want error) {
	t.Helper()
	if res.OK() || !errors.Is(res.Err, want) || res.StatusCode != 0 {
		t.Errorf("Send = {status %d, err %v}, want status 0 and error %v", res.StatusCode, res.Err, want)
	}
}

// TestSendBlocksLoopback aims the guarded Sender at loopback canaries
// through every way of writing them: none may see a connection.
func TestSendBlocksLoopback(t *testing.T) {
	v4 := mustStartCanary(t, okHandler())
	v6 := startCanary(t, "[::1]:0", okHandler())
	p4 := port(t, v4)
	p6 := p4 // the IPv6 URL is still refused when ::1 has no canary
	if v6 != nil {
		p6 = port(t, v6)
	}
	s := newTestSender(t, Config{})

	tests := []struct {
		name string
		url  string
		want error
	}{
		{"IPv4 literal", "http://127.0.0.1:" + p4 + "/", ErrBlocked},
		{"elsewhere in 127/8", "http://127.0.0.2:" + p4 + "/", ErrBlocked},
		{"IPv6 literal", "http://[::1]:" + p6 + "/", ErrBlocked},
		{"IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]:" + p4 + "/", ErrBlocked},
		{"IPv4-mapped IPv6, hex", "http://[::ffff:7f00:1]:" + p4 + "/", ErrBlocked},
		{"unspecified", "http://0.0.0.0:" + p4 + "/", ErrBlocked},
		{"localhost, caught at dial", "http://localhost:" + p4 + "/", ErrBlocked},
		{"decimal", "http://2130706433:" + p4 + "/", ErrInvalidURL},
		{"hex", "http://0x7f000001:" + p4 + "/", ErrInvalidURL},
		{"hex dotted", "http://0x7f.1:" + p4 + "/", ErrInvalidURL},
		{"octal", "http://017700000001:" + p4 + "/", ErrInvalidURL},
		{"short", "http://127.1:" + p4 + "/", ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFailed(t, s.Send(t.Context(), request(tt.url)), tt.want)
		})
	}
	if n := v4.Conns(); n != 0 {
		t.Errorf("127.0.0.1 canary accepted %d connections, want 0", n)
	}
	if v6 != nil && v6.Conns() != 0 {
		t.Errorf("::1 canary accepted %d connections, want 0", v6.Conns())
	}
}

// TestDialGuard checks the guard on its own, below URL validation: the
// dialer refuses loopback addresses before connecting.
func TestDialGuard(t *testing.T) {
	v4 := mustStartCanary(t, okHandler())
	addrs := []string{v4.Listener.Addr().String(), "[::ffff:127.0.0.1]:" + port(t, v4)}
	v6 := startCanary(t, "[::1]:0", okHandler())
	if v6 != nil {
		addrs = append(addrs, v6.Listener.Addr().String())
	}
	s := newTestSender(t, Config{})
	for _, addr := range addrs {
		conn, err := s.dialer.DialContext(t.Context(), "tcp", addr)
		if err == nil {
			conn.Close()
		}
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("dial %s: %v, want ErrBlocked", addr, err)
		}
	}
	if n := v4.Conns(); n != 0 {
		t.Errorf("127.0.0.1 canary accepted %d connections, want 0", n)
	}
	if v6 != nil && v6.Conns() != 0 {
		t.Errorf("::1 canary accepted %d connections, want 0", v6.Conns())
	}
}

// TestSendDoesNotFollowRedirects needs a destination the Sender may reach,
// so it turns the guard off; the canary must still see nothing.
func TestSendDoesNotFollowRedirects(t *testing.T) {
	target := mustStartCanary(t, okHandler())
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			redirector := mustStartCanary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/stolen", code)
			}))
			res := newTestSender(t, Config{AllowPrivate: true}).Send(t.Context(), request(redirector.URL))
			if res.OK() || res.StatusCode != code || !errors.Is(res.Err, ErrRedirect) {
				t.Errorf("Send = {status %d, err %v}, want status %d and ErrRedirect", res.StatusCode, res.Err, code)
			}
		})
	}
	if n := target.Conns(); n != 0 {
		t.Errorf("redirect target accepted %d connections, want 0", n)
	}
}

// received is what a test receiver saw of one request.
type received struct {
	method string
	path   string
	header http.Header
	body   []byte
}

func recordingHandler(t *testing.T, got chan<- received, status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		got <- received{method: r.Method, path: r.URL.RequestURI(), header: r.Header.Clone(), body: body}
		w.WriteHeader(status)
		io.WriteString(w, `{"received":true}`)
	})
}

func TestSendDeliversSignedRequest(t *testing.T) {
	got := make(chan received, 1)
	rcv := mustStartCanary(t, recordingHandler(t, got, http.StatusOK))
	oldKey := []byte("abcdefghijklmnopqrstuvwxyz012345")
	req := request(rcv.URL + "/hooks?tenant=7")
	req.Keys = [][]byte{testKey, oldKey}
	req.Timestamp = time.Unix(1_700_000_000, 0)
	req.Body = []byte("{\"amount\": 42,\n \"note\": \"caf\u00e9 \\u0000 \"}  ")
	req.Headers = map[string]string{
		"X-Tenant":      "acme",
		"authorization": "Bearer t0k3n",
		"Webhook-Id":    "msg_forged", // the real signature headers win
		"content-type":  "text/plain",
	}

	res := newTestSender(t, Config{AllowPrivate: true, UserAgent: "hookstep/v1.2.3"}).Send(t.Context(), req)
	if !res.OK() || res.StatusCode != http.StatusOK || res.Err != nil {
		t.Fatalf("Send = {status %d, err %v}, want 200 and no error", res.StatusCode, res.Err)
	}
	if res.Body != `{"received":true}` {
		t.Errorf("Body = %q, want %q", res.Body, `{"received":true}`)
	}
	if res.Duration <= 0 {
		t.Errorf("Duration = %v, want > 0", res.Duration)
	}

	r := <-got
	if r.method != http.MethodPost || r.path != "/hooks?tenant=7" {
		t.Errorf("request = %s %s, want POST /hooks?tenant=7", r.method, r.path)
	}
	if string(r.body) != string(req.Body) {
		t.Errorf("body = %q, want %q byte for byte", r.body, req.Body)
	}
	wantHeaders := map[string]string{
		"Content-Type":      "application/json",
		"User-Agent":        "hookstep/v1.2.3",
		"X-Tenant":          "acme",
		"Authorization":     "Bearer t0k3n",
		"Webhook-Id":        req.MsgID,
		"Svix-Id":           req.MsgID,
		"Webhook-Timestamp": "1700000000",
		"Svix-Timestamp":    "1700000000",
		"Webhook-Signature": signing.Sign(req.Keys, req.MsgID, req.Timestamp, req.Body),
		"Svix-Signature":    signing.Sign(req.Keys, req.MsgID, req.Timestamp, req.Body),
		"Accept-Encoding":   "",
	}
	gotHeaders := map[string]string{}
	for name := range wantHeaders {
		gotHeaders[name] = strings.Join(r.header.Values(name), ", ")
	}
	if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	for _, key := range req.Keys {
		if err := signing.Verify([][]byte{key}, r.header, r.body, req.Timestamp, 0); err != nil {
			t.Errorf("receiver holding one key: Verify: %v", err)
		}
	}
}

func TestSendStatus(t *testing.T) {
	tests := []struct {
		status int
		want   error // nil = success
	}{
		{200, nil},
		{201, nil},
		{202, nil},
		{204, nil},
		{299, nil},
		{304, ErrRedirect},
		{400, ErrStatus},
		{401, ErrStatus},
		{404, ErrStatus},
		{410, ErrStatus},
		{429, ErrStatus},
		{500, ErrStatus},
		{503, ErrStatus},
	}
	s := newTestSender(t, Config{AllowPrivate: true})
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			rcv := mustStartCanary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, "detail")
			}))
			res := s.Send(t.Context(), request(rcv.URL))
			if res.StatusCode != tt.status || !errors.Is(res.Err, tt.want) || (tt.want == nil) != res.OK() {
				t.Errorf("Send = {status %d, ok %t, err %v}, want status %d, error %v", res.StatusCode, res.OK(), res.Err, tt.status, tt.want)
			}
			wantBody := "detail"
			if tt.status == 204 || tt.status == 304 {
				wantBody = "" // no body allowed
			}
			if res.Body != wantBody {
				t.Errorf("Body = %q, want %q", res.Body, wantBody)
			}
		})
	}
}

// TestSendStopsReadingAtCap serves an endless body: Send must keep the
// first MaxResponseBytes and hang up, long before its budget runs out.
func TestSendStopsReadingAtCap(t *testing.T) {
	const limit = 1 << 30 // the handler gives up here if nobody hangs up
	var written atomic.Int64
	done := make(chan error, 1)
	rcv := mustStartCanary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 32<<10))
		for written.Load() < limit {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}))

	const maxBody = 1000
	res := newTestSender(t, Config{AllowPrivate: true, MaxResponseBytes: maxBody, Timeout: 10 * time.Second}).Send(t.Context(), request(rcv.URL))
	if !res.OK() {
		t.Fatalf("Send = {status %d, err %v}, want success", res.StatusCode, res.Err)
	}
	if res.Body != strings.Repeat("x", maxBody) {
		t.Errorf("len(Body) = %d, want %d", len(res.Body), maxBody)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("receiver wrote %d bytes without the sender hanging up", written.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("receiver still writing after 5s (%d bytes): the sender kept reading", written.Load())
	}
}

func TestSendKeepsSmallBody(t *testing.T) {
	body := strings.Repeat("y", DefaultMaxResponseBytes-1)
	rcv := mustStartCanary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, body)
	}))
	res := newTestSender(t, Config{AllowPrivate: true}).Send(t.Context(), request(rcv.URL))
	if res.Body != body {
		t.Errorf("len(Body) = %d, want %d", len(res.Body), len(body))
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"ascii", "hello", 10, "hello"},
		{"whole rune at the cap", "ab\u00e9", 4, "ab\u00e9"},
		{"rune cut by the cap", "abc\xc3", 4, "abc"},
		{"4-byte rune cut", "a\xf0\x9f\x98", 4, "a"},
		{"invalid inside", "a\xffb", 10, "a\uFFFDb"},
		{"replacement grows past the cap", "\xff\xff\xff\xff", 4, "\uFFFD"},
		{"empty", "", 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := text([]byte(tt.in), tt.max)
			if got != tt.want || len(got) > tt.max || !utf8.ValidString(got) {
				t.Errorf("text(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

// startHanging starts a canary whose handler, after reading the request,
// runs respond and then blocks until the client goes away (the server
// notices once the request body is consumed) or the test ends.
func startHanging(t *testing.T, respond func(http.ResponseWriter)) *canary {
	t.Helper()
	release := make(chan struct{})
	c := mustStartCanary(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		respond(w)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	return c
}

func TestSendTimesOutWaitingForHeaders(t *testing.T) {
	rcv := startHanging(t, func(http.ResponseWriter) {})
	const budget = 200 * time.Millisecond
	res := newTestSender(t, Config{AllowPrivate: true, Timeout: budget}).Send(t.Context(), request(rcv.URL))
	checkFailed(t, res, ErrTimeout)
	if res.Duration < budget || res.Duration > 10*budget {
		t.Errorf("Duration = %v, want about %v", res.Duration, budget)
	}
}

func TestSendSlowBodyAfter2xxIsSuccess(t *testing.T) {
	rcv := startHanging(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
	})
	const budget = 200 * time.Millisecond
	res := newTestSender(t, Config{AllowPrivate: true, Timeout: budget}).Send(t.Context(), request(rcv.URL))
	if !res.OK() || res.Body != "partial" {
		t.Errorf("Send = {status %d, body %q, err %v}, want success with body %q", res.StatusCode, res.Body, res.Err, "partial")
	}
	if res.Duration > 10*budget {
		t.Errorf("Duration = %v, want at most about %v", res.Duration, budget)
	}
}

func TestSendCanceledByCaller(t *testing.T) {
	rcv := startHanging(t, func(http.ResponseWriter) {})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	res := newTestSender(t, Config{AllowPrivate: true}).Send(ctx, request(rcv.URL))
	checkFailed(t, res, ErrCanceled)
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Err = %v, want it to wrap context.Canceled", res.Err)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := newTestSender(t, Config{AllowPrivate: true}).Send(t.Context(), request("http://"+addr+"/"))
	checkFailed(t, res, ErrConnRefused)
}

func TestSendNameNotResolved(t *testing.T) {
	for _, allowPrivate := range []bool{false, true} {
		res := newTestSender(t, Config{AllowPrivate: allowPrivate}).Send(t.Context(), request("https://receiver.hookstep-test.invalid/"))
		checkFailed(t, res, ErrDNS)
		// The attempt log shows this text: it must not name the resolver.
		if want := "host name not resolved: receiver.hookstep-test.invalid"; res.Err.Error() != want {
			t.Errorf("error text: got %q, want %q", res.Err.Error(), want)
		}
	}
}

func TestSendTLSFailure(t *testing.T) {
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(okHandler())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the expected handshake failure
	srv.StartTLS()                                   // on 127.0.0.1, with a certificate nobody trusts
	t.Cleanup(srv.Close)
	res := newTestSender(t, Config{AllowPrivate: true}).Send(t.Context(), request(srv.URL))
	checkFailed(t, res, ErrTLS)
	if accepted.Load() == 0 {
		t.Error("the TLS server saw no connection; the failure is not a TLS one")
	}
}

func TestSendRejectsBadRequest(t *testing.T) {
	rcv := mustStartCanary(t, okHandler())
	tests := []struct {
		name   string
		cfg    Config
		modify func(*Request)
		want   error
	}{
		{"no message id", Config{AllowPrivate: true}, func(r *Request) { r.MsgID = "" }, ErrInvalidRequest},
		{"no timestamp", Config{AllowPrivate: true}, func(r *Request) { r.Timestamp = time.Time{} }, ErrInvalidRequest},
		{"no keys", Config{AllowPrivate: true}, func(r *Request) { r.Keys = nil }, ErrInvalidRequest},
		{"header injection", Config{AllowPrivate: true}, func(r *Request) { r.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }, ErrInvalidRequest},
		{"bad header name", Config{AllowPrivate: true}, func(r *Request) { r.Headers = map[string]string{"X A": "a"} }, ErrInvalidRequest},
		{"http with RequireHTTPS", Config{AllowPrivate: true, RequireHTTPS: true}, func(*Request) {}, ErrInvalidURL},
		{"userinfo", Config{AllowPrivate: true}, func(r *Request) { r.URL = strings.Replace(r.URL, "//", "//u:p@", 1) }, ErrInvalidURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(rcv.URL)
			tt.modify(&req)
			checkFailed(t, newTestSender(t, tt.cfg).Send(t.Context(), req), tt.want)
		})
	}
	if n := rcv.Conns(); n != 0 {
		t.Errorf("receiver accepted %d connections, want 0", n)
	}
}

// TestSendReusesConnections sends many attempts in parallel to one
// receiver, the hot path: connections are kept alive and reused. A new
// connection is dialled only when no idle one is free, and net/http may
// finish such a dial after an idle connection served the request, so the
// bound is two per concurrent sender rather than one; without reuse it
// would be one per send, and with net/http's default of 2 idle connections
// per host it is usually well above the bound.
func TestSendReusesConnections(t *testing.T) {
	rcv := mustStartCanary(t, okHandler())
	s := newTestSender(t, Config{AllowPrivate: true})
	const workers, perWorker = 16, 25
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range workers {
		wg.Go(func() {
			for range perWorker {
				if res := s.Send(t.Context(), request(rcv.URL)); !res.OK() {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d sends failed", n, workers*perWorker)
	}
	if n := rcv.Conns(); n > 2*workers {
		t.Errorf("receiver accepted %d connections for %d concurrent senders, want at most %d", n, workers, 2*workers)
	}
}

func TestNewDefaults(t *testing.T) {
	s := New(Config{})
	defer s.CloseIdleConnections()
	if s.timeout != DefaultTimeout || s.maxBody != DefaultMaxResponseBytes || s.userAgent != DefaultUserAgent {
		t.Errorf("defaults = {%v, %d, %q}, want {%v, %d, %q}", s.timeout, s.maxBody, s.userAgent, DefaultTimeout, DefaultMaxResponseBytes, DefaultUserAgent)
	}
	if s.transport.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost || !s.transport.DisableCompression || s.transport.Proxy != nil {
		t.Errorf("transport = {MaxIdleConnsPerHost %d, DisableCompression %t, Proxy set %t}, want {%d, true, false}",
			s.transport.MaxIdleConnsPerHost, s.transport.DisableCompression, s.transport.Proxy != nil, DefaultMaxIdleConnsPerHost)
	}
	if s.dialer.ControlContext == nil {
		t.Error("the default Sender has no dial guard")
	}
	if !strings.HasPrefix(DefaultUserAgent, "hookstep/") {
		t.Errorf("DefaultUserAgent = %q, want hookstep/<version>", DefaultUserAgent)
	}
}
