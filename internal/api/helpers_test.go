package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

const testToken = "hsk_test-token"

// fakeDeliveries is a Deliveries that stores messages with a delivery per
// subscribed endpoint, as the real engine does, and dispatches nothing.
type fakeDeliveries struct {
	store webhook.Store
	clock webhook.Clock

	mu        sync.Mutex
	resent    []string // "msgID endpointID"
	recovered []recoverCall
	// block, when set, is waited on by Publish (to hold a request open).
	block chan struct{}
	// entered receives a value when a blocked Publish starts.
	entered chan struct{}
	// beforeCreate, when set, runs between listing the endpoints and
	// storing the message (to race a delete against a publish).
	beforeCreate func()
}

type recoverCall struct {
	endpointID   string
	since, until time.Time
}

// Publish runs the real engine's fan-out (delivery.Service.Publish) over a
// store that calls beforeCreate just before the message is stored, and
// dispatches nothing.
func (d *fakeDeliveries) Publish(ctx context.Context, msg *webhook.Message) error {
	return d.engine().Publish(ctx, msg)
}

// PublishKeyed is Publish claiming the key with the message.
func (d *fakeDeliveries) PublishKeyed(ctx context.Context, msg *webhook.Message, claim webhook.KeyClaim) error {
	return d.engine().PublishKeyed(ctx, msg, claim)
}

// engine waits for block, when set, and returns the real engine over a
// store that calls beforeCreate.
func (d *fakeDeliveries) engine() *delivery.Service {
	if d.block != nil {
		d.entered <- struct{}{}
		<-d.block
	}
	return &delivery.Service{
		Store:      hookedStore{Store: d.store, beforeCreate: d.beforeCreate},
		Dispatcher: noDispatch{},
		Clock:      d.clock,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// hookedStore runs beforeCreate, when set, before CreateMessage and
// CreateMessageKeyed (the latter only over a store that has it).
type hookedStore struct {
	webhook.Store
	beforeCreate func()
}

func (s hookedStore) CreateMessage(ctx context.Context, msg *webhook.Message, ds []webhook.Delivery) error {
	if s.beforeCreate != nil {
		s.beforeCreate()
	}
	return s.Store.CreateMessage(ctx, msg, ds)
}

func (s hookedStore) CreateMessageKeyed(ctx context.Context, msg *webhook.Message, ds []webhook.Delivery, claim webhook.KeyClaim) error {
	if s.beforeCreate != nil {
		s.beforeCreate()
	}
	return s.Store.(webhook.KeyedMessageCreator).CreateMessageKeyed(ctx, msg, ds, claim)
}

type noDispatch struct{}

func (noDispatch) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	return refs, nil
}

func (d *fakeDeliveries) Resend(ctx context.Context, msg *webhook.Message, ep *webhook.Endpoint) error {
	if _, err := d.store.StartRun(ctx, msg, ep.ID, d.clock.Now()); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.resent = append(d.resent, msg.ID+" "+ep.ID)
	return nil
}

// Recover stores a running recover task, as the real engine does, and
// does no work.
func (d *fakeDeliveries) Recover(ctx context.Context, ep *webhook.Endpoint, since, until time.Time) (webhook.Task, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recovered = append(d.recovered, recoverCall{endpointID: ep.ID, since: since, until: until})
	now := d.clock.Now()
	task := webhook.Task{
		ID: webhook.NewID(webhook.PrefixTask), AppID: ep.AppID, EndpointID: ep.ID,
		Kind: webhook.TaskEndpointRecover, Status: webhook.TaskRunning, Data: json.RawMessage(`{"recovered":0}`),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(webhook.TaskRetention),
	}
	return task, d.store.CreateTask(ctx, &task)
}

// harness is a Server over a store: SQLite in a temporary directory
// unless made with newHarnessOn.
type harness struct {
	t     testing.TB
	srv   *Server
	store webhook.Store
	clock *storetest.Clock
	dels  *fakeDeliveries
	logs  *bytes.Buffer
}

// t0 is the fake clock's start: a fixed time, not too far from the real
// one so that KSUIDs and timestamps tell the same story.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newHarness returns a harness over SQLite; configure, if given, adjusts
// the Config.
func newHarness(t testing.TB, configure ...func(*Config)) *harness {
	t.Helper()
	return newHarnessOn(t, openSQLite, configure...)
}

// openSQLite opens a store in a temporary directory, closed when the test
// ends.
func openSQLite(t testing.TB, clock webhook.Clock) webhook.Store {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hookstep.db"), clock)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// newHarnessOn returns a harness over the store that open returns for the
// harness's clock.
func newHarnessOn(t testing.TB, open func(testing.TB, webhook.Clock) webhook.Store, configure ...func(*Config)) *harness {
	t.Helper()
	clock := storetest.NewClock(t0)
	store := open(t, clock)
	dels := &fakeDeliveries{store: store, clock: clock}
	logs := &bytes.Buffer{}
	cfg := Config{
		Store:      store,
		Deliveries: dels,
		Clock:      clock,
		TokenHash:  sha256.Sum256([]byte(testToken)),
		Logger:     slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil)),
		Version:    "test",
	}
	for _, c := range configure {
		if c != nil {
			c(&cfg)
		}
	}
	srv := New(cfg)
	return &harness{t: t, srv: srv, store: store, clock: clock, dels: dels, logs: logs}
}

// lockedWriter serialises writes to a buffer shared by handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// response is a recorded response.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// Data returns the items of a list response.
func (r response) Data(t testing.TB) []map[string]any {
	t.Helper()
	raw, ok := r.JSON(t)["data"].([]any)
	if !ok {
		t.Fatalf("response %s has no data list", r.Body)
	}
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

// do sends a request with the test token. body is marshalled unless it is
// a string or []byte, which are sent as they are. headers are name, value
// pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, "http://hookstep.test"+path, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	res := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	if res.Status >= 500 {
		h.t.Errorf("%s %s: status %d, body %s; logs:\n%s", method, path, res.Status, res.Body, h.logs)
	}
	return res
}

// must sends a request and fails the test unless the status is want.
func (h *harness) must(want int, method, path string, body any, headers ...string) response {
	h.t.Helper()
	res := h.do(method, path, body, headers...)
	if res.Status != want {
		h.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, res.Status, want, res.Body)
	}
	return res
}

func (h *harness) createApp(body map[string]any) map[string]any {
	h.t.Helper()
	return h.must(http.StatusCreated, "POST", "/api/v1/app", body).JSON(h.t)
}

func (h *harness) createEventType(name string) {
	h.t.Helper()
	h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{"name": name, "description": "about " + name})
}

func (h *harness) createEndpoint(appID string, body map[string]any) map[string]any {
	h.t.Helper()
	if _, ok := body["url"]; !ok {
		body["url"] = "https://example.com/hook"
	}
	return h.must(http.StatusCreated, "POST", "/api/v1/app/"+appID+"/endpoint", body).JSON(h.t)
}

func (h *harness) sendMessage(appID string, body map[string]any) map[string]any {
	h.t.Helper()
	if _, ok := body["eventType"]; !ok {
		body["eventType"] = "user.created"
	}
	if _, ok := body["payload"]; !ok {
		body["payload"] = map[string]any{"n": 1}
	}
	return h.must(http.StatusAccepted, "POST", "/api/v1/app/"+appID+"/msg", body).JSON(h.t)
}

// recordAttempt stores an attempt of the delivery of msg to ep with the
// given HTTP status (0 = no response) and returns its id.
func (h *harness) recordAttempt(appID, msgID, epID string, code int, final webhook.Status) string {
	h.t.Helper()
	ctx := context.Background()
	d, err := h.store.GetDelivery(ctx, appID, msgID, epID)
	if err != nil {
		h.t.Fatalf("get delivery: %v", err)
	}
	msg, err := h.store.GetMessage(ctx, appID, msgID)
	if err != nil {
		h.t.Fatalf("get message: %v", err)
	}
	st := webhook.StatusFail
	if code >= 200 && code < 300 {
		st = webhook.StatusSuccess
	}
	id := webhook.NewID(webhook.PrefixAttempt)
	res := webhook.AttemptResult{
		Attempt: webhook.Attempt{
			ID: id, AppID: appID, MsgID: msgID, EndpointID: epID, EventType: d.EventType,
			URL: "https://example.com/hook", Response: `{"ok":true}`, ResponseStatusCode: code,
			ResponseDurationMs: 12, Status: st, Trigger: d.Trigger, Timestamp: h.clock.Now(),
			ExpiresAt: msg.ExpiresAt, // as the delivery engine sets it
		},
		Run:      d.Run,
		Attempts: d.Attempts + 1,
		Status:   final,
	}
	if final == webhook.StatusSending {
		res.NextAttemptAt = h.clock.Now().Add(5 * time.Second)
	}
	if _, err := h.store.RecordAttempt(ctx, res); err != nil {
		h.t.Fatalf("record attempt: %v", err)
	}
	return id
}

// wantKeys fails unless obj has exactly the keys named (with any value).
func wantKeys(t testing.TB, what string, obj map[string]any, keys ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: key %q missing in %v", what, k, obj)
		}
	}
	for k := range obj {
		if !want[k] {
			t.Errorf("%s: unexpected key %q", what, k)
		}
	}
}

// wantNull fails unless each named key is present and null.
func wantNull(t testing.TB, what string, obj map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		v, ok := obj[k]
		if !ok || v != nil {
			t.Errorf("%s: %s = %v (present %v), want null", what, k, v, ok)
		}
	}
}

// wantError fails unless res is a Svix error with the status and code.
func wantError(t testing.TB, res response, status int, code string) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d; body %s", res.Status, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content-type %q, want application/json", ct)
	}
	m := res.JSON(t)
	if status == http.StatusUnprocessableEntity {
		wantValidation(t, res, nil)
		return
	}
	if m["code"] != code {
		t.Errorf("code %v, want %q; body %s", m["code"], code, res.Body)
	}
	if d, ok := m["detail"].(string); !ok || d == "" {
		t.Errorf("detail %v, want a non-empty string", m["detail"])
	}
}

// wantValidation fails unless res is a 422 in the Svix validation format
// whose first problem is at loc (nil: any loc).
func wantValidation(t testing.TB, res response, loc []string) {
	t.Helper()
	if res.Status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422; body %s", res.Status, res.Body)
	}
	var v struct {
		Detail []struct {
			Loc  []string `json:"loc"`
			Msg  string   `json:"msg"`
			Type string   `json:"type"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(res.Body, &v); err != nil || len(v.Detail) == 0 {
		t.Fatalf("422 body %s is not a validation error (%v)", res.Body, err)
	}
	for _, d := range v.Detail {
		if d.Msg == "" || d.Type != "value_error" || len(d.Loc) == 0 {
			t.Errorf("validation item %+v lacks loc, msg or type", d)
		}
	}
	if loc != nil && strings.Join(v.Detail[0].Loc, ".") != strings.Join(loc, ".") {
		t.Errorf("loc %v, want %v; body %s", v.Detail[0].Loc, loc, res.Body)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
