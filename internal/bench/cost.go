package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// APIKind is the kind of API Gateway API in front of the api function (a
// stack prop).
type APIKind string

// The API kinds.
const (
	APIRest APIKind = "rest"
	APIHTTP APIKind = "http"
)

// APIKinds are the API kinds, in the order the report shows them.
var APIKinds = []APIKind{APIRest, APIHTTP}

// Deployment is what the cost of a delivery depends on beyond the code:
// the stack's dispatch mode, API kind and payload retention.
type Deployment struct {
	Mode          Mode    `json:"mode"`
	API           APIKind `json:"api"`
	RetentionDays int     `json:"retentionDays"`
}

func (d Deployment) String() string {
	return fmt.Sprintf("%s %s %dd", d.Mode, d.API, d.RetentionDays)
}

// The retentions priced: the stack's default now, and before.
const (
	DefaultRetentionDays = 30
	OldRetentionDays     = 90
)

// Deployments are the deployments the report sets side by side: both
// modes with both API kinds at the default retention, and the REST API at
// the old default of 90 days.
var Deployments = []Deployment{
	{ModeStepFunctions, APIRest, DefaultRetentionDays},
	{ModeStepFunctions, APIHTTP, DefaultRetentionDays},
	{ModeQueue, APIRest, DefaultRetentionDays},
	{ModeQueue, APIHTTP, DefaultRetentionDays},
	{ModeQueue, APIRest, OldRetentionDays},
	{ModeStepFunctions, APIRest, OldRetentionDays},
}

// The paths priced for each deployment.
const (
	PathHappy1     = "happy, fan-out 1"
	PathHappy10    = "happy, fan-out 10"
	PathExhausted1 = "exhausted, fan-out 1"
)

// PathNames are the paths, in the order the report shows them.
var PathNames = []string{PathHappy1, PathHappy10, PathExhausted1}

// queueBatch is the SQS event source mapping's batch size (the stack's
// default QueueBatchSize): at load every batch is full.
const queueBatch = 10

// platformLogBytes is what Lambda itself logs per invocation (START, END
// and REPORT lines), about 260 bytes.
const platformLogBytes = 260

// accessLogBytes is API Gateway's access log line per request (JSON with
// the standard fields, as the stack configures both API kinds), about 250
// bytes: an estimate, not measured here.
const accessLogBytes = 250

// daysPerMonth turns retention days into GB-months.
const daysPerMonth = 30.44

// StepUnits are the DynamoDB capacity of each step of a mode's paths,
// measured against dynalite.
type StepUnits struct {
	// APIFanOut1 and APIFanOut10 are one POST .../msg with an
	// Idempotency-Key (per message, not per delivery).
	APIFanOut1  Units `json:"apiCreateMessageFanOut1"`
	APIFanOut10 Units `json:"apiCreateMessageFanOut10"`
	// DeliverHappy is a delivery's first attempt, which succeeds
	// (Attempt; AttemptQueued in queue mode). DeliverExhausted is every
	// attempt of one that fails them all, then Fail: in queue mode
	// AttemptQueued (the attempts made at once), the execution's
	// not-due Attempt, the later attempts and Fail.
	DeliverHappy     Units `json:"deliverHappy"`
	DeliverExhausted Units `json:"deliverExhausted"`
}

func (s *StepUnits) api(fanOut int) Units { return atFanOut(fanOut, s.APIFanOut1, s.APIFanOut10) }

// PerFanOut is a count per delivery at fan-out 1 and 10.
type PerFanOut struct {
	FanOut1  float64 `json:"fanOut1"`
	FanOut10 float64 `json:"fanOut10"`
}

func (p PerFanOut) at(fanOut int) float64 { return atFanOut(fanOut, p.FanOut1, p.FanOut10) }

// atFanOut is one at fan-out 1, ten at fan-out 10: the two fan-outs
// measured.
func atFanOut[T any](fanOut int, one, ten T) T {
	if fanOut == 1 {
		return one
	}
	return ten
}

// Calls are the calls to Step Functions and SQS a mode makes per
// delivery, counted.
type Calls struct {
	// APIDispatch is the api function's StartExecution (stepfunctions)
	// or SendMessageBatch (queue) calls per delivery, under the
	// emulator.
	APIDispatch PerFanOut `json:"apiDispatchCallsPerDelivery"`
	// ExecutionsHappy and ExecutionsFailing are the executions started
	// per delivery whose first attempt succeeds, and per delivery whose
	// attempts all fail, after the api's (queue mode's deliver: in
	// process and under the emulator, which agreed).
	ExecutionsHappy   float64 `json:"executionsPerHappyDelivery"`
	ExecutionsFailing float64 `json:"executionsPerFailingDelivery"`
}

// CostResult is the AWS cost model.
type CostResult struct {
	Prices Prices `json:"prices"`
	// DynamoDB is the capacity measured against dynalite for each step,
	// by mode.
	DynamoDB    map[Mode]*StepUnits  `json:"dynamodb"`
	Calls       map[Mode]*Calls      `json:"calls"`
	Transitions map[Mode]Transitions `json:"stateMachine"`
	Paths       []PathCost           `json:"paths"`
	// SideBySide is the $ per million deliveries of each path (rows) in
	// each of Deployments (columns).
	SideBySide SideBySide `json:"sideBySide"`
	Notes      []string   `json:"notes"`
	// Quotas is the throughput the default account quotas allow.
	Quotas *QuotaModel `json:"quotas,omitempty"`
}

// SideBySide is the report's comparison table.
type SideBySide struct {
	Deployments []Deployment `json:"deployments"`
	Rows        []struct {
		Path            string    `json:"path"`
		TotalPerMillion []float64 `json:"totalPerMillion"`
	} `json:"rows"`
}

// Usage is what one delivery uses, on average, of what AWS prices or
// limits.
type Usage struct {
	APIRequests       float64 `json:"apiGatewayRequests"`
	LambdaInvocations float64 `json:"lambdaInvocations"`
	LambdaGBSeconds   float64 `json:"lambdaGBSeconds"` // billed: each invocation rounded up to 1 ms
	// LambdaSeconds is the invocations' measured time (concurrency),
	// and ReceiverWaits the receiver round trips they wait for besides,
	// shared by a batch's records; the quota model adds an assumed
	// receiver latency per wait.
	LambdaSeconds float64 `json:"lambdaSeconds"`
	ReceiverWaits float64 `json:"receiverWaits"`
	// InFlightSeconds and InFlightWaits are how long the delivery's SQS
	// message is in flight (received, not yet deleted): its batch's
	// invocation, and the receiver round trips it waits for.
	InFlightSeconds  float64 `json:"sqsInFlightSeconds,omitempty"`
	InFlightWaits    float64 `json:"sqsInFlightWaits,omitempty"`
	StateTransitions float64 `json:"stateTransitions"`
	Executions       float64 `json:"startExecutions"`
	SQSRequests      float64 `json:"sqsRequests"`
	DynamoDB         Units   `json:"dynamodb"`
	LogBytes         float64 `json:"logBytes"`
}

// plusScaled is u plus k times o.
func (u Usage) plusScaled(o Usage, k float64) Usage {
	return Usage{
		APIRequests:       u.APIRequests + k*o.APIRequests,
		LambdaInvocations: u.LambdaInvocations + k*o.LambdaInvocations,
		LambdaGBSeconds:   u.LambdaGBSeconds + k*o.LambdaGBSeconds,
		LambdaSeconds:     u.LambdaSeconds + k*o.LambdaSeconds,
		ReceiverWaits:     u.ReceiverWaits + k*o.ReceiverWaits,
		InFlightSeconds:   u.InFlightSeconds + k*o.InFlightSeconds,
		InFlightWaits:     u.InFlightWaits + k*o.InFlightWaits,
		StateTransitions:  u.StateTransitions + k*o.StateTransitions,
		Executions:        u.Executions + k*o.Executions,
		SQSRequests:       u.SQSRequests + k*o.SQSRequests,
		DynamoDB:          u.DynamoDB.plusScaled(o.DynamoDB, k),
		LogBytes:          u.LogBytes + k*o.LogBytes,
	}
}

// mix is the average delivery when a share of them fail like failing
// and the rest go like u.
func (u Usage) mix(failing Usage, share float64) Usage {
	return Usage{}.plusScaled(u, 1-share).plusScaled(failing, share)
}

// PathCost is the cost of one delivery along a path in a deployment.
type PathCost struct {
	Name string `json:"name"`
	Deployment
	FanOut int   `json:"fanOut"`
	Usage  Usage `json:"perDelivery"`
	// DollarsPerMillion is the cost of a million such deliveries, by
	// service, and in total.
	DollarsPerMillion map[string]float64 `json:"dollarsPerMillion"`
	TotalPerMillion   float64            `json:"totalPerMillion"`
}

// The deliver function's workloads the model prices, timed under the
// emulator (lambda.go, aws.go).
const (
	wHappy      = "happy attempt (200 from a loopback receiver)"
	wFailed     = "failed attempt (500 from a loopback receiver)"
	wMark       = "MarkFailed (action fail)"
	wSQS1       = "queue: SQS batch of 1, happy"
	wSQS10      = "queue: SQS batch of 10, happy"
	wSQS10Fail  = "queue: SQS batch of 10 failing (2 attempts + StartExecution each)"
	wNotDue     = "queue: execution's first Deliver, not due"
	apiWorkload = "POST msg, fan-out %d, %s API, %s"
)

// apiWorkloadName is the api function's workload for a POST .../msg.
func apiWorkloadName(mode Mode, kind APIKind, fanOut int) string {
	return fmt.Sprintf(apiWorkload, fanOut, kind, mode)
}

// measureCost measures, in each mode, the DynamoDB capacity of the API's
// create message (fan-out 1 and 10) and of the deliver function's work
// for a happy delivery and for one that exhausts the schedule, and counts
// the executions deliver starts. appFail's endpoints (by mode) are
// failing already, so that no path pays for the endpoint's change of
// health.
func (f *awsFixture) measureCost(ctx context.Context, app1, app10 string, appFail map[Mode]string) (*CostResult, error) {
	c := &CostResult{Prices: PublishedPrices, DynamoDB: map[Mode]*StepUnits{}, Calls: map[Mode]*Calls{}}
	seq := 0
	for _, mode := range Modes {
		su, calls := &StepUnits{}, &Calls{}
		c.DynamoDB[mode], c.Calls[mode] = su, calls
		post := func(appID string) func() error {
			return func() error { seq++; return f.message(mode, appID, seq) }
		}
		var err error
		if su.APIFanOut1, err = f.measure(post(app1)); err != nil {
			return nil, err
		}
		if su.APIFanOut10, err = f.measure(post(app10)); err != nil {
			return nil, err
		}
		if su.DeliverHappy, calls.ExecutionsHappy, err = f.measureDelivery(ctx, mode, app1, f.attemptHappy); err != nil {
			return nil, err
		}
		if su.DeliverExhausted, calls.ExecutionsFailing, err = f.measureDelivery(ctx, mode, appFail[mode], f.exhaust); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// measureDelivery posts a message to the app through a mode's API and
// measures the capacity of deliver's work on its run, and the executions
// that work starts.
func (f *awsFixture) measureDelivery(ctx context.Context, mode Mode, appID string, work func(context.Context, Mode, webhook.Ref) (int, error)) (Units, float64, error) {
	runs, err := f.messages(mode, appID, 1)
	if err != nil {
		return Units{}, 0, err
	}
	var executions int
	u, err := f.measure(func() error {
		executions, err = work(ctx, mode, runs[0].Ref)
		return err
	})
	return u, float64(executions), err
}

// attemptHappy makes a delivery's first attempt as the mode does, which
// must deliver, and returns the executions it started.
func (f *awsFixture) attemptHappy(ctx context.Context, mode Mode, ref webhook.Ref) (int, error) {
	svc := f.modes[mode].svc
	_, _, x0 := f.rec.counts()
	var res delivery.Result
	var err error
	if mode == ModeQueue {
		res, err = svc.AttemptQueued(ctx, ref)
	} else {
		res, err = svc.Attempt(ctx, ref)
	}
	if err == nil && res.Outcome != delivery.Delivered {
		err = fmt.Errorf("%s: happy attempt: outcome %s", mode, res.Outcome)
	}
	_, _, x1 := f.rec.counts()
	return x1 - x0, err
}

// exhaust makes every attempt of a failing delivery as the mode does, the
// clock moved to each retry's due time, then Fail, and returns the
// executions started on the way. In queue mode that is AttemptQueued
// (the attempts made at once, and the execution it starts), then the
// execution's first Deliver, which must find the next attempt not due,
// then the rest.
func (f *awsFixture) exhaust(ctx context.Context, mode Mode, ref webhook.Ref) (int, error) {
	defer f.clock.reset()
	svc := f.modes[mode].svc
	_, _, x0 := f.rec.counts()
	next := 1
	if mode == ModeQueue {
		res, err := svc.AttemptQueued(ctx, ref)
		if err != nil {
			return 0, err
		}
		if res.Outcome != delivery.Retry || res.Final || res.Attempt < 1 {
			return 0, fmt.Errorf("queue: failing AttemptQueued: %+v", res)
		}
		entry, err := svc.Attempt(ctx, ref)
		if err != nil {
			return 0, err
		}
		if entry.ResumeAt == nil || entry.Attempt != res.Attempt {
			return 0, fmt.Errorf("queue: the execution's first Deliver made an attempt (%+v); want it not due after attempt %d", entry, res.Attempt)
		}
		f.clock.advanceTo(entry.NextAttemptAt)
		next = res.Attempt + 1
	}
	last := webhook.DefaultSchedule.MaxAttempts()
	for n := next; n <= last; n++ {
		res, err := svc.Attempt(ctx, ref)
		if err != nil {
			return 0, err
		}
		if res.Outcome != delivery.Retry || res.Attempt != n || res.Final != (n == last) {
			return 0, fmt.Errorf("%s: failing attempt %d: %+v", mode, n, res)
		}
		f.clock.advanceTo(res.NextAttemptAt)
	}
	if err := svc.Fail(ctx, ref); err != nil {
		return 0, err
	}
	_, _, x1 := f.rec.counts()
	return x1 - x0, nil
}

// invocations is the usage of n invocations of a function's workload,
// shared by records deliveries (an SQS batch's).
func invocations(lr *LambdaResult, fn, workload string, n, records float64) (Usage, error) {
	w, ok := lr.workload(fn, workload)
	if !ok {
		return Usage{}, fmt.Errorf("cost: %s's workload %q was not timed", fn, workload)
	}
	gb := float64(functionMemoryMB[fn]) / 1024
	return Usage{
		LambdaInvocations: n / records,
		// Lambda bills each invocation's duration in 1 ms steps.
		LambdaGBSeconds: n * math.Ceil(w.EstimatedAWSMs) / 1000 * gb / records,
		LambdaSeconds:   n * w.EstimatedAWSMs / 1000 / records,
		LogBytes:        n * (w.LogBytes + platformLogBytes) / records,
	}, nil
}

// apiUsage is a delivery's share of its message's POST .../msg.
func (c *CostResult) apiUsage(lr *LambdaResult, mode Mode, kind APIKind, fanOut int) (Usage, error) {
	k := 1 / float64(fanOut)
	u, err := invocations(lr, "api", apiWorkloadName(mode, kind, fanOut), 1, float64(fanOut))
	if err != nil {
		return Usage{}, err
	}
	u.APIRequests = k
	u.LogBytes += accessLogBytes * k
	u.DynamoDB = c.DynamoDB[mode].api(fanOut).scaled(k)
	if mode == ModeQueue {
		u.SQSRequests = c.Calls[mode].APIDispatch.at(fanOut)
	} else {
		u.Executions = c.Calls[mode].APIDispatch.at(fanOut)
	}
	return u, nil
}

// sqsConsumer is what the event source mapping adds per delivery: its
// ReceiveMessage and DeleteMessageBatch per full batch.
func sqsConsumer() Usage {
	return Usage{SQSRequests: 2.0 / queueBatch}
}

// deliverUsage is the deliver side of a delivery along a path: happy, or
// every attempt failing.
func (c *CostResult) deliverUsage(lr *LambdaResult, mode Mode, exhausted bool) (Usage, error) {
	tr, calls, units := c.Transitions[mode], c.Calls[mode], c.DynamoDB[mode]
	var parts []Usage
	add := func(fn, workload string, n, records float64) error {
		u, err := invocations(lr, fn, workload, n, records)
		parts = append(parts, u)
		return err
	}
	var u Usage
	switch {
	case mode == ModeStepFunctions && !exhausted:
		err := add("deliver", wHappy, float64(tr.Happy.LambdaInvocations), 1)
		if err != nil {
			return Usage{}, err
		}
		u = Usage{ReceiverWaits: 1, StateTransitions: float64(tr.Happy.Transitions), DynamoDB: units.DeliverHappy}
	case mode == ModeStepFunctions:
		attempts := float64(tr.Exhausted.LambdaInvocations - 1) // and MarkFailed
		if err := firstErr(add("deliver", wFailed, attempts, 1), add("deliver", wMark, 1, 1)); err != nil {
			return Usage{}, err
		}
		u = Usage{ReceiverWaits: attempts, StateTransitions: float64(tr.Exhausted.Transitions), DynamoDB: units.DeliverExhausted}
	case !exhausted:
		if err := add("deliver", wSQS10, 1, queueBatch); err != nil {
			return Usage{}, err
		}
		u = sqsConsumer()
		u.ReceiverWaits, u.InFlightWaits = 1.0/queueBatch, 1
		u.InFlightSeconds = parts[0].LambdaSeconds * queueBatch
		u.Executions = calls.ExecutionsHappy
		u.StateTransitions = float64(tr.Happy.Transitions)
		u.DynamoDB = units.DeliverHappy
	default:
		// The SQS message's invocation, then the execution: its
		// not-due entry, the later attempts and MarkFailed.
		attempts := float64(tr.Exhausted.LambdaInvocations - 2)
		err := firstErr(add("deliver", wSQS10Fail, 1, queueBatch),
			add("deliver", wNotDue, calls.ExecutionsFailing, 1),
			add("deliver", wFailed, attempts*calls.ExecutionsFailing, 1),
			add("deliver", wMark, calls.ExecutionsFailing, 1))
		if err != nil {
			return Usage{}, err
		}
		u = sqsConsumer()
		queued := float64(tr.QueuedAttempts)
		u.ReceiverWaits = queued/queueBatch + attempts*calls.ExecutionsFailing
		u.InFlightSeconds, u.InFlightWaits = parts[0].LambdaSeconds*queueBatch, queued
		u.Executions = calls.ExecutionsFailing
		u.StateTransitions = calls.ExecutionsFailing * float64(tr.Exhausted.Transitions)
		u.DynamoDB = units.DeliverExhausted
	}
	for _, p := range parts {
		u = u.plusScaled(p, 1)
	}
	return u, nil
}

// firstErr is the first of errs that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// pathUsage is a delivery's usage along a path, with the api behind kind.
func (c *CostResult) pathUsage(lr *LambdaResult, mode Mode, kind APIKind, path string) (Usage, int, error) {
	fanOut := 1
	if path == PathHappy10 {
		fanOut = 10
	}
	api, err := c.apiUsage(lr, mode, kind, fanOut)
	if err != nil {
		return Usage{}, 0, err
	}
	dl, err := c.deliverUsage(lr, mode, path == PathExhausted1)
	if err != nil {
		return Usage{}, 0, err
	}
	return api.plusScaled(dl, 1), fanOut, nil
}

// price is the cost of a million deliveries of usage u in deployment d,
// by service.
func price(u Usage, p Prices, d Deployment) map[string]float64 {
	apiPrice := p.APIGatewayRequest
	if d.API == APIHTTP {
		apiPrice = p.APIGatewayHTTPRequest
	}
	storageGBMonths := (u.DynamoDB.RetainedBytes*float64(d.RetentionDays) + u.DynamoDB.ShortLivedByteDays) / daysPerMonth / 1e9
	per := map[string]float64{
		"apiGateway":      u.APIRequests * apiPrice,
		"lambdaRequests":  u.LambdaInvocations * p.LambdaRequest,
		"lambdaDuration":  u.LambdaGBSeconds * p.LambdaGBSecond,
		"stepFunctions":   u.StateTransitions * p.StateTransition,
		"sqs":             u.SQSRequests * p.SQSRequest,
		"dynamodbWrites":  u.DynamoDB.WriteUnits() * p.DynamoWRU,
		"dynamodbReads":   u.DynamoDB.ReadUnits * p.DynamoRRU,
		"dynamodbStorage": storageGBMonths * p.DynamoStorageGBMonth,
		"cloudwatchLogs":  u.LogBytes / 1e9 * p.LogsIngestGB,
	}
	for k, v := range per {
		per[k] = v * 1e6
	}
	return per
}

// total is the sum of a cost by service.
func total(per map[string]float64) float64 {
	var t float64
	for _, v := range per {
		t += v
	}
	return t
}

// model prices every path in every deployment with the measured units,
// calls and durations.
func (c *CostResult) model(lr *LambdaResult) error {
	c.Paths = nil
	c.SideBySide = SideBySide{Deployments: Deployments}
	for _, path := range PathNames {
		row := struct {
			Path            string    `json:"path"`
			TotalPerMillion []float64 `json:"totalPerMillion"`
		}{Path: path}
		for _, d := range Deployments {
			u, fanOut, err := c.pathUsage(lr, d.Mode, d.API, path)
			if err != nil {
				return err
			}
			per := price(u, c.Prices, d)
			pc := PathCost{Name: path, Deployment: d, FanOut: fanOut, Usage: u, DollarsPerMillion: map[string]float64{}, TotalPerMillion: round(total(per), 2)}
			for k, v := range per {
				pc.DollarsPerMillion[k] = round(v, 4)
			}
			c.Paths = append(c.Paths, pc)
			row.TotalPerMillion = append(row.TotalPerMillion, pc.TotalPerMillion)
		}
		c.SideBySide.Rows = append(c.SideBySide.Rows, row)
	}
	lowLoad, err := c.lowLoadNote(lr)
	if err != nil {
		return err
	}
	c.Notes = append(c.Notes, lowLoad,
		"DynamoDB: table units as dynalite reports them (ConsumedCapacity), plus global secondary index writes counted from before/after images by AWS's rules (dynalite reports table units only); every POST carries an Idempotency-Key, as the Svix SDKs send, so the api's units include its idempotency record.",
		"Lambda duration: warm durations measured under the runtime emulator, the CPU part stretched to the function's CPU share (memory/1769 MB of a vCPU); real DynamoDB and receiver round trips are longer than on loopback: every extra 10 ms of a deliver invocation adds $0.033 per million invocations (a queue-mode batch of 10 shares one).",
		fmt.Sprintf("Queue mode: the event source mapping takes full batches of %d at load (ReceiveMessage and DeleteMessageBatch per batch: 0.2 requests per delivery; fewer per receive when the queue runs low, and idle pollers' empty receives are not counted); SendMessageBatch as counted from the api (one per message, of up to 10 runs); ChangeMessageVisibility only for records deliver could not handle, none on these paths. Messages are ids only, far under SQS's 64 KB per request.", queueBatch),
		"Queue mode, exhausted: deliver makes the first attempt and the immediate retry (the schedule's 0 s) off the SQS message, then starts one execution, which enters with a Deliver that finds the next attempt not due (WaitUntil) and goes on with the schedule; the transitions are walked on the definition.",
		fmt.Sprintf("Storage: the bytes each delivery leaves in the table and its indexes (items + 100 bytes each): those that expire with the message kept for the retention (30 days default, 90 before), the idempotency record for its 24 h. Logs: the functions' lines, Lambda's ~%d bytes per invocation and API Gateway's access log line (~%d bytes, estimated).", platformLogBytes, accessLogBytes),
		"Not counted: cold-start INIT time (rare at steady load), the sweeper's runs, data transfer out to receivers, Step Functions task retries (Lambda service errors only), free tiers.",
	)
	return nil
}

// lowLoadNote compares queue mode's deliver invocations and SQS requests
// at full batches with batches of 1, as when the queue runs low.
func (c *CostResult) lowLoadNote(lr *LambdaResult) (string, error) {
	d := Deployment{ModeQueue, APIRest, DefaultRetentionDays}
	cost := func(workload string, records float64) (float64, error) {
		u, err := invocations(lr, "deliver", workload, 1, records)
		u.SQSRequests = 2 / records // ReceiveMessage and DeleteMessageBatch
		return total(price(u, c.Prices, d)), err
	}
	one, err := cost(wSQS1, 1)
	if err != nil {
		return "", err
	}
	full, err := cost(wSQS10, queueBatch)
	return fmt.Sprintf("Queue mode at low load, batches of 1 instead of %d: deliver's invocations and the mapping's SQS requests cost $%.2f per million deliveries instead of $%.2f.", queueBatch, one, full), err
}

func (c *CostResult) writeTable(w io.Writer) {
	fmt.Fprintf(w, "AWS cost per 1 million deliveries (USD, %s list prices as of %s)\n", c.Prices.Region, c.Prices.AsOf)
	for _, m := range Modes {
		tr := c.Transitions[m]
		fmt.Fprintf(w, "  %s: state transitions happy %d (%s); exhausted %d (%s)\n", m,
			tr.Happy.Transitions, joinStates(tr.Happy.States), tr.Exhausted.Transitions, joinStates(tr.Exhausted.States))
		if calls := c.Calls[m]; calls != nil && m == ModeQueue {
			fmt.Fprintf(w, "    api SendMessageBatch per delivery: %.2f at fan-out 1, %.2f at fan-out 10; executions deliver starts: %.0f per happy delivery, %.0f per failing delivery\n",
				calls.APIDispatch.FanOut1, calls.APIDispatch.FanOut10, calls.ExecutionsHappy, calls.ExecutionsFailing)
		} else if calls != nil {
			fmt.Fprintf(w, "    api StartExecution per delivery: %.2f at fan-out 1, %.2f at fan-out 10\n", calls.APIDispatch.FanOut1, calls.APIDispatch.FanOut10)
		}
	}
	fmt.Fprintf(w, "  DynamoDB (write units = table + index; read units; POSTs carry an Idempotency-Key):\n")
	for _, m := range Modes {
		d := c.DynamoDB[m]
		if d == nil {
			continue
		}
		for _, u := range []struct {
			name string
			u    Units
		}{{"API create message, fan-out 1", d.APIFanOut1}, {"API create message, fan-out 10", d.APIFanOut10},
			{"deliver, happy delivery", d.DeliverHappy}, {"deliver, exhausted (9 attempts + Fail)", d.DeliverExhausted}} {
			fmt.Fprintf(w, "    %-13s %-38s WRU %5.1f (%.0f table + %.0f index)  RRU %5.1f  %v\n", m, u.name, u.u.WriteUnits(), u.u.TableWriteUnits, u.u.IndexWriteUnits, u.u.ReadUnits, u.u.Requests)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "$ per 1M deliveries\t")
	for _, d := range c.SideBySide.Deployments {
		fmt.Fprintf(tw, "%s\t", d)
	}
	fmt.Fprintln(tw)
	for _, r := range c.SideBySide.Rows {
		fmt.Fprintf(tw, "%s\t", r.Path)
		for _, v := range r.TotalPerMillion {
			fmt.Fprintf(tw, "%.2f\t", v)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "deployment\tpath\ttransitions\tinvocations\tGB-s\tSQS req\tWRU\tRRU\tStep Fn $\tLambda $\tSQS $\tDynamoDB $\tAPI GW $\tlogs $\tstorage $\ttotal $/1M\t")
	for _, pc := range c.Paths {
		u, dd := pc.Usage, pc.DollarsPerMillion
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t%.5f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", pc.Deployment, pc.Name,
			u.StateTransitions, u.LambdaInvocations, u.LambdaGBSeconds, u.SQSRequests, u.DynamoDB.WriteUnits(), u.DynamoDB.ReadUnits,
			dd["stepFunctions"], dd["lambdaRequests"]+dd["lambdaDuration"], dd["sqs"], dd["dynamodbWrites"]+dd["dynamodbReads"],
			dd["apiGateway"], dd["cloudwatchLogs"], dd["dynamodbStorage"], pc.TotalPerMillion)
	}
	tw.Flush()
	for _, n := range c.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w, "  prices:")
	for _, p := range c.Prices.Checks {
		fmt.Fprintf(w, "    %s: %s (checked %s; %s)\n", p.Price, p.Value, p.Checked, p.Source)
	}
	fmt.Fprintln(w)
}

func joinStates(states []string) string {
	if len(states) == 0 {
		return "no execution"
	}
	if len(states) > 8 {
		return strings.Join(states[:6], " → ") + " → ... → " + strings.Join(states[len(states)-2:], " → ")
	}
	return strings.Join(states, " → ")
}

// path returns the priced path of a deployment.
func (c *CostResult) path(d Deployment, name string) (PathCost, bool) {
	i := slices.IndexFunc(c.Paths, func(p PathCost) bool { return p.Deployment == d && p.Name == name })
	if i < 0 {
		return PathCost{}, false
	}
	return c.Paths[i], true
}
