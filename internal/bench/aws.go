package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/lambdafn"
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

// buildFunction builds functions/<name> as `make build` does, for
// goarch, and returns the binary's size.
func buildFunction(ctx context.Context, root, name, goarch, out string) (int64, error) {
	if err := awstest.BuildFunction(ctx, root, name, goarch, out); err != nil {
		return 0, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// RunAWS measures the Lambda functions and the cost model of both
// dispatch modes.
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

	// The apps: fan-out 1 and 10 to healthy endpoints, one to an
	// endpoint that recovers on attempt 3 (healthy before and after), and
	// per mode one to an endpoint that always answers 500, failing
	// already.
	app1, err := f.app("fan-out 1", f.ok.URL)
	if err != nil {
		return nil, nil, err
	}
	app10, err := f.app("fan-out 10", slicesRepeat(f.ok.URL, 10)...)
	if err != nil {
		return nil, nil, err
	}
	appRecover, err := f.app("recovering", f.recovering.URL)
	if err != nil {
		return nil, nil, err
	}
	appFail := map[Mode]string{}
	for _, mode := range Modes {
		if appFail[mode], err = f.failingApp(ctx, "failing, "+string(mode)); err != nil {
			return nil, nil, err
		}
	}

	fmt.Fprintln(opts.Log, "measuring DynamoDB capacity against dynalite")
	cost, err := f.measureCost(ctx, app1, app10, appRecover, appFail)
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
	fmt.Fprintf(opts.Log, "timing %d warm invocations of deliver and of api in each mode\n", opts.Invocations)
	if err := f.warmDeliver(ctx, opts, lr, bootstraps["deliver"], app1, appFail[ModeStepFunctions]); err != nil {
		return nil, nil, err
	}
	if err := f.warmDeliverQueue(ctx, opts, lr, bootstraps["deliver"], app1, appFail[ModeQueue], cost.Calls[ModeQueue]); err != nil {
		return nil, nil, err
	}
	for _, mode := range Modes {
		if cost.Calls[mode].APIDispatch, err = f.warmAPI(ctx, opts, lr, bootstraps["api"], mode, app1, app10); err != nil {
			return nil, nil, err
		}
	}
	if err := cost.model(lr); err != nil {
		return nil, nil, err
	}
	usages := map[Mode]pathUsages{}
	for _, mode := range Modes {
		usages[mode] = pathUsages{}
		for _, f := range []fate{fateHappy, fateRecovers, fateExhausted} {
			for _, fanOut := range QuotaFanOuts {
				if usages[mode][pathShape{f, fanOut}], err = cost.usage(lr, mode, APIRest, f, fanOut); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	cost.Quotas = modelQuotas(RegionClasses, usages)
	return lr, cost, nil
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// failingApp creates an app with one endpoint that always answers 500,
// and makes one attempt to it, so that its endpoint is failing already
// when a delivery is measured: the change of health is the endpoint's,
// once, not every delivery's.
func (f *awsFixture) failingApp(ctx context.Context, name string) (string, error) {
	appID, err := f.app(name, f.fail.URL)
	if err != nil {
		return "", err
	}
	runs, err := f.messages(ModeStepFunctions, appID, 1)
	if err != nil {
		return "", err
	}
	res, err := f.modes[ModeStepFunctions].svc.Attempt(ctx, runs[0].Ref)
	if err == nil && res.Outcome != delivery.Retry {
		err = fmt.Errorf("failing endpoint: outcome %s", res.Outcome)
	}
	return appID, err
}

// coldStarts starts the function under a fresh emulator n times and
// returns the init durations the emulator reported.
func (f *awsFixture) coldStarts(ctx context.Context, opts AWSOptions, name, bootstrap, appID string) ([]time.Duration, error) {
	var event any
	switch name {
	case "api":
		event = apiEvent(APIRest, "GET", "/api/v1/health", "")
	case "deliver":
		event = lambdafn.DeliverInput{Ref: webhook.Ref{AppID: appID, MsgID: "msg_none", EndpointID: "ep_none"}}
	default:
		event = events.EventBridgeEvent{Version: "0", DetailType: "Scheduled Event", Source: "aws.events", Detail: json.RawMessage("{}")}
	}
	var inits []time.Duration
	for range opts.ColdStarts {
		e, err := startEmulator(opts.RIE, bootstrap, f.functionEnv(name, ModeStepFunctions))
		if err != nil {
			return nil, err
		}
		rep, err := e.invoke(ctx, event, nil)
		e.Stop()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		inits = append(inits, rep.Init)
	}
	return inits, nil
}

// warmDeliver times stepfunctions mode's deliver invocations, after a
// cold start: happy attempts, failed attempts and MarkFailed; the first
// and last attempts of recovering deliveries, whose endpoints' health
// they write (the second is a failed attempt like the others, made
// untimed); and its CPU per happy attempt, read from /proc before and
// after.
func (f *awsFixture) warmDeliver(ctx context.Context, opts AWSOptions, lr *LambdaResult, bootstrap, app1, appFail string) error {
	n := opts.Invocations
	nFail, nRecover := max(10, n/4), max(5, n/8)
	okRuns, err := f.messages(ModeStepFunctions, app1, n)
	if err != nil {
		return err
	}
	failRuns, err := f.messages(ModeStepFunctions, appFail, nFail)
	if err != nil {
		return err
	}
	recoverRuns, err := f.recoveringRuns(ModeStepFunctions, nRecover)
	if err != nil {
		return err
	}
	e, pid, err := f.warmEmulator(ctx, opts, bootstrap, "deliver", ModeStepFunctions, lambdafn.DeliverInput{Ref: okRuns[0].Ref})
	if err != nil {
		return err
	}
	defer e.Stop()
	// The recovering deliveries' last attempt is due after the
	// schedule's first wait that is not 0 s, from their second attempt.
	wait, _ := webhook.DefaultSchedule.Next(recoversOnAttempt - 1)
	var due time.Time
	fr := lr.function("deliver")
	for _, t := range []struct {
		name   string // "": untimed
		runs   []sentRun
		action string
		want   delivery.Outcome
	}{
		{wHappy, okRuns[1:], "", delivery.Delivered},
		{wRecoverFail, recoverRuns, "", delivery.Retry},
		// The second attempt: a failed attempt to an endpoint failing
		// already, as wFailed's.
		{"", recoverRuns, "", delivery.Retry},
		{wFailed, failRuns, "", delivery.Retry},
		{wMark, failRuns, lambdafn.ActionFail, delivery.Stop},
		{wRecovered, recoverRuns, "", delivery.Delivered},
	} {
		if t.name == wRecovered {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Until(due)):
			}
		}
		event := func(i int) any { return lambdafn.DeliverInput{Ref: t.runs[i].Ref, Action: t.action} }
		durs, cpu, logs, err := timeInvocations(ctx, e, pid, len(t.runs), event, t.want)
		if err != nil {
			return fmt.Errorf("deliver, %s: %w", cmp.Or(t.name, "a recovering delivery's second attempt"), err)
		}
		switch t.name {
		case "":
			due = time.Now().Add(wait)
			continue
		case wHappy:
			lr.DeliverCPUPerInvocationMs = round(cpu.Seconds()*1000, 3)
		}
		fr.Workloads = append(fr.Workloads, workload(t.name, durs, cpu, logs, fr.MemoryMB))
	}
	return nil
}

// recoveringRuns posts a message through a mode's API to each of n new
// apps, each with its own endpoint at the recovering receiver, and
// returns their runs: every run's first attempt finds its endpoint
// healthy and its last finds it failing, as a receiver's blip does.
func (f *awsFixture) recoveringRuns(mode Mode, n int) ([]sentRun, error) {
	var runs []sentRun
	for i := range n {
		appID, err := f.app(fmt.Sprintf("recovering %d, %s", i, mode), f.recovering.URL)
		if err != nil {
			return nil, err
		}
		r, err := f.messages(mode, appID, 1)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r...)
	}
	return runs, nil
}

// warmDeliverQueue times queue mode's deliver invocations: SQS events of
// 1 and of 10 happy records, of 10 failing records (each makes the first
// attempt and the immediate retry, then starts an execution), of 10
// recovering records (the same, each on an endpoint healthy until then),
// and the execution's first Deliver of the failing ones, which finds the
// next attempt not due. The executions' later attempts are the same
// invocations as stepfunctions mode's (a Deliver step: Attempt), timed
// there. The records are the messages the in-process API sent, so they
// name real runs in dynalite. It checks the executions deliver starts
// against calls, counted in process.
func (f *awsFixture) warmDeliverQueue(ctx context.Context, opts AWSOptions, lr *LambdaResult, bootstrap, app1, appFail string, calls *Calls) error {
	n := opts.Invocations
	n1, n10, nFail := max(10, n/4), max(5, n/20), max(3, n/40)
	okRuns, err := f.messages(ModeQueue, app1, 1+n1+n10*queueBatch)
	if err != nil {
		return err
	}
	failRuns, err := f.messages(ModeQueue, appFail, nFail*queueBatch)
	if err != nil {
		return err
	}
	recoverRuns, err := f.recoveringRuns(ModeQueue, nFail*queueBatch)
	if err != nil {
		return err
	}
	e, pid, err := f.warmEmulator(ctx, opts, bootstrap, "deliver", ModeQueue, sqsRecords(okRuns[:1]))
	if err != nil {
		return err
	}
	defer e.Stop()
	batches := func(runs []sentRun, size int) func(int) any {
		return func(i int) any { return sqsRecords(runs[i*size : (i+1)*size]) }
	}
	later0 := f.callCount(targetChangeVisibility)
	fr := lr.function("deliver")
	timed := []struct {
		name      string
		n         int
		event     func(int) any
		want      any
		perRecord float64 // executions each record must start
		records   int
	}{
		{wSQS1, n1, batches(okRuns[1:1+n1], 1), sqsBatch{}, calls.ExecutionsHappy, n1},
		{wSQS10, n10, batches(okRuns[1+n1:], queueBatch), sqsBatch{}, calls.ExecutionsHappy, n10 * queueBatch},
		{wSQS10Fail, nFail, batches(failRuns, queueBatch), sqsBatch{}, calls.ExecutionsFailing, nFail * queueBatch},
		{wSQS10Recover, nFail, batches(recoverRuns, queueBatch), sqsBatch{}, calls.ExecutionsRecovers, nFail * queueBatch},
		// Right after: the first retry is 5 s away.
		{wNotDue, len(failRuns), func(i int) any { return lambdafn.DeliverInput{Ref: failRuns[i].Ref} }, notDue{}, 0, len(failRuns)},
	}
	for _, t := range timed {
		s0 := f.callCount(targetStartExecution)
		durs, cpu, logs, err := timeInvocations(ctx, e, pid, t.n, t.event, t.want)
		if err != nil {
			return fmt.Errorf("deliver, %s: %w", t.name, err)
		}
		if got, want := f.callCount(targetStartExecution)-s0, int(t.perRecord*float64(t.records)); got != want {
			return fmt.Errorf("deliver, %s: %d executions started under the emulator, %d in process", t.name, got, want)
		}
		fr.Workloads = append(fr.Workloads, workload(t.name, durs, cpu, logs, fr.MemoryMB))
	}
	if n := f.callCount(targetChangeVisibility) - later0; n > 0 {
		return fmt.Errorf("deliver: %d records not handled (ChangeMessageVisibility)", n)
	}
	return nil
}

// warmEmulator starts a function under the emulator in a mode, invokes
// it once with first (the cold start) and returns it with the pid of its
// runtime.
func (f *awsFixture) warmEmulator(ctx context.Context, opts AWSOptions, bootstrap, name string, mode Mode, first any) (*emulator, int, error) {
	e, err := startEmulator(opts.RIE, bootstrap, f.functionEnv(name, mode))
	if err != nil {
		return nil, 0, err
	}
	if _, err := e.invoke(ctx, first, nil); err != nil {
		e.Stop()
		return nil, 0, fmt.Errorf("%s (%s): %w", name, mode, err)
	}
	pid, err := e.runtimePid(bootstrap)
	if err != nil {
		e.Stop()
		return nil, 0, err
	}
	return e, pid, nil
}

// warmAPI times the api's invocations of POST .../msg in a mode, at
// fan-out 1 and 10, behind each API kind, and counts the calls it makes
// to dispatch per delivery: StartExecution (stepfunctions) or
// SendMessageBatch (queue).
func (f *awsFixture) warmAPI(ctx context.Context, opts AWSOptions, lr *LambdaResult, bootstrap string, mode Mode, app1, app10 string) (PerFanOut, error) {
	var calls PerFanOut
	e, pid, err := f.warmEmulator(ctx, opts, bootstrap, "api", mode, apiEvent(APIRest, "GET", "/api/v1/health", ""))
	if err != nil {
		return calls, err
	}
	defer e.Stop()
	target := targetStartExecution
	if mode == ModeQueue {
		target = targetSendMessageBatch
	}
	fr := lr.function("api")
	n := max(10, opts.Invocations/2)
	for _, kind := range APIKinds {
		for _, t := range []struct {
			app    string
			fanOut int
			n      int
		}{{app1, 1, n}, {app10, 10, max(10, n/4)}} {
			post := func(i int) any {
				return apiEvent(kind, "POST", "/api/v1/app/"+t.app+"/msg", string(messageBody(i, 1024)))
			}
			c0 := f.callCount(target)
			durs, cpu, logs, err := timeInvocations(ctx, e, pid, t.n, post, 202)
			if err != nil {
				return calls, fmt.Errorf("api (%s, %s API): %w", mode, kind, err)
			}
			perDelivery := float64(f.callCount(target)-c0) / float64(t.n*t.fanOut)
			if kind == APIRest && t.fanOut == 1 {
				calls.FanOut1 = perDelivery
			} else if kind == APIRest {
				calls.FanOut10 = perDelivery
			}
			fr.Workloads = append(fr.Workloads, workload(apiWorkloadName(mode, kind, t.fanOut), durs, cpu, logs, fr.MemoryMB))
		}
	}
	return calls, nil
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

// sqsBatch is the answer every SQS event must get: no record failed.
type sqsBatch struct{}

// notDue is the answer of an execution's Deliver that finds the next
// attempt not due: retry, and when to resume.
type notDue struct{}

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
	case sqsBatch:
		if failed, ok := out["batchItemFailures"].([]any); !ok || len(failed) > 0 {
			return fmt.Errorf("batch item failures %v, want none", out["batchItemFailures"])
		}
	case notDue:
		if out["outcome"] != string(delivery.Retry) || out["resumeAt"] == nil {
			return fmt.Errorf("answer %v, want retry with resumeAt (the next attempt not due)", out)
		}
	}
	return nil
}

// apiEvent is an API Gateway proxy event of the kind: a REST API's,
// shaped like events/lambda/api-create-message.json, or an HTTP API's
// (payload 2.0), like events/lambda/api-v2-create-message.json. A POST
// carries a new Idempotency-Key, as the Svix SDKs send.
func apiEvent(kind APIKind, method, path, body string) any {
	const host = "abc123.execute-api.us-east-1.amazonaws.com"
	headers := map[string]string{"Authorization": "Bearer " + benchToken, "Content-Type": "application/json", "Host": host}
	if method == "POST" {
		headers["Idempotency-Key"] = idempotencyKey()
	}
	if kind == APIHTTP {
		lower := map[string]string{}
		for k, v := range headers {
			lower[strings.ToLower(k)] = v
		}
		ev := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "$default", RawPath: path, Headers: lower, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey: "$default", Stage: "$default", DomainName: host, APIID: "abc123", RequestID: webhook.NewID("req_"),
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7"},
			},
		}
		return ev
	}
	multi := map[string][]string{}
	for k, v := range headers {
		multi[k] = []string{v}
	}
	return events.APIGatewayProxyRequest{
		Resource: "/{proxy+}", Path: "/prod" + path, HTTPMethod: method,
		MultiValueHeaders: multi,
		RequestContext: events.APIGatewayProxyRequestContext{
			Stage: "prod", Path: "/prod" + path, HTTPMethod: method, DomainName: host,
			Identity: events.APIGatewayRequestIdentity{SourceIP: "203.0.113.7"},
		},
		Body: body,
	}
}
