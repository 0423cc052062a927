package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookstep/hookstep/internal/api"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/lambdafn"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/webhook"
)

// AWSOptions configure the Lambda footprint and cost parts.
type AWSOptions struct {
	// Root is the repository's top directory (the functions are built
	// from it).
	Root string
	// WorkDir receives the built bootstraps.
	WorkDir string
	// RIE is the AWS Lambda Runtime Interface Emulator binary.
	RIE string
	// Dynalite is the dynalite executable (infra/node_modules/.bin).
	Dynalite string
	// Definition is the state machine's definition (ASL JSON), as
	// printed by `go run ./cmd/definition` in infra/.
	Definition string
	// ColdStarts is how many cold starts of each function to time.
	ColdStarts int
	// Invocations is how many warm invocations of deliver (and of api)
	// to time.
	Invocations int
	// Log receives one line per step.
	Log io.Writer
}

// The functions' memory sizes, as infra/stack/functions.go sets them
// (infra is its own module; the numbers are repeated here).
var functionMemoryMB = map[string]int{"api": 512, "deliver": 256, "sweeper": 256}

// lambdaFullCoreMB is the memory at which Lambda allocates one full vCPU
// (AWS documentation: "at 1,769 MB, a function has the equivalent of one
// vCPU"); below it CPU is proportionally less.
const lambdaFullCoreMB = 1769

const (
	benchTable = "hookstep"
	benchToken = "hsk_bench-token"
	secretARN  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hookstep-admin-token"
	machineARN = "arn:aws:states:us-east-1:123456789012:stateMachine:hookstep-delivery"
)

// awsFixture is hookstep's AWS side on this machine: dynalite with the
// table, fakes of Step Functions (StartExecution) and Secrets Manager
// (GetSecretValue), receivers, and an in-process API and delivery engine
// on a metered DynamoDB client.
type awsFixture struct {
	dynalite *helper
	dbURL    string
	meter    *indexMeter
	store    *dynamo.Store
	disp     *recordingDispatcher
	svc      *delivery.Service
	api      http.Handler
	ok, fail *receiver
	fakes    *httptest.Server
	started  int // StartExecution calls the fake answered
	mu       sync.Mutex
}

// recordingDispatcher stands in for Step Functions in process: it counts
// the executions that would start.
type recordingDispatcher struct {
	mu   sync.Mutex
	refs []webhook.Ref
}

func (d *recordingDispatcher) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	d.mu.Lock()
	d.refs = append(d.refs, refs...)
	d.mu.Unlock()
	return refs, nil
}

func newAWSFixture(ctx context.Context, opts AWSOptions) (*awsFixture, error) {
	f := &awsFixture{disp: &recordingDispatcher{}}
	var err error
	if f.dynalite, f.dbURL, err = startDynalite(opts.Dynalite); err != nil {
		return nil, fmt.Errorf("dynalite: %w", err)
	}
	clientOpts := dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", ""),
	}
	plain := dynamodb.New(clientOpts)
	if err := dynamo.CreateTable(ctx, plain, benchTable); err != nil {
		f.close()
		return nil, err
	}
	f.meter = newIndexMeter(plain, dynamo.TableSchema(benchTable))
	clientOpts.APIOptions = append(clientOpts.APIOptions, f.meter.middleware)
	f.store = dynamo.New(dynamodb.New(clientOpts), benchTable, webhook.SystemClock{})

	if f.ok, err = startReceiver(Healthy, 1024); err != nil {
		f.close()
		return nil, err
	}
	if f.fail, err = startReceiver(Failing, 1024); err != nil {
		f.close()
		return nil, err
	}
	f.fakes = httptest.NewServer(http.HandlerFunc(f.serveFake))

	logger := slog.New(slog.DiscardHandler)
	f.svc = &delivery.Service{
		Store:      f.store,
		Dispatcher: f.disp,
		Sender:     sender.New(sender.Config{Timeout: 5 * time.Second, AllowPrivate: true}),
		Schedule:   webhook.DefaultSchedule,
		Clock:      webhook.SystemClock{},
		Logger:     logger,
	}
	f.api = api.New(api.Config{
		Store: f.store, Deliveries: f.svc, TokenHash: authtoken.Hash(benchToken), Logger: logger,
		AllowPrivateTargets: true,
	})
	return f, nil
}

func (f *awsFixture) close() {
	if f.fakes != nil {
		f.fakes.Close()
	}
	if f.ok != nil {
		f.ok.close()
	}
	if f.fail != nil {
		f.fail.close()
	}
	if f.dynalite != nil {
		f.dynalite.stop()
	}
}

// serveFake answers Step Functions' StartExecution and Secrets Manager's
// GetSecretValue, told apart by X-Amz-Target.
func (f *awsFixture) serveFake(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	switch r.Header.Get("X-Amz-Target") {
	case "AWSStepFunctions.StartExecution":
		f.mu.Lock()
		f.started++
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprintf(w, `{"executionArn":"%s:exec","startDate":%d}`, machineARN, time.Now().Unix())
	case "secretsmanager.GetSecretValue":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"ARN": secretARN, "Name": "hookstep-admin-token", "SecretString": benchToken})
	default:
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"UnknownOperationException"}`)
	}
}

// startedCount is how many StartExecution calls the fake has answered.
func (f *awsFixture) startedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started
}

// functionEnv is the environment the functions get under the emulator,
// as the stack sets it, with the endpoints pointing at this machine.
func (f *awsFixture) functionEnv(name string) []string {
	return []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_ENDPOINT_URL_DYNAMODB=" + f.dbURL,
		"AWS_ENDPOINT_URL_SFN=" + f.fakes.URL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + f.fakes.URL,
		// The api starts a message's first 25 runs itself: at the
		// fan-outs measured here it hands nothing to the sweeper.
		"AWS_ENDPOINT_URL_LAMBDA=" + f.fakes.URL,
		"HOOKSTEP_TABLE=" + benchTable, "HOOKSTEP_STATE_MACHINE_ARN=" + machineARN,
		"HOOKSTEP_DISPATCH_FUNCTION=hookstep-sweeper",
		"HOOKSTEP_ADMIN_TOKEN_SECRET_ARN=" + secretARN,
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS=true", "HOOKSTEP_REQUIRE_HTTPS=false", "HOOKSTEP_HTTP_TIMEOUT=5s",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", functionMemoryMB[name]),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60", "AWS_LAMBDA_FUNCTION_NAME=hookstep-" + name,
	}
}

// call sends one API request to the in-process API.
func (f *awsFixture) call(method, path string, body any, want int, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+benchToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	if rec.Code != want {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
	}
	if out != nil {
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	return nil
}

// app creates an app with one endpoint per URL and returns the app's id
// and the endpoints' ids.
func (f *awsFixture) app(name string, urls ...string) (string, []string, error) {
	var app struct{ ID string }
	if err := f.call("POST", "/api/v1/app", map[string]any{"name": name}, http.StatusCreated, &app); err != nil {
		return "", nil, err
	}
	var eps []string
	for _, u := range urls {
		var ep struct{ ID string }
		if err := f.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": u}, http.StatusCreated, &ep); err != nil {
			return "", nil, err
		}
		eps = append(eps, ep.ID)
	}
	return app.ID, eps, nil
}

// message posts a message (~1 KiB payload, like the local runs) and
// returns its id.
func (f *awsFixture) message(appID string, seq int) (string, error) {
	var m struct{ ID string }
	err := f.call("POST", "/api/v1/app/"+appID+"/msg?with_content=false", json.RawMessage(messageBody(seq, 1024)), http.StatusAccepted, &m)
	return m.ID, err
}

// Units is DynamoDB capacity, and what else one operation sent.
type Units struct {
	ReadUnits       float64        `json:"readUnits"`
	TableWriteUnits float64        `json:"tableWriteUnits"`
	IndexWriteUnits float64        `json:"indexWriteUnits"`
	StoredBytes     float64        `json:"storedBytes"`
	Requests        map[string]int `json:"requests"`
}

// WriteUnits is table and index write units together.
func (u Units) WriteUnits() float64 { return u.TableWriteUnits + u.IndexWriteUnits }

func (u Units) scaled(k float64) Units {
	return Units{ReadUnits: u.ReadUnits * k, TableWriteUnits: u.TableWriteUnits * k, IndexWriteUnits: u.IndexWriteUnits * k, StoredBytes: u.StoredBytes * k}
}

func (u Units) plus(o Units) Units {
	return Units{ReadUnits: u.ReadUnits + o.ReadUnits, TableWriteUnits: u.TableWriteUnits + o.TableWriteUnits,
		IndexWriteUnits: u.IndexWriteUnits + o.IndexWriteUnits, StoredBytes: u.StoredBytes + o.StoredBytes}
}

// measure runs fn and returns the DynamoDB capacity it consumed.
func (f *awsFixture) measure(fn func() error) (Units, error) {
	c0, m0 := f.store.Consumed(), f.meter.read()
	if err := fn(); err != nil {
		return Units{}, err
	}
	c1, m1 := f.store.Consumed(), f.meter.read()
	u := Units{
		ReadUnits:       c1.ReadUnits - c0.ReadUnits,
		TableWriteUnits: c1.WriteUnits - c0.WriteUnits,
		IndexWriteUnits: m1.IndexWriteUnits - m0.IndexWriteUnits,
		StoredBytes:     m1.StoredBytes - m0.StoredBytes,
		Requests:        map[string]int{},
	}
	for op, n := range m1.Calls {
		if d := n - m0.Calls[op]; d > 0 {
			u.Requests[op] = d
		}
	}
	return u, nil
}

// buildFunction builds functions/<name> as `make build` does, for goarch.
func buildFunction(ctx context.Context, root, name, goarch, out string) (int64, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, "./functions/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build %s for %s: %v\n%s", name, goarch, err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// RunAWS measures the Lambda functions and the cost model.
func RunAWS(ctx context.Context, opts AWSOptions) (*LambdaResult, *CostResult, error) {
	if opts.ColdStarts <= 0 {
		opts.ColdStarts = 5
	}
	if opts.Invocations <= 0 {
		opts.Invocations = 200
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	for what, path := range map[string]string{"the Lambda runtime emulator": opts.RIE, "dynalite": opts.Dynalite, "the state machine definition": opts.Definition} {
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (make bench installs and generates it)", what, err)
		}
	}
	def, err := os.ReadFile(opts.Definition)
	if err != nil {
		return nil, nil, err
	}
	paths, err := countTransitions(def)
	if err != nil {
		return nil, nil, err
	}

	lr := &LambdaResult{}
	bootstraps := map[string]string{}
	for _, name := range functionNames {
		fmt.Fprintf(opts.Log, "building %s (linux/arm64 release, linux/%s for the emulator)\n", name, runtime.GOARCH)
		fr := FunctionResult{Name: name, MemoryMB: functionMemoryMB[name], MeasuredArch: runtime.GOARCH}
		if fr.ReleaseBytes, err = buildFunction(ctx, opts.Root, name, "arm64", filepath.Join(opts.WorkDir, "release", name, "bootstrap")); err != nil {
			return nil, nil, err
		}
		bootstraps[name] = filepath.Join(opts.WorkDir, "lambda", name, "bootstrap")
		if fr.MeasuredBytes, err = buildFunction(ctx, opts.Root, name, runtime.GOARCH, bootstraps[name]); err != nil {
			return nil, nil, err
		}
		lr.Functions = append(lr.Functions, fr)
	}

	f, err := newAWSFixture(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	defer f.close()

	// The apps: fan-out 1 and 10 to healthy endpoints, and one to an
	// endpoint that always answers 500.
	app1, _, err := f.app("fan-out 1", f.ok.URL)
	if err != nil {
		return nil, nil, err
	}
	urls := make([]string, 10)
	for i := range urls {
		urls[i] = f.ok.URL
	}
	app10, _, err := f.app("fan-out 10", urls...)
	if err != nil {
		return nil, nil, err
	}
	appFail, _, err := f.app("failing", f.fail.URL)
	if err != nil {
		return nil, nil, err
	}

	fmt.Fprintln(opts.Log, "measuring DynamoDB capacity against dynalite")
	cost, err := f.measureCost(app1, app10, appFail)
	if err != nil {
		return nil, nil, err
	}
	cost.Transitions = paths

	for i := range lr.Functions {
		fr := &lr.Functions[i]
		fmt.Fprintf(opts.Log, "timing %d cold starts of %s under the emulator\n", opts.ColdStarts, fr.Name)
		inits, err := f.coldStarts(ctx, opts, fr.Name, bootstraps[fr.Name], app1)
		if err != nil {
			return nil, nil, err
		}
		fr.ColdStart = summarize(inits)
	}
	fmt.Fprintf(opts.Log, "timing %d warm invocations of deliver and of api\n", opts.Invocations)
	if err := f.warmDeliver(ctx, opts, lr, bootstraps["deliver"], app1, appFail); err != nil {
		return nil, nil, err
	}
	starts, err := f.warmAPI(ctx, opts, lr, bootstraps["api"], app1, app10)
	if err != nil {
		return nil, nil, err
	}
	cost.model(lr)
	cost.Quotas = modelQuotas(StepFunctionsQuotas, cost.Transitions, starts)
	return lr, cost, nil
}

// coldStarts starts the function under a fresh emulator n times and
// returns the init durations the emulator reported.
func (f *awsFixture) coldStarts(ctx context.Context, opts AWSOptions, name, bootstrap, appID string) ([]time.Duration, error) {
	var event any
	switch name {
	case "api":
		event = apiEvent("GET", "/api/v1/health", "")
	case "deliver":
		event = lambdafn.DeliverInput{Ref: webhook.Ref{AppID: appID, MsgID: "msg_none", EndpointID: "ep_none"}}
	default:
		event = events.EventBridgeEvent{Version: "0", DetailType: "Scheduled Event", Source: "aws.events", Detail: json.RawMessage("{}")}
	}
	var inits []time.Duration
	for range opts.ColdStarts {
		e, err := startEmulator(opts.RIE, bootstrap, f.functionEnv(name))
		if err != nil {
			return nil, err
		}
		rep, err := e.invoke(ctx, event, nil)
		e.stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		inits = append(inits, rep.Init)
	}
	return inits, nil
}

// warmDeliver times deliver's invocations, after a cold start: happy
// attempts, failed attempts and MarkFailed; and its CPU per happy
// attempt, read from /proc before and after.
func (f *awsFixture) warmDeliver(ctx context.Context, opts AWSOptions, lr *LambdaResult, bootstrap, app1, appFail string) error {
	n := opts.Invocations
	nFail := max(10, n/4)
	okRefs, err := f.messages(app1, n)
	if err != nil {
		return err
	}
	failRefs, err := f.messages(appFail, nFail)
	if err != nil {
		return err
	}
	e, err := startEmulator(opts.RIE, bootstrap, f.functionEnv("deliver"))
	if err != nil {
		return err
	}
	defer e.stop()
	var res delivery.Result
	if _, err := e.invoke(ctx, lambdafn.DeliverInput{Ref: okRefs[0]}, &res); err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	pid, err := e.runtimePid(bootstrap)
	if err != nil {
		return err
	}
	happy, cpu, logs, err := timeInvocations(ctx, e, pid, len(okRefs)-1, func(i int) any { return lambdafn.DeliverInput{Ref: okRefs[i+1]} }, delivery.Delivered)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	failed, failCPU, failLogs, err := timeInvocations(ctx, e, pid, len(failRefs), func(i int) any { return lambdafn.DeliverInput{Ref: failRefs[i]} }, delivery.Retry)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	marks, markCPU, markLogs, err := timeInvocations(ctx, e, pid, len(failRefs), func(i int) any {
		return lambdafn.DeliverInput{Ref: failRefs[i], Action: lambdafn.ActionFail}
	}, delivery.Stop)
	if err != nil {
		return fmt.Errorf("deliver (fail action): %w", err)
	}
	fr := lr.function("deliver")
	fr.Workloads = append(fr.Workloads,
		workload("happy attempt (200 from a loopback receiver)", happy, cpu, logs, fr.MemoryMB),
		workload("failed attempt (500 from a loopback receiver)", failed, failCPU, failLogs, fr.MemoryMB),
		workload("MarkFailed (action fail)", marks, markCPU, markLogs, fr.MemoryMB))
	lr.DeliverCPUPerInvocationMs = round(cpu.Seconds()*1000, 3)
	return nil
}

// warmAPI times api's invocations of POST .../msg for fan-out 1 and 10,
// and counts the StartExecution calls they make per delivery.
func (f *awsFixture) warmAPI(ctx context.Context, opts AWSOptions, lr *LambdaResult, bootstrap, app1, app10 string) (Starts, error) {
	var starts Starts
	e, err := startEmulator(opts.RIE, bootstrap, f.functionEnv("api"))
	if err != nil {
		return starts, err
	}
	defer e.stop()
	post := func(appID string) func(int) any {
		return func(i int) any {
			return apiEvent("POST", "/api/v1/app/"+appID+"/msg", string(messageBody(i, 1024)))
		}
	}
	if _, err := e.invoke(ctx, apiEvent("GET", "/api/v1/health", ""), nil); err != nil {
		return starts, fmt.Errorf("api: %w", err)
	}
	pid, err := e.runtimePid(bootstrap)
	if err != nil {
		return starts, err
	}
	n := max(10, opts.Invocations/2)
	n10 := max(10, n/4)
	s0 := f.startedCount()
	one, cpu1, logs1, err := timeInvocations(ctx, e, pid, n, post(app1), 202)
	if err != nil {
		return starts, fmt.Errorf("api: %w", err)
	}
	s1 := f.startedCount()
	ten, cpu10, logs10, err := timeInvocations(ctx, e, pid, n10, post(app10), 202)
	if err != nil {
		return starts, fmt.Errorf("api: %w", err)
	}
	s10 := f.startedCount()
	starts.FanOut1 = float64(s1-s0) / float64(n)
	starts.FanOut10 = float64(s10-s1) / float64(n10*10)
	fr := lr.function("api")
	fr.Workloads = append(fr.Workloads,
		workload("POST msg, fan-out 1", one, cpu1, logs1, fr.MemoryMB),
		workload("POST msg, fan-out 10", ten, cpu10, logs10, fr.MemoryMB))
	return starts, nil
}

// messages posts n messages to the app through the in-process API and
// returns the runs they started.
func (f *awsFixture) messages(appID string, n int) ([]webhook.Ref, error) {
	f.disp.mu.Lock()
	from := len(f.disp.refs)
	f.disp.mu.Unlock()
	for i := range n {
		if _, err := f.message(appID, i); err != nil {
			return nil, err
		}
	}
	f.disp.mu.Lock()
	defer f.disp.mu.Unlock()
	return append([]webhook.Ref(nil), f.disp.refs[from:]...), nil
}

// timeInvocations invokes the function n times and returns the
// emulator's durations, the CPU time the runtime process used per
// invocation, and the bytes it logged per invocation. want is the
// outcome (deliver) or status code (api) each invocation must give.
func timeInvocations(ctx context.Context, e *emulator, pid, n int, event func(int) any, want any) ([]time.Duration, time.Duration, float64, error) {
	cpu0, err := threadsCPU(pid)
	if err != nil {
		return nil, 0, 0, err
	}
	logs0 := e.logBytes()
	var durs []time.Duration
	for i := range n {
		var out map[string]any
		rep, err := e.invoke(ctx, event(i), &out)
		if err != nil {
			return nil, 0, 0, err
		}
		if err := checkOutcome(out, want); err != nil {
			return nil, 0, 0, err
		}
		durs = append(durs, rep.Duration)
	}
	cpu1, err := threadsCPU(pid)
	if err != nil {
		return nil, 0, 0, err
	}
	time.Sleep(50 * time.Millisecond) // the last log lines
	return durs, (cpu1 - cpu0) / time.Duration(n), float64(e.logBytes()-logs0) / float64(n), nil
}

func checkOutcome(out map[string]any, want any) error {
	switch want := want.(type) {
	case delivery.Outcome:
		if got := out["outcome"]; got != string(want) {
			return fmt.Errorf("outcome %v, want %s", got, want)
		}
	case int:
		if got, _ := out["statusCode"].(float64); int(got) != want {
			return fmt.Errorf("status %v, want %d: %v", out["statusCode"], want, out["body"])
		}
	}
	return nil
}

// apiEvent is an API Gateway REST proxy event, shaped like
// events/lambda/api-create-message.json.
func apiEvent(method, path, body string) events.APIGatewayProxyRequest {
	headers := map[string][]string{
		"Authorization": {"Bearer " + benchToken},
		"Content-Type":  {"application/json"},
		"Host":          {"abc123.execute-api.us-east-1.amazonaws.com"},
	}
	return events.APIGatewayProxyRequest{
		Resource: "/{proxy+}", Path: "/prod" + path, HTTPMethod: method,
		MultiValueHeaders: headers,
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage: "prod", Path: "/prod" + path, HTTPMethod: method, DomainName: "abc123.execute-api.us-east-1.amazonaws.com",
			Identity: events.APIGatewayRequestIdentity{SourceIP: "203.0.113.7"},
		},
		Body: body,
	}
}
