package functions_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// This test builds the real bootstrap binaries and runs each under the AWS
// Lambda Runtime Interface Emulator, with DynamoDB = dynalite, Step
// Functions = sfntest's fake of its wire protocol, and Secrets Manager = a
// fake answering GetSecretValue. It drives them the way AWS would: API
// Gateway proxy events to api, the execution input to deliver, a scheduled
// event to sweeper.

const (
	token     = "hsk_emulator-test-token"
	secretARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:hookstep-admin-token"
	smARN     = "arn:aws:states:eu-west-1:123456789012:stateMachine:hookstep-delivery"
)

// fakeSecrets answers Secrets Manager's GetSecretValue for one secret.
func fakeSecrets(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ SecretId string }
		json.NewDecoder(r.Body).Decode(&in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || in.SecretId != secretARN {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ResourceNotFoundException","message":"no such secret"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"ARN": secretARN, "Name": "hookstep-admin-token", "SecretString": token})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// receiver records signed requests and answers each with a status.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	hits []*http.Request
	body [][]byte
}

// newReceiver answers with the status of the endpoint path ("/ok" → 200,
// "/fail" → 500).
func newReceiver(t *testing.T) *receiver {
	return answering(t, func(req *http.Request, _ int) int {
		if req.URL.Path == "/fail" {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
}

// answering answers each request with answer(req, n), n counting the
// requests from 1; answer may hold the request before it answers.
func answering(t *testing.T, answer func(req *http.Request, n int) int) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.hits, r.body = append(r.hits, req), append(r.body, b)
		n := len(r.hits)
		r.mu.Unlock()
		w.WriteHeader(answer(req, n))
	}))
	t.Cleanup(r.Close)
	return r
}

// ids returns the webhook-id of each request received, in order.
func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.hits))
	for i, h := range r.hits {
		ids[i] = h.Header.Get("webhook-id")
	}
	return ids
}

// apiEvent turns a request into an API Gateway REST proxy event, starting
// from the sample in events/lambda so the shape is the one AWS sends.
// apiCaller returns a function that sends a request to the api function
// as API Gateway would, fails t unless it answers want, and returns the
// answer's JSON object.
func apiCaller(t *testing.T, api *awstest.Function, root string) func(method, path, body string, want int) map[string]any {
	return func(method, path, body string, want int) map[string]any {
		t.Helper()
		var res events.APIGatewayProxyResponse
		api.InvokeInto(t, apiEvent(t, root, method, path, body), &res)
		if res.StatusCode != want {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, res.StatusCode, res.Body, want)
		}
		var out map[string]any
		json.Unmarshal([]byte(res.Body), &out)
		return out
	}
}

func apiEvent(t *testing.T, root, method, path, body string) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", "lambda", "api-create-message.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	ev.HTTPMethod, ev.Path, ev.RequestContext.Path = method, "/prod"+path, "/prod"+path
	ev.Body, ev.IsBase64Encoded = body, false
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = nil, nil
	ev.MultiValueHeaders["Authorization"] = []string{"Bearer " + token}
	ev.Headers = nil
	return ev
}

func TestFunctionsUnderTheRuntimeEmulator(t *testing.T) {
	root := awstest.Root(t)
	ctx := context.Background()

	// DynamoDB: dynalite with the table the stack creates.
	dbURL := awstest.Dynalite(t)
	store := newTable(t, dbURL, "hookstep")

	states := sfntest.New(t)
	invokes := awstest.NewLambda(t)
	env := functionEnv(dbURL, states.URL, invokes.URL, fakeSecrets(t))
	api := awstest.Run(t, awstest.Build(t, "api"), env)
	deliver := awstest.Run(t, awstest.Build(t, "deliver"), env)
	sweeper := awstest.Run(t, awstest.Build(t, "sweeper"), env)
	handTo(t, invokes, sweeper)
	rcv := newReceiver(t)

	call := apiCaller(t, api, root)

	// The api function accepts a message (202) and starts one execution.
	app := call("POST", "/api/v1/app", `{"name":"Acme","uid":"acme"}`, 201)["id"].(string)
	ok := call("POST", "/api/v1/app/acme/endpoint", `{"url":"`+rcv.URL+`/ok","uid":"ok"}`, 201)["id"].(string)
	secret := call("GET", "/api/v1/app/acme/endpoint/ok/secret", "", 200)["key"].(string)
	msg := call("POST", "/api/v1/app/acme/msg", `{"eventType":"v1.end_user.created","payload":{"type":"v1.end_user.created","n":1}}`, 202)["id"].(string)
	started := states.Started()
	input, found := started[msg+"-"+ok]
	if len(started) != 1 || !found {
		t.Fatalf("executions started: %v, want one named %s-%s", started, msg, ok)
	}

	// The deliver function, invoked with that execution's input, POSTs a
	// signed request and returns delivered.
	var in map[string]any
	json.Unmarshal([]byte(input), &in)
	var out struct {
		Outcome string `json:"outcome"`
		Attempt int    `json:"attempt"`
	}
	deliver.InvokeInto(t, in, &out)
	if out.Outcome != "delivered" || out.Attempt != 1 {
		t.Fatalf("deliver: got %+v, want delivered on attempt 1", out)
	}
	wh, _ := svix.NewWebhook(secret)
	rcv.mu.Lock()
	if len(rcv.hits) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(rcv.hits))
	}
	if err := wh.Verify(rcv.body[0], rcv.hits[0].Header); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
	rcv.mu.Unlock()

	// Play works on AWS: what the api function's Play receiver keeps is
	// in the table, where every instance (here: this test) reads it.
	newEndpoint := apiEvent(t, root, "GET", "/app/acme/endpoint/new", "")
	newEndpoint.MultiValueHeaders["Cookie"] = []string{"hookstep_session=" + token}
	var page events.APIGatewayProxyResponse
	api.InvokeInto(t, newEndpoint, &page)
	playURL := regexp.MustCompile(`/prod/play/([A-Za-z0-9_-]+)`).FindStringSubmatch(page.Body)
	if page.StatusCode != http.StatusOK || playURL == nil {
		t.Fatalf("Add Endpoint page: got %d without a Play URL, want 200 with one:\n%s", page.StatusCode, page.Body)
	}
	call("POST", "/play/"+playURL[1], `{"hello":"play"}`, 200)
	if reqs, err := store.Play().Requests(ctx, playURL[1]); err != nil || len(reqs) != 1 || string(reqs[0].Body) != `{"hello":"play"}` {
		t.Errorf("Play requests in the table: got %+v, %v; want the one sent", reqs, err)
	}

	// A failing receiver yields retry.
	// The type is in the catalog the function seeded on its cold start.
	call("GET", "/api/v1/event-type/v1.end_user.updated", "", 200)
	fail := call("POST", "/api/v1/app/acme/endpoint", `{"url":"`+rcv.URL+`/fail","filterTypes":["v1.end_user.updated"]}`, 201)["id"].(string)
	msg2 := call("POST", "/api/v1/app/acme/msg", `{"eventType":"v1.end_user.updated","payload":{"n":2}}`, 202)["id"].(string)
	ref := map[string]any{"appId": app, "msgId": msg2, "endpointId": fail, "run": 0}
	deliver.InvokeInto(t, ref, &out)
	if out.Outcome != "retry" {
		t.Fatalf("failing receiver: got %+v, want retry", out)
	}

	// A disabled endpoint: stop, without a request.
	call("PATCH", "/api/v1/app/acme/endpoint/"+fail, `{"disabled":true}`, 200)
	before := len(rcv.hits)
	deliver.InvokeInto(t, ref, &out)
	if out.Outcome != "stop" || len(rcv.hits) != before {
		t.Fatalf("disabled endpoint: got %+v with %d new requests, want stop and none", out, len(rcv.hits)-before)
	}

	b, _ := os.ReadFile(filepath.Join(root, "events", "lambda", "sweeper-scheduled-event.json"))
	var scheduled map[string]any
	json.Unmarshal(b, &scheduled)
	var report struct{ Disabled, Redriven, Restarted int }

	// StartExecution fails after the message is stored: the 202 stands,
	// the api hands the run to the sweeper function, which starts it.
	states.FailNext(1)
	handedOn := call("POST", "/api/v1/app/acme/msg", `{"eventType":"v1.end_user.created","payload":{"n":4}}`, 202)["id"].(string)
	invokes.Wait()
	if _, found := states.Started()[handedOn+"-"+ok]; !found || invokes.Invokes("hookstep-sweeper") != 1 {
		t.Fatalf("executions %v after %d hand-offs; want the run handed to the sweeper and started", states.Started(), invokes.Invokes("hookstep-sweeper"))
	}

	// No stranded messages: the hand-off fails too; the sweeper's
	// scheduled run re-drives the delivery.
	states.FailNext(1)
	invokes.Refuse(true)
	stranded := call("POST", "/api/v1/app/acme/msg", `{"eventType":"v1.end_user.created","payload":{"n":5}}`, 202)["id"].(string)
	invokes.Refuse(false)
	if _, ok := states.Started()[stranded+"-"+ok]; ok {
		t.Fatal("the execution started although StartExecution and the hand-off failed")
	}
	sweeper.InvokeInto(t, scheduled, &report)
	if _, found := states.Started()[stranded+"-"+ok]; report.Redriven != 1 || !found {
		t.Fatalf("sweeper: got %+v, executions %v; want the stranded delivery re-driven", report, states.Started())
	}

	// An execution ends without finishing its delivery (stopped by an
	// operator, failed beyond its error handling): the sweeper finds the
	// run overdue, sees the execution is not running, and re-drives it as
	// the next run under a new execution name.
	states.End(stranded+"-"+ok, "ABORTED")
	var restart struct{ Redriven, Restarted int }
	sweeper.InvokeInto(t, scheduled, &restart)
	if _, found := states.Started()[stranded+"-"+ok+"-r1"]; restart.Restarted != 1 || !found {
		t.Fatalf("sweeper: got %+v, executions %v; want the run re-driven as run 1", restart, states.Started())
	}
	if d, err := store.GetDelivery(ctx, app, stranded, ok); err != nil || d.Run != 1 || !d.Dispatched {
		t.Errorf("re-driven delivery: %+v, %v; want run 1, dispatched", d, err)
	}

	// The sweeper disables an endpoint that has failed for a week.
	call("PATCH", "/api/v1/app/acme/endpoint/"+fail, `{"disabled":false}`, 200)
	msg3 := call("POST", "/api/v1/app/acme/msg", `{"eventType":"v1.end_user.updated","payload":{"n":3}}`, 202)["id"].(string)
	weekAgo := time.Now().UTC().Add(-8 * 24 * time.Hour)
	// Dispatched before it was stored, the delivery has no item until its
	// first attempt (internal/dynamo, deferred deliveries): the attempt
	// is recorded from the delivery as read.
	from, err := store.GetDelivery(ctx, app, msg3, fail)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RecordAttempt(ctx, webhook.AttemptResult{
		Attempt: webhook.Attempt{ID: webhook.NewID(webhook.PrefixAttempt), AppID: app, MsgID: msg3, EndpointID: fail,
			Status: webhook.StatusFail, Timestamp: weekAgo, ExpiresAt: time.Now().Add(time.Hour)},
		Attempts: 1, Status: webhook.StatusSending, NextAttemptAt: time.Now().Add(time.Hour), From: from,
	}); err != nil {
		t.Fatal(err)
	}
	sweeper.InvokeInto(t, scheduled, &report)
	if report.Disabled != 1 {
		t.Fatalf("sweeper: got %+v, want one endpoint disabled", report)
	}
	ep, err := store.GetEndpoint(ctx, app, fail)
	if err != nil || !ep.Disabled || ep.DisabledWhy != webhook.DisabledFailing {
		t.Errorf("endpoint after the sweep: %+v, %v", ep, err)
	}
}

// functionEnv is the environment of the three functions against the
// fakes: dynalite, Step Functions, Lambda (the api's hand-offs) and
// Secrets Manager.
func functionEnv(dbURL, sfnURL, lambdaURL, secretsURL string) []string {
	return []string{
		"AWS_REGION=eu-west-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_ENDPOINT_URL_DYNAMODB=" + dbURL,
		"AWS_ENDPOINT_URL_SFN=" + sfnURL,
		"AWS_ENDPOINT_URL_LAMBDA=" + lambdaURL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + secretsURL,
		"AWS_MAX_ATTEMPTS=1",
		"HOOKSTEP_TABLE=hookstep", "HOOKSTEP_STATE_MACHINE_ARN=" + smARN, "HOOKSTEP_ADMIN_TOKEN_SECRET_ARN=" + secretARN,
		"HOOKSTEP_DISPATCH_FUNCTION=arn:aws:lambda:eu-west-1:123456789012:function:hookstep-sweeper",
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS=true", "HOOKSTEP_REQUIRE_HTTPS=false", "HOOKSTEP_HTTP_TIMEOUT=5s",
		"HOOKSTEP_REDRIVE_AFTER=1ms",
		"HOOKSTEP_PORTAL_FRAME_ANCESTORS=" + portalOrigin,
	}
}

// portalOrigin may frame the customers' portal of the api function.
const portalOrigin = "https://platform.example"

// handTo makes the fake Lambda pass the api's asynchronous invokes of the
// sweeper function to the sweeper bootstrap under the emulator.
func handTo(t *testing.T, invokes *awstest.Lambda, sweeper *awstest.Function) {
	invokes.Handle("hookstep-sweeper", func(payload []byte) {
		if _, err := sweeper.Call(json.RawMessage(payload)); err != nil {
			t.Errorf("sweeper, invoked asynchronously: %v", err)
		}
	})
}
