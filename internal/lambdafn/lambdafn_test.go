package lambdafn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/hookstep/hookstep/internal/api"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/sweeper"
	"github.com/hookstep/hookstep/internal/webhook"
)

// sample loads one of the Lambda sample events in events/lambda.
func sample(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", "lambda", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type recorder struct{ refs []webhook.Ref }

func (r *recorder) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	r.refs = append(r.refs, refs...)
	return refs, nil
}

// rig is the services of the functions over SQLite instead of DynamoDB.
type rig struct {
	store *sqlite.Store
	svc   *delivery.Service
	disp  *recorder
	now   time.Time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), webhook.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r := &rig{store: store, disp: &recorder{}, now: time.Now().UTC()}
	r.svc = &delivery.Service{
		Store: store, Dispatcher: r.disp, Schedule: webhook.DefaultSchedule, Clock: webhook.SystemClock{},
		Sender: sender.New(sender.Config{Timeout: 5 * time.Second, AllowPrivate: true}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return r
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{"HOOKSTEP_TABLE": "hookstep", "HOOKSTEP_RETRY_SCHEDULE": "0s,1s"}
	c, err := LoadConfig(func(k string) string { return env[k] }, FunctionDeliver)
	if err != nil {
		t.Fatal(err)
	}
	if c.Table != "hookstep" || c.Schedule.String() != "0s,1s" || c.AllowPrivate || !c.RequireHTTPS || c.HTTPTimeout != 15*time.Second ||
		c.Dispatch != DispatchStepFunctions || c.Retention != 90*24*time.Hour {
		t.Errorf("got %+v", c)
	}
	_, err = LoadConfig(func(k string) string { return map[string]string{"HOOKSTEP_HTTP_TIMEOUT": "x"}[k] }, FunctionAPI)
	for _, want := range []string{"HOOKSTEP_TABLE is not set", "HOOKSTEP_STATE_MACHINE_ARN is not set", "HOOKSTEP_ADMIN_TOKEN_SECRET_ARN is not set",
		"HOOKSTEP_DISPATCH_FUNCTION is not set", "HOOKSTEP_HTTP_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// TestLoadConfigPerMode: what each function needs in each dispatch mode.
func TestLoadConfigPerMode(t *testing.T) {
	tests := []struct {
		fn       Function
		dispatch string
		missing  []string // the variables it must ask for
		notAsked []string
	}{
		{FunctionAPI, "queue", []string{"HOOKSTEP_DISPATCH_QUEUE_URL", "HOOKSTEP_DISPATCH_FUNCTION"}, []string{"HOOKSTEP_STATE_MACHINE_ARN"}},
		{FunctionDeliver, "queue", []string{"HOOKSTEP_STATE_MACHINE_ARN", "HOOKSTEP_DISPATCH_QUEUE_URL"}, nil},
		{FunctionDeliver, "stepfunctions", nil, []string{"HOOKSTEP_STATE_MACHINE_ARN", "HOOKSTEP_DISPATCH_QUEUE_URL"}},
		{FunctionSweeper, "queue", []string{"HOOKSTEP_STATE_MACHINE_ARN", "HOOKSTEP_DISPATCH_QUEUE_URL", "HOOKSTEP_DEAD_LETTER_QUEUE_URL"}, nil},
		{FunctionSweeper, "stepfunctions", []string{"HOOKSTEP_STATE_MACHINE_ARN"}, []string{"HOOKSTEP_DISPATCH_QUEUE_URL"}},
	}
	for _, tt := range tests {
		env := map[string]string{"HOOKSTEP_TABLE": "t", "HOOKSTEP_ADMIN_TOKEN_SECRET_ARN": "arn:secret", "HOOKSTEP_DISPATCH": tt.dispatch}
		_, err := LoadConfig(func(k string) string { return env[k] }, tt.fn)
		msg := fmt.Sprint(err)
		for _, v := range tt.missing {
			if !strings.Contains(msg, v) {
				t.Errorf("%s in %s mode: error %q does not ask for %s", tt.fn, tt.dispatch, msg, v)
			}
		}
		for _, v := range tt.notAsked {
			if strings.Contains(msg, v) {
				t.Errorf("%s in %s mode: error %q asks for %s, which it does not use", tt.fn, tt.dispatch, msg, v)
			}
		}
	}
	bad := map[string]string{"HOOKSTEP_TABLE": "t", "HOOKSTEP_DISPATCH": "kinesis", "HOOKSTEP_RETENTION": "100000h"}
	_, err := LoadConfig(func(k string) string { return bad[k] }, FunctionDeliver)
	if err == nil || !strings.Contains(err.Error(), "HOOKSTEP_DISPATCH") || !strings.Contains(err.Error(), "HOOKSTEP_RETENTION") {
		t.Errorf("unknown mode and a retention beyond 90 days: got %v", err)
	}
	portal := map[string]string{"HOOKSTEP_TABLE": "t", "HOOKSTEP_ADMIN_TOKEN_SECRET_ARN": "arn:secret", "HOOKSTEP_DISPATCH_FUNCTION": "sweeper",
		"HOOKSTEP_STATE_MACHINE_ARN": "arn:sm", "HOOKSTEP_PORTAL_FRAME_ANCESTORS": "https://a.example https://b.example", "HOOKSTEP_PORTAL_NAME": "Hooks"}
	if c, err := LoadConfig(func(k string) string { return portal[k] }, FunctionAPI); err != nil ||
		c.PortalFrameAncestors != "https://a.example https://b.example" || c.PortalName != "Hooks" {
		t.Errorf("portal settings of the api: got %q %q, %v", c.PortalFrameAncestors, c.PortalName, err)
	}
	ok := map[string]string{"HOOKSTEP_TABLE": "t", "HOOKSTEP_RETENTION": "720h"}
	if c, err := LoadConfig(func(k string) string { return ok[k] }, FunctionDeliver); err != nil || c.Retention != 30*24*time.Hour {
		t.Errorf("30-day retention: got %v, %v", c.Retention, err)
	}
}

// TestProxyCreatesAMessage feeds the API Gateway sample (stage path,
// base64 body) to the api handler: the message is accepted and dispatched.
func TestProxyCreatesAMessage(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	ep := r.seedAcme(t)
	h := api.New(api.Config{Store: r.store, Deliveries: r.svc, TokenHash: authtoken.Hash("hsk_sample-token")})

	var ev events.APIGatewayProxyRequest
	sample(t, "api-create-message.json", &ev)
	res, err := Proxy(h)(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, body %s; want 202", res.StatusCode, res.Body)
	}
	var out struct {
		ID      string `json:"id"`
		EventID string `json:"eventId"`
	}
	if err := json.Unmarshal([]byte(res.Body), &out); err != nil || out.EventID != "evt-sample-1" {
		t.Fatalf("body %s: %v", res.Body, err)
	}
	if got := res.MultiValueHeaders["Content-Type"]; len(got) != 1 || !strings.HasPrefix(got[0], "application/json") {
		t.Errorf("content-type: got %v", got)
	}
	if len(r.disp.refs) != 1 || r.disp.refs[0].MsgID != out.ID || r.disp.refs[0].EndpointID != ep.ID {
		t.Errorf("dispatched %v, want the message to %s", r.disp.refs, ep.ID)
	}
}

// TestProxyFidelity checks what the handler sees: header values with
// commas intact, repeated headers and query values, the stage stripped, the
// body decoded; and a binary response comes back base64-encoded.
func TestProxyFidelity(t *testing.T) {
	var seen *http.Request
	var body []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte{0xff, 0x00, 0xfe})
	})
	var ev events.APIGatewayProxyRequest
	sample(t, "api-create-message.json", &ev)
	ev.MultiValueHeaders["Webhook-Signature"] = []string{"v1,abc= v1,def="}
	ev.MultiValueHeaders["X-Repeated"] = []string{"one", "two"}
	ev.MultiValueQueryStringParameters = map[string][]string{"event_types": {"a.b", "c,d"}}

	res, err := Proxy(h)(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if seen.URL.Path != "/api/v1/app/acme/msg" {
		t.Errorf("path: got %q, want the stage stripped", seen.URL.Path)
	}
	if got := RequestStagePath(seen); got != "/prod" {
		t.Errorf("stage path for links: got %q, want /prod", got)
	}
	checks := map[string]string{
		"X-Forwarded-For":   "203.0.113.7, 198.51.100.20",
		"X-Trace-Tags":      "a,b,c",
		"Webhook-Signature": "v1,abc= v1,def=",
	}
	for k, want := range checks {
		if got := seen.Header.Get(k); got != want {
			t.Errorf("header %s: got %q, want %q", k, got, want)
		}
	}
	if got := seen.Header.Values("X-Repeated"); len(got) != 2 {
		t.Errorf("repeated header: got %v", got)
	}
	if got := seen.URL.Query()["event_types"]; len(got) != 2 || got[1] != "c,d" {
		t.Errorf("query: got %v", got)
	}
	if !strings.HasPrefix(string(body), `{"eventType":"v1.end_user.created"`) {
		t.Errorf("body not decoded: %q", body)
	}
	if res.StatusCode != http.StatusTeapot || !res.IsBase64Encoded || res.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}) {
		t.Errorf("response: got %d base64=%v %q", res.StatusCode, res.IsBase64Encoded, res.Body)
	}

	// Through a custom domain the path has no stage, and none is stripped.
	ev.Path, ev.RequestContext.Path = "/prod/x", "/prod/x"
	ev.RequestContext.Stage = "live"
	Proxy(h)(context.Background(), ev)
	if seen.URL.Path != "/prod/x" || RequestStagePath(seen) != "" {
		t.Errorf("custom domain: got path %q and prefix %q, want the path untouched and no prefix", seen.URL.Path, RequestStagePath(seen))
	}
	// A body that is not base64 although flagged is a 400, not a panic.
	ev.Body, ev.IsBase64Encoded = "%%%", true
	if res, _ := Proxy(h)(context.Background(), ev); res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad base64: got %d, want 400", res.StatusCode)
	}
}

// seedSample stores the app, endpoint and message the deliver sample
// names, the endpoint pointing at url.
func seedSample(t *testing.T, r *rig, url string) DeliverInput {
	t.Helper()
	var in DeliverInput
	sample(t, "deliver-input.json", &in)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.store.CreateApp(ctx, &webhook.App{ID: in.AppID, Name: "Acme", CreatedAt: r.now, UpdatedAt: r.now}))
	must(r.store.CreateEndpoint(ctx, &webhook.Endpoint{ID: in.EndpointID, AppID: in.AppID, URL: url, Version: 1,
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: r.now, UpdatedAt: r.now}))
	msg := &webhook.Message{ID: in.MsgID, AppID: in.AppID, EventType: "v1.end_user.created", Payload: []byte(`{"a":1}`),
		Timestamp: r.now, ExpiresAt: r.now.Add(time.Hour)}
	must(r.store.CreateMessage(ctx, msg, []webhook.Delivery{{AppID: in.AppID, MsgID: in.MsgID, EndpointID: in.EndpointID,
		EventType: msg.EventType, Status: webhook.StatusPending, NextAttemptAt: r.now, CreatedAt: r.now, UpdatedAt: r.now}}))
	return in
}

func TestDeliverHandler(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		disable bool
		want    delivery.Outcome
		status  webhook.Status
	}{
		{"receiver answers 200", 200, false, delivery.Delivered, webhook.StatusSuccess},
		{"receiver answers 500", 500, false, delivery.Retry, webhook.StatusSending},
		{"endpoint disabled", 200, true, delivery.Stop, webhook.StatusCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits int
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				hits++
				w.WriteHeader(tt.code)
			}))
			defer rcv.Close()
			r := newRig(t)
			in := seedSample(t, r, rcv.URL)
			if tt.disable {
				ep, _ := r.store.GetEndpoint(context.Background(), in.AppID, in.EndpointID)
				ep.Disabled = true
				r.store.UpdateEndpoint(context.Background(), ep, ep.UpdatedAt)
			}
			res, err := Deliver(r.svc, io.Discard)(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tt.want {
				t.Errorf("outcome: got %q, want %q", res.Outcome, tt.want)
			}
			if tt.disable != (hits == 0) {
				t.Errorf("receiver hit %d times", hits)
			}
			d, _ := r.store.GetDelivery(context.Background(), in.AppID, in.MsgID, in.EndpointID)
			if d.Status != tt.status {
				t.Errorf("delivery status: got %v, want %v", d.Status, tt.status)
			}
			// The result is what the state machine's Choice reads.
			b, _ := json.Marshal(res)
			if !strings.Contains(string(b), `"outcome":"`+string(tt.want)+`"`) {
				t.Errorf("result JSON %s lacks the outcome", b)
			}
		})
	}
}

func TestDeliverHandlerFailAndBadInput(t *testing.T) {
	r := newRig(t)
	in := seedSample(t, r, "https://r.invalid/")
	in.Action = ActionFail
	res, err := Deliver(r.svc, io.Discard)(context.Background(), in)
	if err != nil || res.Outcome != delivery.Stop {
		t.Fatalf("fail action: got %+v, %v", res, err)
	}
	d, _ := r.store.GetDelivery(context.Background(), in.AppID, in.MsgID, in.EndpointID)
	if d.Status != webhook.StatusFail {
		t.Errorf("status after the fail step: got %v, want fail", d.Status)
	}
	for _, bad := range []DeliverInput{{}, {Ref: webhook.Ref{AppID: "a", MsgID: "m", EndpointID: "e"}, Action: "explode"}} {
		if _, err := Deliver(r.svc, io.Discard)(context.Background(), bad); err == nil {
			t.Errorf("input %+v: want an error", bad)
		}
	}
}

func TestSweepHandler(t *testing.T) {
	r := newRig(t)
	in := seedSample(t, r, "https://r.invalid/")
	ctx := context.Background()
	// The endpoint has been failing for eight days.
	if _, err := r.store.RecordAttempt(ctx, webhook.AttemptResult{
		Attempt: webhook.Attempt{ID: webhook.NewID(webhook.PrefixAttempt), AppID: in.AppID, MsgID: in.MsgID, EndpointID: in.EndpointID,
			Status: webhook.StatusFail, Timestamp: r.now.Add(-8 * 24 * time.Hour), ExpiresAt: r.now.Add(time.Hour)},
		Attempts: 1, Status: webhook.StatusSending, NextAttemptAt: r.now.Add(time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	sw := r.sweeper(5 * time.Minute)
	var ev SweeperEvent
	sample(t, "sweeper-scheduled-event.json", &ev)
	if ev.DetailType != "Scheduled Event" || len(ev.Dispatch) != 0 {
		t.Fatalf("sample is not a scheduled event: %+v", ev)
	}
	var out strings.Builder
	rep, err := Sweep(sw, r.svc, &out)(ctx, ev)
	if err != nil || rep.Disabled != 1 {
		t.Fatalf("got %+v, %v; want one endpoint disabled", rep, err)
	}
	ep, _ := r.store.GetEndpoint(ctx, in.AppID, in.EndpointID)
	if !ep.Disabled {
		t.Error("endpoint still enabled")
	}
}

type secrets struct {
	value *string
	err   error
	asked string
}

func (s *secrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.asked = aws.ToString(in.SecretId)
	return &secretsmanager.GetSecretValueOutput{SecretString: s.value}, s.err
}

func TestAdminTokenHash(t *testing.T) {
	s := &secrets{value: aws.String("hsk_abc\n")}
	h, err := AdminTokenHash(context.Background(), s.GetSecretValue, "arn:secret")
	if err != nil || h != authtoken.Hash("hsk_abc") || s.asked != "arn:secret" {
		t.Errorf("got %x, %v (asked %q)", h, err, s.asked)
	}
	for _, bad := range []*secrets{{value: aws.String(" ")}, {value: nil}, {err: errors.New("AccessDenied")}} {
		if _, err := AdminTokenHash(context.Background(), bad.GetSecretValue, "arn:secret"); err == nil {
			t.Errorf("secret %+v: want an error", bad)
		}
	}
}

// TestDeliverHandlerReconcilesAndHandsOff: the reconcile action says where
// a run stands; the handoff action moves the delivery to a new,
// undispatched run and publishes the HandOffs metric in Embedded Metric
// Format.
func TestDeliverHandlerReconcilesAndHandsOff(t *testing.T) {
	r := newRig(t)
	in := seedSample(t, r, "https://r.invalid/")
	var metrics strings.Builder
	deliver := Deliver(r.svc, &metrics)
	in.Action = ActionReconcile
	res, err := deliver(context.Background(), in)
	if err != nil || res.Outcome != delivery.Again {
		t.Fatalf("reconcile of a due, unrecorded first attempt: %+v, %v; want again", res, err)
	}
	in.Action = ActionHandOff
	if res, err := deliver(context.Background(), in); err != nil || res.Outcome != delivery.Stop {
		t.Fatalf("handoff: %+v, %v; want stop", res, err)
	}
	d, _ := r.store.GetDelivery(context.Background(), in.AppID, in.MsgID, in.EndpointID)
	if d.Run != 1 || d.Dispatched || d.Status.Final() {
		t.Errorf("after handoff: %+v, want run 1, undispatched, unfinished", d)
	}
	var emf struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace string
				Metrics   []struct{ Name string }
			}
		} `json:"_aws"`
		HandOffs float64
	}
	if err := json.Unmarshal([]byte(metrics.String()), &emf); err != nil {
		t.Fatalf("metrics line %q: %v", metrics.String(), err)
	}
	if cw := emf.AWS.CloudWatchMetrics; emf.HandOffs != 1 || len(cw) != 1 || cw[0].Namespace != MetricNamespace ||
		len(cw[0].Metrics) != 1 || cw[0].Metrics[0].Name != MetricHandOffs {
		t.Errorf("metrics line %s, want HandOffs = 1 in namespace %s", metrics.String(), MetricNamespace)
	}
	// Handing off the same (now superseded) run again changes nothing and
	// publishes nothing.
	metrics.Reset()
	if _, err := deliver(context.Background(), in); err != nil || metrics.Len() != 0 {
		t.Errorf("second handoff: %v, metrics %q; want no error, no metric", err, metrics.String())
	}
}

// TestSweepHandlerDispatchesWhatTheAPIHandedOver: the dispatch event (the
// sample) starts the runs it names and marks them dispatched.
func TestSweepHandlerDispatchesWhatTheAPIHandedOver(t *testing.T) {
	r := newRig(t)
	in := seedSample(t, r, "https://r.invalid/")
	sw := r.sweeper(time.Minute)
	var ev SweeperEvent
	sample(t, "sweeper-dispatch.json", &ev)
	if len(ev.Dispatch) != 1 || ev.Dispatch[0] != in.Ref {
		t.Fatalf("sample dispatch event: %+v, want the deliver sample's run", ev)
	}
	var metrics strings.Builder
	res, err := Sweep(sw, r.svc, &metrics)(context.Background(), ev)
	if err != nil || res.Dispatched != 1 {
		t.Fatalf("got %+v, %v; want 1 dispatched", res, err)
	}
	if len(r.disp.refs) != 1 || r.disp.refs[0] != in.Ref {
		t.Errorf("dispatched %v, want %v", r.disp.refs, in.Ref)
	}
	if d, _ := r.store.GetDelivery(context.Background(), in.AppID, in.MsgID, in.EndpointID); !d.Dispatched {
		t.Error("delivery not marked dispatched")
	}
}

// fakeLambda answers the Lambda Invoke API on 127.0.0.1 and records what
// it was asked.
type fakeLambda struct {
	mu       sync.Mutex
	invokes  []SweeperEvent
	types    []string
	function []string
	fail     bool
}

func (f *fakeLambda) serve(w http.ResponseWriter, req *http.Request) {
	var ev SweeperEvent
	json.NewDecoder(req.Body).Decode(&ev)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"Type":"User","message":"Rate Exceeded."}`)
		return
	}
	f.invokes = append(f.invokes, ev)
	f.types = append(f.types, req.Header.Get("X-Amz-Invocation-Type"))
	f.function = append(f.function, req.URL.Path)
	w.WriteHeader(http.StatusAccepted)
}

// TestHandOffInvokesTheSweeperAsynchronously: runs are handed over in
// events of at most handOffChunk, with InvocationType Event, and none is
// reported taken.
func TestHandOffInvokesTheSweeperAsynchronously(t *testing.T) {
	fake := &fakeLambda{}
	srv := httptest.NewServer(http.HandlerFunc(fake.serve))
	defer srv.Close()
	client := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""), RetryMaxAttempts: 1})
	h := NewHandOff(client.Invoke, "hookstep-sweeper")
	refs := make([]webhook.Ref, handOffChunk+5)
	for i := range refs {
		refs[i] = webhook.Ref{AppID: "app_1", MsgID: fmt.Sprintf("msg_%d", i), EndpointID: "ep_1"}
	}
	taken, err := h.Dispatch(context.Background(), refs)
	if err != nil || len(taken) != 0 {
		t.Fatalf("got %v, %v; want none taken, no error", taken, err)
	}
	if len(fake.invokes) != 2 || len(fake.invokes[0].Dispatch) != handOffChunk || len(fake.invokes[1].Dispatch) != 5 {
		t.Fatalf("invokes of %d events, want 2 of %d and 5 runs", len(fake.invokes), handOffChunk)
	}
	for i, typ := range fake.types {
		if typ != "Event" || !strings.Contains(fake.function[i], "hookstep-sweeper") {
			t.Errorf("invoke %d: type %q path %q, want an asynchronous invoke of hookstep-sweeper", i, typ, fake.function[i])
		}
	}
	fake.fail = true
	if _, err := h.Dispatch(context.Background(), refs[:1]); err == nil {
		t.Error("a refused invoke: got no error")
	}
}

// TestFirstThenHandsOnWhatWasNotTaken: the runs the first dispatcher did
// not take go to the second; what both took is returned.
func TestFirstThenHandsOnWhatWasNotTaken(t *testing.T) {
	refs := []webhook.Ref{{MsgID: "m1"}, {MsgID: "m2"}, {MsgID: "m3"}}
	first := &partial{take: 1}
	then := &recorder{}
	taken, err := firstThen{first, then}.Dispatch(context.Background(), refs)
	if err != nil || len(taken) != 3 {
		t.Fatalf("got %v, %v; want all 3 taken", taken, err)
	}
	if want := refs[1:]; len(then.refs) != 2 || then.refs[0] != want[0] || then.refs[1] != want[1] {
		t.Errorf("handed on %v, want %v", then.refs, want)
	}
}

// partial takes the first take runs and fails the rest.
type partial struct{ take int }

func (p *partial) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	return refs[:min(p.take, len(refs))], errors.New("throttled")
}

// TestSweepHandlerRunsAHandedOverTask: the task event (the sample) runs
// the background task it names; an unknown one is not an error.
func TestSweepHandlerRunsAHandedOverTask(t *testing.T) {
	r := newRig(t)
	in := seedSample(t, r, "https://r.invalid/")
	sw := r.sweeper(time.Minute)
	var ev SweeperEvent
	sample(t, "sweeper-task.json", &ev)
	if !strings.HasPrefix(ev.Task, webhook.PrefixTask) {
		t.Fatalf("sample task event: %+v", ev)
	}
	handler := Sweep(sw, r.svc, io.Discard)
	if _, err := handler(context.Background(), ev); err != nil {
		t.Fatalf("unknown task: %v, want no error", err)
	}
	// A recover handed over (HandTask) runs when the handler gets it.
	var handed []string
	r.svc.HandTask = func(_ context.Context, id string) error { handed = append(handed, id); return nil }
	ep, _ := r.store.GetEndpoint(context.Background(), in.AppID, in.EndpointID)
	task, err := r.svc.Recover(context.Background(), ep, r.now.Add(-time.Hour), time.Time{})
	if err != nil || len(handed) != 1 || handed[0] != task.ID {
		t.Fatalf("Recover: %+v, %v, handed %v; want the task handed over", task, err, handed)
	}
	if got, _ := r.store.GetTask(context.Background(), task.ID); got.Status != webhook.TaskRunning {
		t.Fatalf("task before the handler ran it: %s, want running", got.Status)
	}
	if _, err := handler(context.Background(), SweeperEvent{Task: task.ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.store.GetTask(context.Background(), task.ID); got.Status != webhook.TaskFinished {
		t.Errorf("task after the handler ran it: %s, want finished", got.Status)
	}
}

// sweeper is a sweeper over the rig's store and services.
func (r *rig) sweeper(redriveAfter time.Duration) *sweeper.Sweeper {
	return &sweeper.Sweeper{Store: r.store, Dispatch: r.svc.Dispatch, Clock: webhook.SystemClock{}, Logger: r.svc.Logger,
		DisableAfter: 7 * 24 * time.Hour, RedriveAfter: redriveAfter, Batch: 10}
}

// queueRig is a rig whose Retries records the runs whose execution it
// was asked to start, failing while failRetries is set.
func queueRig(t *testing.T) (*rig, *[]webhook.Ref, *error) {
	r := newRig(t)
	var started []webhook.Ref
	var failRetries error
	r.svc.Retries = func(_ context.Context, ref webhook.Ref) error {
		if failRetries != nil {
			return failRetries
		}
		started = append(started, ref)
		return nil
	}
	return r, &started, &failRetries
}

// laterCalls records the backoffs the handler asked for.
type laterCalls struct {
	mu    sync.Mutex
	calls map[string]int // receipt handle → receive count
}

func (l *laterCalls) later(_ context.Context, handle string, count int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[handle] = count
	return nil
}

// TestDeliverQueuedRecords feeds the SQS sample (one run, one record that
// names none) to the deliver function's handler: a receiver that answers
// 200 is delivered with no execution started; one that fails gets the
// schedule's immediate retry in the same invocation and then one
// execution for the retries after it; the record that names no run is dropped, not
// failed; a run that cannot start its execution is the one failed item,
// with a backoff asked for.
func TestDeliverQueuedRecords(t *testing.T) {
	var ev json.RawMessage
	sample(t, "deliver-sqs.json", &ev)
	tests := []struct {
		name        string
		code        int
		failRetries bool
		posts       int
		executions  int
		status      webhook.Status
		failed      bool
	}{
		{"receiver answers 200", 200, false, 1, 0, webhook.StatusSuccess, false},
		{"receiver answers 500", 500, false, 2, 1, webhook.StatusSending, false},
		{"receiver answers 500, the execution does not start", 500, true, 2, 0, webhook.StatusSending, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits int
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { hits++; w.WriteHeader(tt.code) }))
			defer rcv.Close()
			r, started, failRetries := queueRig(t)
			in := seedSample(t, r, rcv.URL)
			if tt.failRetries {
				*failRetries = errors.New("StartExecution: throttled")
			}
			l := &laterCalls{calls: map[string]int{}}
			out, err := DeliverEvents(r.svc, l.later, nil, io.Discard)(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			resp, ok := out.(events.SQSEventResponse)
			if !ok {
				t.Fatalf("got %T, want the partial batch response", out)
			}
			if got := len(resp.BatchItemFailures); tt.failed != (got == 1) || got > 1 {
				t.Errorf("failed items %v", resp.BatchItemFailures)
			}
			if tt.failed && (resp.BatchItemFailures[0].ItemIdentifier != "4f2c7e1a-5b0d-4c8e-9a3f-2d1e6b7c8a90" || l.calls["AQEBsampleReceiptHandle0001"] != 1) {
				t.Errorf("failed %v, backoffs %v; want the run's record, backed off after its first receive", resp.BatchItemFailures, l.calls)
			}
			if hits != tt.posts || len(*started) != tt.executions {
				t.Errorf("%d POSTs, executions %v; want %d POSTs and %d executions", hits, *started, tt.posts, tt.executions)
			}
			d, _ := r.store.GetDelivery(context.Background(), in.AppID, in.MsgID, in.EndpointID)
			if d.Status != tt.status || d.Attempts != tt.posts {
				t.Errorf("delivery %v after %d attempts, want %v after %d", d.Status, d.Attempts, tt.status, tt.posts)
			}
			if !tt.failed {
				return
			}
			// The queue hands the record over again: the attempts are
			// recorded, so no POST, only the execution.
			*failRetries = nil
			out, err = DeliverEvents(r.svc, l.later, nil, io.Discard)(context.Background(), ev)
			if err != nil || len(out.(events.SQSEventResponse).BatchItemFailures) != 0 {
				t.Fatalf("redelivered: %+v, %v", out, err)
			}
			if hits != tt.posts || len(*started) != 1 {
				t.Errorf("redelivered: %d POSTs, executions %v; want still %d POSTs and now 1 execution", hits, *started, tt.posts)
			}
		})
	}
}

// TestDeliverEventsRoutesStateMachineSteps: the same handler serves the
// state machine's steps (the deliver sample), with the result the
// state machine's Choice reads.
func TestDeliverEventsRoutesStateMachineSteps(t *testing.T) {
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {}))
	defer rcv.Close()
	r := newRig(t)
	seedSample(t, r, rcv.URL)
	var in json.RawMessage
	sample(t, "deliver-input.json", &in)
	out, err := DeliverEvents(r.svc, nil, nil, io.Discard)(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := out.(delivery.Result); !ok || res.Outcome != delivery.Delivered {
		t.Errorf("got %#v, want a delivered result", out)
	}
	for _, bad := range []string{`[1]`, `"x"`, `{"Records":"no"}`, `{"appId":1}`, `{}`} {
		if _, err := DeliverEvents(r.svc, nil, nil, io.Discard)(context.Background(), json.RawMessage(bad)); err == nil {
			t.Errorf("event %s: want an error", bad)
		}
	}
}

// seedAcme stores the app the API Gateway samples post to, "acme", with
// one endpoint, and returns the endpoint.
func (r *rig) seedAcme(t *testing.T) *webhook.Endpoint {
	t.Helper()
	ctx := context.Background()
	if err := r.store.CreateApp(ctx, &webhook.App{ID: webhook.NewID(webhook.PrefixApp), UID: "acme", Name: "Acme", CreatedAt: r.now, UpdatedAt: r.now}); err != nil {
		t.Fatal(err)
	}
	app, err := r.store.GetApp(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: app.ID, URL: "https://r.invalid/", Version: 1,
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: r.now, UpdatedAt: r.now}
	if err := r.store.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// TestProxyAnyCreatesAMessage feeds both API Gateway samples, the REST API
// one (v1: stage in the path, base64 body) and the HTTP API one (2.0:
// $default stage, lowercase headers, text body), to the one handler the
// api function starts: each message is accepted and dispatched, and the
// answer has the shape of the payload that came in.
func TestProxyAnyCreatesAMessage(t *testing.T) {
	for _, tc := range []struct {
		sample string
		wantV2 bool
	}{
		{"api-create-message.json", false},
		{"api-v2-create-message.json", true},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			r := newRig(t)
			ep := r.seedAcme(t)
			h := api.New(api.Config{Store: r.store, Deliveries: r.svc, TokenHash: authtoken.Hash("hsk_sample-token")})
			var raw json.RawMessage
			sample(t, tc.sample, &raw)

			res, err := ProxyAny(h)(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			var status int
			var body, contentType string
			switch res := res.(type) {
			case events.APIGatewayProxyResponse:
				if tc.wantV2 {
					t.Fatalf("got a REST API response to an HTTP API event: %+v", res)
				}
				status, body = res.StatusCode, res.Body
				contentType = strings.Join(res.MultiValueHeaders["Content-Type"], "|")
			case events.APIGatewayV2HTTPResponse:
				if !tc.wantV2 {
					t.Fatalf("got an HTTP API response to a REST API event: %+v", res)
				}
				status, body, contentType = res.StatusCode, res.Body, res.Headers["Content-Type"]
			default:
				t.Fatalf("response: got %T, want an API Gateway response", res)
			}
			if status != http.StatusAccepted {
				t.Fatalf("status %d, body %s; want 202", status, body)
			}
			var out struct {
				ID      string `json:"id"`
				EventID string `json:"eventId"`
			}
			if err := json.Unmarshal([]byte(body), &out); err != nil || out.EventID != "evt-sample-1" {
				t.Fatalf("body %s: %v", body, err)
			}
			if !strings.HasPrefix(contentType, "application/json") || strings.Contains(contentType, "|") {
				t.Errorf("content-type: got %q, want one application/json", contentType)
			}
			if len(r.disp.refs) != 1 || r.disp.refs[0].MsgID != out.ID || r.disp.refs[0].EndpointID != ep.ID {
				t.Errorf("dispatched %v, want the message to %s", r.disp.refs, ep.ID)
			}
		})
	}
}

// v2Event loads the HTTP API sample for a test to change.
func v2Event(t *testing.T) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	sample(t, "api-v2-create-message.json", &ev)
	return ev
}

// TestProxyV2Fidelity checks, through the dual handler, what the handler
// sees of an HTTP API event (header values with commas intact, a repeated
// header as the one value API Gateway joined, cookies as the Cookie
// header, repeated query keys, a base64 body decoded, the source IP) and
// what API Gateway gets back (Set-Cookie as cookies, repeated headers
// joined, a binary body base64-encoded).
func TestProxyV2Fidelity(t *testing.T) {
	var seen *http.Request
	var body []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Add("Set-Cookie", "session=new; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly")
		w.Header().Add("Set-Cookie", "theme=light; Path=/")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte{0xff, 0x00, 0xfe})
	})
	ev := v2Event(t)
	ev.Headers["webhook-signature"] = "v1,abc= v1,def="
	ev.Headers["x-repeated"] = "one,two" // sent twice; API Gateway joins them
	ev.Cookies = []string{"session=abc", "theme=dark"}
	ev.RawQueryString = "event_types=a.b&event_types=c%2Cd&q=x%20y"
	ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(ev.Body)), true
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}

	out, err := ProxyAny(h)(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	res, ok := out.(events.APIGatewayV2HTTPResponse)
	if !ok {
		t.Fatalf("response: got %T, want events.APIGatewayV2HTTPResponse", out)
	}
	if seen.Method != http.MethodPost || seen.URL.Path != "/api/v1/app/acme/msg" {
		t.Errorf("request: got %s %s, want POST /api/v1/app/acme/msg", seen.Method, seen.URL.Path)
	}
	if got := RequestStagePath(seen); got != "" {
		t.Errorf("stage path for links: got %q, want none on the $default stage", got)
	}
	checks := map[string]string{
		"Authorization":     "Bearer hsk_sample-token",
		"X-Forwarded-For":   "203.0.113.7, 198.51.100.20",
		"X-Trace-Tags":      "a,b,c",
		"Webhook-Signature": "v1,abc= v1,def=",
		"Cookie":            "session=abc; theme=dark",
	}
	for k, want := range checks {
		if got := seen.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("header %s: got %q, want [%q]", k, got, want)
		}
	}
	if got := seen.Header.Values("X-Repeated"); len(got) != 1 || got[0] != "one,two" {
		t.Errorf("repeated header: got %q, want the one value API Gateway joined", got)
	}
	if c, err := seen.Cookie("theme"); err != nil || c.Value != "dark" {
		t.Errorf("cookie theme: got %v, %v; want dark", c, err)
	}
	q := seen.URL.Query()
	if got := q["event_types"]; len(got) != 2 || got[0] != "a.b" || got[1] != "c,d" {
		t.Errorf("query event_types: got %q, want [a.b c,d]", got)
	}
	if got := q.Get("q"); got != "x y" {
		t.Errorf("query q: got %q, want %q", got, "x y")
	}
	if !strings.HasPrefix(string(body), `{"eventType":"v1.end_user.created"`) {
		t.Errorf("body not decoded: %q", body)
	}
	if seen.RemoteAddr != "203.0.113.7" || seen.Host != "def456ghi7.execute-api.eu-west-1.amazonaws.com" {
		t.Errorf("remote %q host %q, want the source IP and the API's host", seen.RemoteAddr, seen.Host)
	}

	if res.StatusCode != http.StatusTeapot || !res.IsBase64Encoded || res.Body != base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}) {
		t.Errorf("response: got %d base64=%v %q, want 418 with the bytes base64-encoded", res.StatusCode, res.IsBase64Encoded, res.Body)
	}
	wantCookies := []string{"session=new; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly", "theme=light; Path=/"}
	if fmt.Sprint(res.Cookies) != fmt.Sprint(wantCookies) || len(res.Cookies) != 2 {
		t.Errorf("cookies: got %q, want %q", res.Cookies, wantCookies)
	}
	if _, ok := res.Headers["Set-Cookie"]; ok {
		t.Errorf("Set-Cookie also sent as a header: %q", res.Headers)
	}
	if got := res.Headers["X-Multi"]; got != "1,2" {
		t.Errorf("repeated response header: got %q, want 1,2", got)
	}
	if got := res.Headers["Content-Type"]; got != "application/octet-stream" {
		t.Errorf("content-type: got %q", got)
	}

	// A text body goes both ways as it is, without base64.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	ev = v2Event(t)
	ev.Body = "héllo, wörld"
	res, err = ProxyV2(echo)(context.Background(), ev)
	if err != nil || res.StatusCode != http.StatusOK || res.IsBase64Encoded || res.Body != "héllo, wörld" || res.Cookies != nil {
		t.Errorf("text echo: got %+v, %v; want 200 with the text as is", res, err)
	}
	// A body that is not base64 although flagged is a 400, not a panic.
	ev.Body, ev.IsBase64Encoded = "%%%", true
	if res, _ := ProxyV2(echo)(context.Background(), ev); res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad base64: got %d, want 400", res.StatusCode)
	}
}

// TestProxyV2Paths checks the path the handler sees and the stage path
// the dashboard links with: a named stage is in the execute-api URL's path
// and is stripped; the $default stage and a custom domain put none there;
// and rawPath, which an HTTP API sends percent-decoded, stays one path.
func TestProxyV2Paths(t *testing.T) {
	for _, tc := range []struct {
		name, stage, domain, rawPath, rawQuery string
		wantPath, wantStage, wantURI           string
	}{
		{name: "$default stage", stage: "$default", rawPath: "/api/v1/app",
			wantPath: "/api/v1/app", wantURI: "/api/v1/app"},
		{name: "named stage", stage: "prod", rawPath: "/prod/api/v1/app", rawQuery: "limit=2",
			wantPath: "/api/v1/app", wantStage: "/prod", wantURI: "/api/v1/app?limit=2"},
		{name: "named stage root", stage: "prod", rawPath: "/prod",
			wantPath: "/", wantStage: "/prod", wantURI: "/"},
		{name: "named stage, another first segment", stage: "prod", rawPath: "/production/x",
			wantPath: "/production/x", wantURI: "/production/x"},
		{name: "custom domain", stage: "prod", domain: "hooks.example.com", rawPath: "/prod/x",
			wantPath: "/prod/x", wantURI: "/prod/x"},
		{name: "decoded path", stage: "$default", rawPath: "/api/v1/app/a b?c#d%2", rawQuery: "x=1",
			wantPath: "/api/v1/app/a b?c#d%2", wantURI: "/api/v1/app/a%20b%3Fc%23d%252?x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen *http.Request
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r })
			ev := v2Event(t)
			ev.RequestContext.Stage, ev.RawPath, ev.RequestContext.HTTP.Path, ev.RawQueryString = tc.stage, tc.rawPath, tc.rawPath, tc.rawQuery
			if tc.domain != "" {
				ev.RequestContext.DomainName, ev.Headers["host"] = tc.domain, tc.domain
			}
			if _, err := ProxyV2(h)(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			if seen == nil {
				t.Fatal("the handler was not called")
			}
			if seen.URL.Path != tc.wantPath || seen.URL.RawQuery != tc.rawQuery || seen.RequestURI != tc.wantURI {
				t.Errorf("got path %q query %q URI %q, want %q %q %q", seen.URL.Path, seen.URL.RawQuery, seen.RequestURI, tc.wantPath, tc.rawQuery, tc.wantURI)
			}
			if got := RequestStagePath(seen); got != tc.wantStage {
				t.Errorf("stage path: got %q, want %q", got, tc.wantStage)
			}
		})
	}
}

// TestProxyAnyRejectsMalformedEvents: an event that is not an API Gateway
// proxy request fails the invocation; it is never served as one.
func TestProxyAnyRejectsMalformedEvents(t *testing.T) {
	called := false
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	for name, raw := range map[string]string{
		"not JSON":          `{"version": "2.0",`,
		"not an object":     `[1, 2]`,
		"null":              `null`,
		"empty object":      `{}`,
		"v2 without method": `{"version": "2.0", "rawPath": "/api/v1/app"}`,
		"v2 wrong types":    `{"version": "2.0", "headers": "host: x", "requestContext": {"http": {"method": "GET"}}}`,
		"v1 wrong types":    `{"httpMethod": "GET", "multiValueHeaders": {"Host": "x"}}`,
		"version a number":  `{"version": 2, "httpMethod": "GET"}`,
		"unknown version":   `{"version": "3.0", "httpMethod": "GET", "requestContext": {"http": {"method": "GET"}}}`,
		"a scheduled event": `{"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events"}`,
	} {
		t.Run(name, func(t *testing.T) {
			res, err := ProxyAny(h)(context.Background(), json.RawMessage(raw))
			if err == nil || res != nil {
				t.Errorf("got %+v, %v; want no response and an error", res, err)
			}
		})
	}
	if called {
		t.Error("the handler served a malformed event")
	}
}

// TestSweepHandlerTakesBackARunWhoseExecutionEnded feeds Step Functions'
// status-change sample (an aborted execution of run 0) to the sweeper:
// the unfinished run is re-driven as run 1 and dispatched; the same event
// again, or one for a finished run, changes nothing; an event that names
// no run is an error, for EventBridge's retries and dead-letter queue.
func TestSweepHandlerTakesBackARunWhoseExecutionEnded(t *testing.T) {
	r := newRig(t)
	in := seedSample(t, r, "https://r.invalid/")
	ctx := context.Background()
	if err := r.store.MarkDispatched(ctx, in.Ref); err != nil {
		t.Fatal(err)
	}
	var ev SweeperEvent
	sample(t, "sweeper-execution-ended.json", &ev)
	sweep := Sweep(r.sweeper(time.Minute), r.svc, io.Discard)
	res, err := sweep(ctx, ev)
	if err != nil || res.Taken != 1 {
		t.Fatalf("got %+v, %v; want the run taken back", res, err)
	}
	d, _ := r.store.GetDelivery(ctx, in.AppID, in.MsgID, in.EndpointID)
	next := in.Ref
	next.Run = 1
	if d.Run != 1 || !d.Dispatched || len(r.disp.refs) != 1 || r.disp.refs[0] != next {
		t.Errorf("delivery %+v, dispatched %v; want run 1 dispatched", d, r.disp.refs)
	}
	if res, err := sweep(ctx, ev); err != nil || res.Taken != 0 || len(r.disp.refs) != 1 {
		t.Errorf("the same event again: %+v, %v, dispatched %v; want nothing done", res, err, r.disp.refs)
	}
	ev.Detail.Input = `{"appId":"x"}`
	if _, err := sweep(ctx, ev); err == nil {
		t.Error("an event that names no run: want an error")
	}
}

// TestDeliverQueuedReportsWhatItsDeadlineCut: an attempt still running
// near the function's deadline is cut before it, so that its record is
// reported failed and backed off while the function can still answer.
func TestDeliverQueuedReportsWhatItsDeadlineCut(t *testing.T) {
	release := make(chan struct{})
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	defer rcv.Close()
	defer close(release)
	r, _, _ := queueRig(t)
	seedSample(t, r, rcv.URL)
	var ev events.SQSEvent
	sample(t, "deliver-sqs.json", &ev)
	ev.Records = ev.Records[:1]
	ctx, cancel := context.WithTimeout(context.Background(), reportMargin+300*time.Millisecond)
	defer cancel()
	l := &laterCalls{calls: map[string]int{}}
	resp, err := DeliverQueued(r.svc, l.later, nil)(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 1 || l.calls[ev.Records[0].ReceiptHandle] != 1 {
		t.Errorf("got %+v, %v, backoffs %v; want the record failed and backed off", resp, err, l.calls)
	}
	if ctx.Err() != nil {
		t.Error("the handler answered after its deadline")
	}
}
