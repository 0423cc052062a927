package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// The execution tests run the state machine definition the stack
// synthesizes for the default schedule with aws-local-stepfunctions
// (infra/sfnlocal/run.mjs, on Node 22), its Task states answered by the
// real deliver bootstrap under the Lambda runtime emulator against
// dynalite, and its Wait states and retry intervals shortened to
// milliseconds. Nothing plays Step Functions' control plane but the
// harness: it starts each execution itself, or, for the sweeper's
// re-drives, when the Step Functions fake (sfntest) is asked to.

// rig is dynalite behind a proxy that can refuse connections, the table,
// and the state machine's definition.
type rig struct {
	t      *testing.T
	node   string
	script string
	def    []byte
	dbURL  string
	proxy  *faultProxy
	store  *dynamo.Store
	app    *webhook.App
	env    []string // AWS settings of the functions

	mu      sync.Mutex
	running map[string]int // executions in flight, by name
}

func newRig(t *testing.T) *rig {
	root := awstest.Root(t)
	node := awstest.RequireTool(t, "Node 22", filepath.Join(root, "infra", "node_modules", ".bin", "node"))
	ctx := context.Background()
	def, err := stack.Definition(webhook.DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, node: node, script: filepath.Join(root, "infra", "sfnlocal", "run.mjs"), def: def,
		dbURL: awstest.Dynalite(t), running: map[string]int{}}
	r.proxy = newFaultProxy(t, r.dbURL)
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(r.dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err := dynamo.CreateTable(ctx, client, "hookstep"); err != nil {
		t.Fatal(err)
	}
	r.store = dynamo.New(client, "hookstep", webhook.SystemClock{})
	r.env = []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret", "HOOKSTEP_TABLE=hookstep",
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS=true", "HOOKSTEP_REQUIRE_HTTPS=false"}
	now := time.Now().UTC()
	r.app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "Acme", CreatedAt: now, UpdatedAt: now}
	if err := r.store.CreateApp(ctx, r.app); err != nil {
		t.Fatal(err)
	}
	return r
}

// deliver starts the deliver bootstrap under the emulator, its DynamoDB
// calls through the proxy, with env on top of the rig's.
func (r *rig) deliver(env ...string) *awstest.Function {
	return awstest.Run(r.t, awstest.Build(r.t, "deliver"),
		append(append(slices.Clone(r.env), "AWS_ENDPOINT_URL_DYNAMODB="+r.proxy.url), env...))
}

// delivery stores an endpoint at url and a message to it, and returns the
// run of its delivery.
func (r *rig) delivery(url string) webhook.Ref {
	r.t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: r.app.ID, URL: url, Version: 1,
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: now, UpdatedAt: now}
	if err := r.store.CreateEndpoint(ctx, ep); err != nil {
		r.t.Fatal(err)
	}
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: r.app.ID, EventType: "v1.end_user.created",
		Payload: []byte(`{"type":"v1.end_user.created"}`), Timestamp: now, ExpiresAt: now.Add(time.Hour)}
	if err := r.store.CreateMessage(ctx, msg, []webhook.Delivery{{AppID: r.app.ID, MsgID: msg.ID, EndpointID: ep.ID,
		EventType: msg.EventType, Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}}); err != nil {
		r.t.Fatal(err)
	}
	ref := webhook.Ref{AppID: r.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
	if err := r.store.MarkDispatched(ctx, ref); err != nil { // the execution the test starts owns it
		r.t.Fatal(err)
	}
	return ref
}

// execute runs the definition once with input, its Tasks answered by fn
// through an interceptor that calls before (when set) with each Task's
// payload before passing it on. The execution counts as running, by its
// run's name, until it ends.
func (r *rig) execute(input webhook.Ref, fn *awstest.Function, before func(payload map[string]any)) executionResult {
	return r.executeLosing(input, fn, before, nil)
}

// executeLosing is execute whose interceptor, when lose says so for a
// Task's payload, answers the state machine with a Lambda.Unknown error
// after the function has run: its result is lost on the way back.
func (r *rig) executeLosing(input webhook.Ref, fn *awstest.Function, before func(payload map[string]any), lose func(payload map[string]any) bool) executionResult {
	r.t.Helper()
	name := sfn.ExecutionName(input)
	r.mu.Lock()
	r.running[name]++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running[name]--
		r.mu.Unlock()
	}()
	var resumeAt atomic.Pointer[time.Time] // of the last result the state machine saw
	invoke := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// run.mjs shortens every Wait, WaitUntil too: the Task after a
		// result with resumeAt is held until then here, as WaitUntil
		// would hold it. (Asked before its retry is due, the deliver
		// function makes no attempt and answers with resumeAt again: the
		// execution would go round WaitUntil until then.)
		if at := resumeAt.Swap(nil); at != nil {
			time.Sleep(time.Until(*at))
		}
		body, _ := io.ReadAll(req.Body)
		var payload map[string]any
		json.Unmarshal(body, &payload)
		if before != nil {
			before(payload)
		}
		// The execution runs: its delivery must be owned by it alone.
		r.checkOwned(webhook.Ref{AppID: input.AppID, MsgID: input.MsgID, EndpointID: input.EndpointID})
		res, err := http.Post(fn.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		if lose != nil && lose(payload) {
			io.Copy(io.Discard, res.Body)
			json.NewEncoder(w).Encode(map[string]string{"errorType": "Lambda.Unknown", "errorMessage": "the result was lost"})
			return
		}
		out, _ := io.ReadAll(res.Body)
		var result struct {
			ResumeAt *time.Time `json:"resumeAt"`
		}
		if json.Unmarshal(out, &result) == nil && result.ResumeAt != nil {
			resumeAt.Store(result.ResumeAt)
		}
		w.WriteHeader(res.StatusCode)
		w.Write(out)
	}))
	defer invoke.Close()
	return execute(r.t, r.node, r.script, r.def, input, invoke.URL)
}

// checkOwned walks the deliveries of refs: each is final, or owned by
// exactly one owner — a running execution under its run's name
// (dispatched), or the sweeper (undispatched, found by the query the
// sweeper makes) and no execution. The interceptor checks it before each
// Task, while the execution runs; the tests after each ends.
func (r *rig) checkOwned(refs ...webhook.Ref) {
	r.t.Helper()
	ctx := context.Background()
	overdue, err := r.store.ListOverdue(ctx, time.Now().Add(time.Hour), 1000)
	if err != nil {
		r.t.Error(err)
		return
	}
	var undispatched []webhook.Delivery
	for _, d := range overdue {
		if !d.Dispatched {
			undispatched = append(undispatched, d)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ref := range refs {
		d, err := r.store.GetDelivery(ctx, ref.AppID, ref.MsgID, ref.EndpointID)
		if err != nil {
			r.t.Error(err)
			return
		}
		if d.Status.Final() {
			continue
		}
		running := r.running[sfn.ExecutionName(d.Ref())]
		swept := slices.ContainsFunc(undispatched, func(u webhook.Delivery) bool { return u.Ref() == d.Ref() })
		switch {
		case d.Dispatched && running == 1 && !swept:
		case !d.Dispatched && running == 0 && swept:
		default:
			r.t.Errorf("delivery %s run %d (%v): dispatched %v, %d running executions, in the sweep %v: want exactly one owner",
				d.MsgID, d.Run, d.Status, d.Dispatched, running, swept)
		}
	}
}

// attempts returns the attempts recorded for ref's message.
func (r *rig) attempts(ref webhook.Ref) []webhook.Attempt {
	r.t.Helper()
	page, err := r.store.ListAttempts(context.Background(), webhook.AttemptFilter{AppID: ref.AppID, MsgID: ref.MsgID})
	if err != nil {
		r.t.Fatal(err)
	}
	return page.Items
}

func (r *rig) status(ref webhook.Ref) *webhook.Delivery {
	r.t.Helper()
	d, err := r.store.GetDelivery(context.Background(), ref.AppID, ref.MsgID, ref.EndpointID)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// receiver answers each request with answer(n), n counting from 1, after
// holding it for hold(n); it keeps the webhook-ids it saw.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	ids []string
}

func newReceiver(t *testing.T, answer func(n int) int, hold func(n int) time.Duration) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.ids = append(r.ids, req.Header.Get("webhook-id"))
		n := len(r.ids)
		r.mu.Unlock()
		if hold != nil {
			select {
			case <-time.After(hold(n)):
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(answer(n))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// TestSynthesizedStateMachineDrivesDeliveries: the normal paths.
func TestSynthesizedStateMachineDrivesDeliveries(t *testing.T) {
	r := newRig(t)
	// As many attempts as the definition's schedule, due at once: the
	// rig shortens the Wait states, and the function makes no attempt
	// before it is due.
	deliver := r.deliver("HOOKSTEP_HTTP_TIMEOUT=5s", "HOOKSTEP_RETRY_SCHEDULE="+make(webhook.Schedule, len(webhook.DefaultSchedule)).String())
	tests := []struct {
		name     string
		answer   func(n int, disable func()) int // status for the n-th request
		end      string                          // the execution's last state
		attempts int
		final    webhook.Status
	}{
		{"fails twice then succeeds", func(n int, _ func()) int {
			if n <= 2 {
				return 500
			}
			return 200
		}, stack.DoneState, 3, webhook.StatusSuccess},
		{"always fails", func(int, func()) int { return 503 }, stack.ExhaustedState, webhook.DefaultSchedule.MaxAttempts(), webhook.StatusFail},
		{"endpoint disabled mid-way", func(n int, disable func()) int {
			if n == 2 {
				disable()
			}
			return 500
		}, stack.DoneState, 2, webhook.StatusCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var ref webhook.Ref
			disable := func() {
				got, err := r.store.GetEndpoint(ctx, ref.AppID, ref.EndpointID)
				if err != nil {
					t.Error(err)
					return
				}
				prev := got.UpdatedAt
				got.Disabled, got.DisabledWhy, got.DisabledAt, got.UpdatedAt = true, webhook.DisabledManual, time.Now().UTC(), time.Now().UTC()
				if err := r.store.UpdateEndpoint(ctx, got, prev); err != nil {
					t.Error(err)
				}
			}
			rcv := newReceiver(t, func(n int) int { return tt.answer(n, disable) }, nil)
			ref = r.delivery(rcv.URL)
			res := r.execute(ref, deliver, nil)
			if res.Status != "SUCCEEDED" || res.States[len(res.States)-1] != tt.end {
				t.Fatalf("execution: got %s %s (%s) through %v, want it to succeed at %s", res.Status, res.Error, res.Cause, res.States, tt.end)
			}
			if n := len(r.attempts(ref)); n != tt.attempts {
				t.Errorf("attempts recorded: got %d, want %d", n, tt.attempts)
			}
			if n := len(rcv.seen()); n != tt.attempts {
				t.Errorf("receiver got %d requests, want %d", n, tt.attempts)
			}
			if d := r.status(ref); d.Status != tt.final {
				t.Errorf("delivery: got %v, want %v", d.Status, tt.final)
			}
			r.checkOwned(ref)
		})
	}
}

// TestFaultsLeaveNoDeliveryStranded injects the failures a deliver
// function can meet and checks that every delivery ends delivered, and is
// owned all along by exactly one execution or the sweeper.
func TestFaultsLeaveNoDeliveryStranded(t *testing.T) {
	r := newRig(t)

	t.Run("store unreachable for the first attempt", func(t *testing.T) {
		deliver := r.deliver("HOOKSTEP_HTTP_TIMEOUT=5s")
		rcv := newReceiver(t, func(int) int { return 200 }, nil)
		ref := r.delivery(rcv.URL)
		var attempts atomic.Int32
		res := r.execute(ref, deliver, func(p map[string]any) {
			// The first attempt finds DynamoDB refusing connections;
			// it is back for everything after.
			if p["action"] == nil && attempts.Add(1) == 1 {
				r.proxy.down.Store(true)
			} else {
				r.proxy.down.Store(false)
			}
		})
		r.proxy.down.Store(false)
		want := []string{"Deliver", "Pause", "Reconcile", "Outcome", "Deliver", "Outcome", "Done"}
		if res.Status != "SUCCEEDED" || !slices.Equal(res.States, want) {
			t.Fatalf("execution: got %s %s through %v, want it to succeed through %v", res.Status, res.Error, res.States, want)
		}
		if d := r.status(ref); d.Status != webhook.StatusSuccess || len(r.attempts(ref)) != 1 || len(rcv.seen()) != 1 {
			t.Errorf("delivery %v with %d attempts and %d requests, want success with 1 and 1", d.Status, len(r.attempts(ref)), len(rcv.seen()))
		}
		r.checkOwned(ref)
	})

	t.Run("deliver exceeds its timeout once", func(t *testing.T) {
		// A 2 s function timeout, an HTTP budget of 10 s, and a receiver
		// that holds the first request for 4 s: the function is killed
		// mid-POST, nothing is recorded, and the reconcile makes the
		// attempt again.
		deliver := r.deliver("HOOKSTEP_HTTP_TIMEOUT=10s", "AWS_LAMBDA_FUNCTION_TIMEOUT=2")
		rcv := newReceiver(t, func(int) int { return 200 }, func(n int) time.Duration {
			if n == 1 {
				return 4 * time.Second
			}
			return 0
		})
		ref := r.delivery(rcv.URL)
		res := r.execute(ref, deliver, nil)
		want := []string{"Deliver", "Pause", "Reconcile", "Outcome", "Deliver", "Outcome", "Done"}
		if res.Status != "SUCCEEDED" || !slices.Equal(res.States, want) {
			t.Fatalf("execution: got %s %s through %v, want it to succeed through %v", res.Status, res.Error, res.States, want)
		}
		// Two POSTs with the message's webhook-id; one attempt recorded,
		// for the POST whose answer came back: none counted twice.
		if ids := rcv.seen(); len(ids) != 2 || ids[0] != ref.MsgID || ids[1] != ref.MsgID {
			t.Errorf("receiver saw webhook-ids %v, want %s twice", ids, ref.MsgID)
		}
		if as := r.attempts(ref); len(as) != 1 || as[0].Status != webhook.StatusSuccess {
			t.Errorf("attempts recorded: %+v, want the one success", as)
		}
		if d := r.status(ref); d.Status != webhook.StatusSuccess || d.Attempts != 1 {
			t.Errorf("delivery: %+v, want success after 1 recorded attempt", d)
		}
		r.checkOwned(ref)
	})

	t.Run("the result of a recorded attempt is lost", func(t *testing.T) {
		// The second attempt fails and is recorded, but its result
		// never reaches the state machine (Lambda.Unknown after the
		// function ran): the reconcile finds it recorded and waits for
		// its retry, without a POST of its own.
		deliver := r.deliver("HOOKSTEP_HTTP_TIMEOUT=5s")
		rcv := newReceiver(t, func(n int) int {
			if n <= 2 {
				return 500
			}
			return 200
		}, nil)
		ref := r.delivery(rcv.URL)
		var attempts atomic.Int32
		res := r.executeLosing(ref, deliver, nil, func(p map[string]any) bool {
			return p["action"] == nil && attempts.Add(1) == 2
		})
		want := []string{"Deliver", "Outcome", "Wait1", "Deliver", "Pause", "Reconcile", "Outcome", "WaitUntil", "Deliver", "Outcome", "Done"}
		if res.Status != "SUCCEEDED" || !slices.Equal(res.States, want) {
			t.Fatalf("execution: got %s %s through %v, want it to succeed through %v", res.Status, res.Error, res.States, want)
		}
		if n, posts := len(r.attempts(ref)), len(rcv.seen()); n != 3 || posts != 3 {
			t.Errorf("%d attempts recorded for %d POSTs, want 3 and 3: a recorded attempt is not sent again", n, posts)
		}
		if d := r.status(ref); d.Status != webhook.StatusSuccess {
			t.Errorf("delivery: %v, want success", d.Status)
		}
		r.checkOwned(ref)
	})

	t.Run("the hand-off bound is reached and the sweeper re-drives", func(t *testing.T) {
		// Every attempt of the first execution outlives the function
		// (2 s); the reconcile gives up after 1 s and hands the run off.
		deliver := r.deliver("HOOKSTEP_HTTP_TIMEOUT=10s", "AWS_LAMBDA_FUNCTION_TIMEOUT=2", "HOOKSTEP_RECONCILE_FOR=1s")
		var hang atomic.Bool
		hang.Store(true)
		rcv := newReceiver(t, func(int) int { return 200 }, func(int) time.Duration {
			if hang.Load() {
				return 4 * time.Second
			}
			return 0
		})
		ref := r.delivery(rcv.URL)
		res := r.execute(ref, deliver, nil)
		want := []string{"Deliver", "Pause", "Reconcile", "Outcome", "HandOff", "HandedOff"}
		if res.Status != "SUCCEEDED" || !slices.Equal(res.States, want) {
			t.Fatalf("execution: got %s %s through %v, want it to end handed off through %v", res.Status, res.Error, res.States, want)
		}
		d := r.status(ref)
		if d.Run != 1 || d.Dispatched || d.Status.Final() {
			t.Fatalf("after the hand-off: %+v, want run 1, undispatched", d)
		}
		r.checkOwned(ref) // the sweeper's now

		// The sweeper's scheduled run finds the run and starts its
		// execution, which the harness plays.
		hang.Store(false)
		fake := sfntest.New(t)
		done := make(chan executionResult, 1)
		fake.OnStart = func(s sfntest.StartExecution) {
			var in webhook.Ref
			json.Unmarshal([]byte(s.Input), &in)
			done <- r.execute(in, deliver, nil)
		}
		sweeper := awstest.Run(t, awstest.Build(t, "sweeper"), append(slices.Clone(r.env),
			"AWS_ENDPOINT_URL_DYNAMODB="+r.dbURL, "AWS_ENDPOINT_URL_SFN="+fake.URL,
			"HOOKSTEP_STATE_MACHINE_ARN=arn:aws:states:us-east-1:123456789012:stateMachine:hookstep",
			"HOOKSTEP_REDRIVE_AFTER=1ms"))
		var scheduled map[string]any
		readSample(t, "sweeper-scheduled-event.json", &scheduled)
		var rep struct{ Redriven int }
		sweeper.InvokeInto(t, scheduled, &rep)
		if rep.Redriven != 1 {
			t.Fatalf("sweep: %+v, want the handed-off run re-driven", rep)
		}
		if _, ok := fake.Started()[sfn.ExecutionName(d.Ref())]; !ok {
			t.Errorf("executions started %v, want %s", fake.Started(), sfn.ExecutionName(d.Ref()))
		}
		select {
		case res := <-done:
			if res.Status != "SUCCEEDED" || res.States[len(res.States)-1] != stack.DoneState {
				t.Fatalf("re-driven execution: %s through %v, want it to end at Done", res.Status, res.States)
			}
		case <-time.After(time.Minute):
			t.Fatal("the re-driven execution did not end")
		}
		if d := r.status(ref); d.Status != webhook.StatusSuccess || d.Run != 1 {
			t.Errorf("delivery: %+v, want success in run 1", d)
		}
		if ids := rcv.seen(); len(ids) != 2 || ids[1] != ref.MsgID {
			t.Errorf("receiver saw %v, want the same webhook-id twice", ids)
		}
		r.checkOwned(ref)
	})
}

// readSample loads one of the Lambda sample events in events/lambda.
func readSample(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(awstest.Root(t), "events", "lambda", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// faultProxy passes TCP connections to a server, or, while down, closes
// each one as soon as it is accepted.
type faultProxy struct {
	url  string
	down atomic.Bool
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &faultProxy{url: "http://" + ln.Addr().String()}
	addr := target[len("http://"):]
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	return p
}

type executionResult struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Cause  string          `json:"cause"`
	Output json.RawMessage `json:"output"`
	States []string        `json:"states"`
}

// execute runs the definition once with input through run.mjs.
func execute(t *testing.T, node, script string, def []byte, input webhook.Ref, invokeURL string) executionResult {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"definition": json.RawMessage(def), "input": input, "invokeUrl": invokeURL, "waitMs": 5})
	cmd := exec.Command(node, script)
	cmd.Dir = filepath.Dir(script)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run.mjs: %v\n%s", err, stderr.String())
	}
	var res executionResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("run.mjs output %q: %v", out, err)
	}
	return res
}
