package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/events"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

const testToken = "hsk_dashboard-test-token"

// fakeDeliveries records resends and recovers and dispatches nothing.
type fakeDeliveries struct {
	mu        sync.Mutex
	resent    []string // "msgID endpointID"
	recovered []recoverCall
}

type recoverCall struct {
	endpointID   string
	since, until time.Time
}

func (f *fakeDeliveries) Resend(_ context.Context, msg *webhook.Message, ep *webhook.Endpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resent = append(f.resent, msg.ID+" "+ep.ID)
	return nil
}

func (f *fakeDeliveries) Recover(_ context.Context, ep *webhook.Endpoint, since, until time.Time) (webhook.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recovered = append(f.recovered, recoverCall{ep.ID, since, until})
	return webhook.Task{ID: webhook.NewID(webhook.PrefixTask), Kind: webhook.TaskEndpointRecover, Status: webhook.TaskRunning}, nil
}

// seedCatalog stores the events/ catalog as local mode does on first
// start: each type's example payload in schemas["1"]["examples"][0].
func seedCatalog(t *testing.T, store webhook.Store, now time.Time) {
	t.Helper()
	cat, err := events.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat {
		var schema map[string]json.RawMessage
		if err := json.Unmarshal(e.Schema, &schema); err != nil {
			t.Fatal(err)
		}
		schema["examples"] = json.RawMessage("[" + string(e.Example) + "]")
		schemas, err := json.Marshal(map[string]any{"1": schema})
		if err != nil {
			t.Fatal(err)
		}
		et := &webhook.EventType{Name: e.Name, Description: e.Description, GroupName: e.GroupName,
			Schemas: schemas, CreatedAt: now, UpdatedAt: now}
		if err := store.CreateEventType(context.Background(), et); err != nil {
			t.Fatal(err)
		}
	}
}

func openStore(t *testing.T, clock webhook.Clock) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hookstep.db"), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// harness is the dashboard over a SQLite store with fake deliveries, on a
// test server, with a browser-like client (cookies, no redirects).
type harness struct {
	t          *testing.T
	store      *sqlite.Store
	clock      *storetest.Clock
	deliveries *fakeDeliveries
	play       *play.Memory
	srv        *httptest.Server
	client     *http.Client
	prefix     string // the stage the client sees, e.g. "/prod"
	csrf       string
}

type harnessOption func(*Config)

func withPrivateTargets(allow bool) harnessOption {
	return func(c *Config) { c.AllowPrivateTargets = allow }
}

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	return newHarnessAt(t, "", opts...)
}

// newHarnessAt serves the dashboard under a stage, as API Gateway does:
// the client uses paths with the stage, the handler sees them without it
// and gets the stage as its base path.
func newHarnessAt(t *testing.T, stage string, opts ...harnessOption) *harness {
	t.Helper()
	clock := storetest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	h := &harness{t: t, clock: clock, deliveries: &fakeDeliveries{}, prefix: stage}
	h.store = openStore(t, clock)
	h.play = play.NewMemory(clock)
	seedCatalog(t, h.store, clock.Now())
	cfg := Config{
		Store: h.store, Deliveries: h.deliveries, Clock: clock, TokenHash: authtoken.Hash(testToken),
		AllowPrivateTargets: true, Play: h.play,
	}
	if stage != "" {
		// As behind API Gateway: the handler sees paths without the
		// stage and learns the public prefix per request.
		cfg.BasePath = func(*http.Request) string { return stage }
	}
	for _, o := range opts {
		o(&cfg)
	}
	dash := New(cfg)
	var handler http.Handler = dash
	if stage != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := strings.CutPrefix(r.URL.Path, stage)
			if !ok {
				http.NotFound(w, r)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = p
			dash.ServeHTTP(w, r2)
		})
	}
	h.srv = httptest.NewServer(handler)
	t.Cleanup(h.srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.client = &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return h
}

// get fetches a path (without the stage) and returns the response and
// its body.
func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.client.Get(h.srv.URL + h.prefix + path)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

// post submits a form with the session's CSRF token (unless the form has
// one already, even empty).
func (h *harness) post(path string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form[csrfField]; !ok {
		form.Set(csrfField, h.csrf)
	}
	resp, err := h.client.PostForm(h.srv.URL+h.prefix+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readBody(h.t, resp)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs the client in and keeps the session's CSRF token.
func (h *harness) signIn() {
	h.t.Helper()
	_, body := h.get("/signin")
	h.csrf = csrfToken(h.t, body)
	resp, _ := h.post("/signin", url.Values{"token": {testToken}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("sign in: status %d, want 303", resp.StatusCode)
	}
	_, body = h.get("/")
	h.csrf = csrfToken(h.t, body)
}

func csrfToken(t *testing.T, body string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", body)
	}
	return m[1]
}

// createApp stores an app.
func (h *harness) createApp(name string) *webhook.App {
	h.t.Helper()
	now := h.clock.Now()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: name, Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateApp(context.Background(), app); err != nil {
		h.t.Fatal(err)
	}
	return app
}

// createEndpoint stores an endpoint of app with a generated secret.
func (h *harness) createEndpoint(app *webhook.App, rawURL string) *webhook.Endpoint {
	h.t.Helper()
	now := h.clock.Now()
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: app.ID, URL: rawURL,
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdef01234567")}}, Metadata: map[string]string{},
		Version: 1, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateEndpoint(context.Background(), ep); err != nil {
		h.t.Fatal(err)
	}
	return ep
}

// createMessage stores a message of app with no deliveries.
func (h *harness) createMessage(app *webhook.App, eventType string) *webhook.Message {
	h.t.Helper()
	now := h.clock.Now()
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: app.ID, EventType: eventType,
		Payload: json.RawMessage(`{"hello":"world"}`), Timestamp: now, ExpiresAt: now.Add(24 * time.Hour)}
	if err := h.store.CreateMessage(context.Background(), msg, nil); err != nil {
		h.t.Fatal(err)
	}
	return msg
}

// deliver stores a message of app delivered to ep with one attempt that
// ended in status (a 200 or a 500).
func (h *harness) deliver(app *webhook.App, ep *webhook.Endpoint, eventType string, status webhook.Status) *webhook.Message {
	h.t.Helper()
	ctx := context.Background()
	now := h.clock.Now()
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: app.ID, EventType: eventType,
		Payload: json.RawMessage(`{"n":1}`), Timestamp: now, ExpiresAt: now.Add(time.Hour)}
	d := webhook.Delivery{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID, EventType: eventType,
		Status: webhook.StatusPending, CreatedAt: now, UpdatedAt: now, NextAttemptAt: now}
	if err := h.store.CreateMessage(ctx, msg, []webhook.Delivery{d}); err != nil {
		h.t.Fatal(err)
	}
	code := 200
	if status != webhook.StatusSuccess {
		code = 500
	}
	res := webhook.AttemptResult{Attempt: webhook.Attempt{ID: webhook.NewID(webhook.PrefixAttempt), AppID: app.ID,
		MsgID: msg.ID, EndpointID: ep.ID, EventType: eventType, URL: ep.URL, ResponseStatusCode: code,
		Status: status, Timestamp: now, ExpiresAt: msg.ExpiresAt}, Attempts: 1, Status: status}
	if _, err := h.store.RecordAttempt(ctx, res); err != nil {
		h.t.Fatal(err)
	}
	return msg
}

func (h *harness) endpoint(app *webhook.App, id string) *webhook.Endpoint {
	h.t.Helper()
	ep, err := h.store.GetEndpoint(context.Background(), app.ID, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return ep
}

// wantStatus fails the test unless resp has the status.
func wantStatus(t *testing.T, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body:\n%s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

// wantRedirect fails the test unless resp is a 303 to a location starting
// with prefix, and returns the location.
func wantRedirect(t *testing.T, resp *http.Response, body, prefix string) string {
	t.Helper()
	wantStatus(t, resp, body, http.StatusSeeOther)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, prefix) {
		t.Fatalf("Location = %q, want prefix %q", loc, prefix)
	}
	return loc
}
