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

// fate is how a delivery's attempts go.
type fate int

const (
	// fateHappy: the first attempt delivers.
	fateHappy fate = iota
	// fateRecovers: the first attempt and the immediate retry fail (a
	// receiver's blip, on an endpoint healthy until then), attempt
	// recoversOnAttempt delivers: the "first-attempt failure".
	fateRecovers
	// fateExhausted: every attempt fails until the schedule is spent
	// (an endpoint that is down), then MarkFailed.
	fateExhausted
)

// The paths priced for each deployment.
const (
	PathHappy1     = "happy, fan-out 1"
	PathHappy10    = "happy, fan-out 10"
	PathRecovers1  = "recovers on attempt 3, fan-out 1" // attempt recoversOnAttempt
	PathExhausted1 = "exhausted, fan-out 1"
)

// PathNames are the paths, in the order the report shows them.
var PathNames = []string{PathHappy1, PathHappy10, PathRecovers1, PathExhausted1}

// pathShape is what a path's name says: its delivery's fate, and its
// message's fan-out.
type pathShape struct {
	fate   fate
	fanOut int
}

var pathShapes = map[string]pathShape{
	PathHappy1:     {fateHappy, 1},
	PathHappy10:    {fateHappy, 10},
	PathRecovers1:  {fateRecovers, 1},
	PathExhausted1: {fateExhausted, 1},
}

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
	// (Attempt; AttemptQueued in queue mode). DeliverRecovers is the
	// attempts of one that fails the first two, on an endpoint healthy
	// until then, and succeeds on attempt recoversOnAttempt: its
	// endpoint's health written failing and back. DeliverExhausted is
	// every attempt of one that fails them all, on an endpoint failing
	// already, then Fail. In queue mode, after AttemptQueued (the
	// attempts made at once), the execution's not-due Attempt and the
	// later attempts.
	DeliverHappy     Units `json:"deliverHappy"`
	DeliverRecovers  Units `json:"deliverRecovers"`
	DeliverExhausted Units `json:"deliverExhausted"`
}

func (s *StepUnits) api(fanOut int) Units { return atFanOut(fanOut, s.APIFanOut1, s.APIFanOut10) }

// deliver is the units of deliver's work for a delivery of fate f.
func (s *StepUnits) deliver(f fate) Units {
	return [...]Units{fateHappy: s.DeliverHappy, fateRecovers: s.DeliverRecovers, fateExhausted: s.DeliverExhausted}[f]
}

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
	// ExecutionsHappy, ExecutionsRecovers and ExecutionsFailing are
	// the executions started per delivery whose first attempt
	// succeeds, per delivery that recovers on attempt
	// recoversOnAttempt, and per delivery whose attempts all fail,
	// after the api's (queue mode's deliver: in process and under the
	// emulator, which agreed).
	ExecutionsHappy    float64 `json:"executionsPerHappyDelivery"`
	ExecutionsRecovers float64 `json:"executionsPerRecoveringDelivery"`
	ExecutionsFailing  float64 `json:"executionsPerFailingDelivery"`
}

// executions is the executions deliver starts for a delivery of fate f.
func (c *Calls) executions(f fate) float64 {
	return [...]float64{fateHappy: c.ExecutionsHappy, fateRecovers: c.ExecutionsRecovers, fateExhausted: c.ExecutionsFailing}[f]
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
	wHappy        = "happy attempt (200 from a loopback receiver)"
	wFailed       = "failed attempt (500 from a loopback receiver)"
	wMark         = "MarkFailed (action fail)"
	wRecoverFail  = "failed attempt, endpoint healthy until then (500; health written)"
	wRecovered    = "happy attempt, endpoint failing until then (200; health written back)"
	wSQS1         = "queue: SQS batch of 1, happy"
	wSQS10        = "queue: SQS batch of 10, happy"
	wSQS10Fail    = "queue: SQS batch of 10 failing (2 attempts + StartExecution each)"
	wSQS10Recover = "queue: SQS batch of 10 recovering (2 failed attempts, health written, + StartExecution each)"
	wNotDue       = "queue: execution's first Deliver, not due"
	apiWorkload   = "POST msg, fan-out %d, %s API, %s"
)

// apiWorkloadName is the api function's workload for a POST .../msg.
func apiWorkloadName(mode Mode, kind APIKind, fanOut int) string {
	return fmt.Sprintf(apiWorkload, fanOut, kind, mode)
}

// measureCost measures, in each mode, the DynamoDB capacity of the API's
// create message (fan-out 1 and 10) and of the deliver function's work
// for a happy delivery, for one that recovers on attempt
// recoversOnAttempt and for one that exhausts the schedule, and counts
// the executions deliver starts. appFail's endpoints (by mode) are
// failing already, so that an exhausted delivery does not pay for the
// endpoint's change of health; appRecover's endpoint is healthy before
// and after a recovering delivery, which pays for both changes.
func (f *awsFixture) measureCost(ctx context.Context, app1, app10, appRecover string, appFail map[Mode]string) (*CostResult, error) {
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
		for _, d := range []struct {
			units       *Units
			executions  *float64
			app         string
			deliveredAt int
		}{
			{&su.DeliverHappy, &calls.ExecutionsHappy, app1, 1},
			{&su.DeliverRecovers, &calls.ExecutionsRecovers, appRecover, recoversOnAttempt},
			{&su.DeliverExhausted, &calls.ExecutionsFailing, appFail[mode], 0},
		} {
			if *d.units, *d.executions, err = f.measureDelivery(ctx, mode, d.app, d.deliveredAt); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// measureDelivery posts a message to the app through a mode's API and
// measures the capacity of deliver's work on its run (play), and the
// executions that work starts.
func (f *awsFixture) measureDelivery(ctx context.Context, mode Mode, appID string, deliveredAt int) (Units, float64, error) {
	runs, err := f.messages(mode, appID, 1)
	if err != nil {
		return Units{}, 0, err
	}
	var executions int
	u, err := f.measure(func() error {
		executions, err = f.play(ctx, mode, runs[0].Ref, deliveredAt)
		return err
	})
	return u, float64(executions), err
}

// play makes a delivery's attempts as the mode does, the clock moved to
// each retry's due time, until attempt deliveredAt delivers, or, when
// deliveredAt is 0, until the schedule is spent (then Fail, as
// MarkFailed does); it checks every answer against that path and
// returns the executions started on the way. In queue mode the first is
// AttemptQueued (the attempts made at once, and for a delivery they do
// not deliver, the execution it starts), then the execution's first
// Deliver, which must find the next attempt not due, then the rest.
func (f *awsFixture) play(ctx context.Context, mode Mode, ref webhook.Ref, deliveredAt int) (int, error) {
	defer f.clock.reset()
	svc := f.modes[mode].svc
	_, _, x0 := f.rec.counts()
	executions := func() int { _, _, x1 := f.rec.counts(); return x1 - x0 }
	last := webhook.DefaultSchedule.MaxAttempts()
	// check says whether res is what attempt n must answer, and
	// whether the delivery is over.
	check := func(res delivery.Result, n int) (bool, error) {
		want, final := delivery.Retry, n == last
		if n == deliveredAt {
			want, final = delivery.Delivered, true
		}
		if res.Outcome != want || res.Attempt != n || res.Final != final {
			return false, fmt.Errorf("%s: attempt %d: %+v, want %s (final %v)", mode, n, res, want, final)
		}
		return final, nil
	}
	next := 1
	if mode == ModeQueue {
		res, err := svc.AttemptQueued(ctx, ref)
		if err != nil {
			return 0, err
		}
		if res.Attempt < 1 {
			return 0, fmt.Errorf("queue: AttemptQueued made no attempt: %+v", res)
		}
		if done, err := check(res, res.Attempt); done || err != nil {
			return executions(), err
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
	for n := next; n <= last; n++ {
		res, err := svc.Attempt(ctx, ref)
		if err != nil {
			return 0, err
		}
		done, err := check(res, n)
		if err != nil {
			return 0, err
		}
		if done {
			break
		}
		f.clock.advanceTo(res.NextAttemptAt)
	}
	if deliveredAt == 0 {
		if err := svc.Fail(ctx, ref); err != nil {
			return 0, err
		}
	}
	return executions(), nil
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

// invocation is a kind of deliver invocation along a path: n of a
// workload per delivery, shared by records deliveries (an SQS
// batch's), each waiting for waits receiver round trips (a batch's
// records wait together).
type invocation struct {
	workload          string
	n, records, waits float64
}

// deliverInvocations are deliver's invocations for a delivery of fate f
// in a mode, with the lengths of the executions walked on the
// definition. In queue mode the first is the SQS batch's, which makes
// the attempts due at once, then come the invocations of the
// executions deliver starts, which enter with a Deliver that finds the
// next attempt not due. An attempt is to an endpoint failing already
// (wFailed) but for a recovering delivery's first, which finds it
// healthy, and its last, which finds it failing (both write its health).
func (c *CostResult) deliverInvocations(mode Mode, f fate) []invocation {
	tr := c.Transitions[mode]
	execution := float64(tr.path(f).LambdaInvocations)
	executions := 1.0 // stepfunctions: the api's
	first := invocation{wFailed, 1, 1, 1}
	if f == fateRecovers {
		first.workload = wRecoverFail
	}
	var out []invocation
	if mode == ModeQueue {
		batch := map[fate]invocation{
			fateHappy:     {wSQS10, 1, queueBatch, 1},
			fateRecovers:  {wSQS10Recover, 1, queueBatch, float64(tr.QueuedAttempts)},
			fateExhausted: {wSQS10Fail, 1, queueBatch, float64(tr.QueuedAttempts)},
		}[f]
		out = append(out, batch)
		executions = c.Calls[mode].executions(f)
		first = invocation{wNotDue, 1, 1, 0}
	}
	switch {
	case execution == 0: // delivered off the SQS message
	case f == fateHappy:
		out = append(out, invocation{wHappy, executions * execution, 1, 1})
	default:
		last := invocation{wMark, 1, 1, 0}
		if f == fateRecovers {
			last = invocation{wRecovered, 1, 1, 1}
		}
		for _, inv := range []invocation{first, {wFailed, execution - 2, 1, 1}, last} {
			inv.n *= executions
			out = append(out, inv)
		}
	}
	return out
}

// deliverUsage is the deliver side of a delivery of fate f: its
// invocations, executions, transitions, SQS requests and units.
func (c *CostResult) deliverUsage(lr *LambdaResult, mode Mode, f fate) (Usage, error) {
	u := Usage{DynamoDB: c.DynamoDB[mode].deliver(f)}
	executions := 1.0 // stepfunctions: the api's, counted there
	if mode == ModeQueue {
		executions = c.Calls[mode].executions(f)
		u = u.plusScaled(sqsConsumer(), 1)
		u.Executions = executions
	}
	u.StateTransitions = executions * float64(c.Transitions[mode].path(f).Transitions)
	for i, inv := range c.deliverInvocations(mode, f) {
		p, err := invocations(lr, "deliver", inv.workload, inv.n, inv.records)
		if err != nil {
			return Usage{}, err
		}
		p.ReceiverWaits = inv.n * inv.waits / inv.records
		if mode == ModeQueue && i == 0 {
			// The SQS message is in flight for its batch's invocation.
			u.InFlightSeconds, u.InFlightWaits = p.LambdaSeconds*inv.records, inv.waits
		}
		u = u.plusScaled(p, 1)
	}
	return u, nil
}

// usage is the usage of a delivery of fate f, its message to fanOut
// endpoints, with the api behind kind.
func (c *CostResult) usage(lr *LambdaResult, mode Mode, kind APIKind, f fate, fanOut int) (Usage, error) {
	api, err := c.apiUsage(lr, mode, kind, fanOut)
	if err != nil {
		return Usage{}, err
	}
	dl, err := c.deliverUsage(lr, mode, f)
	if err != nil {
		return Usage{}, err
	}
	return api.plusScaled(dl, 1), nil
}

// pathUsage is a delivery's usage along a path, with the api behind kind,
// and the path's fan-out.
func (c *CostResult) pathUsage(lr *LambdaResult, mode Mode, kind APIKind, path string) (Usage, int, error) {
	shape, ok := pathShapes[path]
	if !ok {
		return Usage{}, 0, fmt.Errorf("cost: no path %q", path)
	}
	u, err := c.usage(lr, mode, kind, shape.fate, shape.fanOut)
	return u, shape.fanOut, err
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
		"Queue mode, recovers and exhausted: deliver makes the first attempt and the immediate retry (the schedule's 0 s) off the SQS message, then starts one execution, which enters with a Deliver that finds the next attempt not due (WaitUntil) and goes on with the schedule; the transitions are walked on the definition.",
		fmt.Sprintf("Recovers: the receiver answers 500 to a message's first %d requests, then 200, on an endpoint healthy until then, so the delivery writes the endpoint's health failing (attempt 1) and back (attempt %d): an isolated blip; a longer outage of one endpoint shares those two writes among the deliveries it fails. Timed under the emulator on an endpoint each: its first and last attempts, the queue batch of 10 recovering records; the second attempt is priced as a failed attempt to an endpoint failing already and queue mode's execution entry as the exhausted path's not-due Deliver (the same work), and queue mode's last attempt as stepfunctions mode's (the same Deliver step).", recoveringFailures, recoversOnAttempt),
		"Exhausted: the endpoint is failing already (down), so its deliveries write no health.",
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
		fmt.Fprintf(w, "  %s: state transitions happy %d (%s); recovers %d (%s); exhausted %d (%s)\n", m,
			tr.Happy.Transitions, joinStates(tr.Happy.States), tr.Recovers.Transitions, joinStates(tr.Recovers.States),
			tr.Exhausted.Transitions, joinStates(tr.Exhausted.States))
		if calls := c.Calls[m]; calls != nil && m == ModeQueue {
			fmt.Fprintf(w, "    api SendMessageBatch per delivery: %.2f at fan-out 1, %.2f at fan-out 10; executions deliver starts: %.0f per happy delivery, %.0f per recovering, %.0f per exhausted\n",
				calls.APIDispatch.FanOut1, calls.APIDispatch.FanOut10, calls.ExecutionsHappy, calls.ExecutionsRecovers, calls.ExecutionsFailing)
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
			{"deliver, happy delivery", d.DeliverHappy}, {"deliver, recovers (2 failed, 3rd delivers)", d.DeliverRecovers},
			{"deliver, exhausted (9 attempts + Fail)", d.DeliverExhausted}} {
			fmt.Fprintf(w, "    %-13s %-42s WRU %5.1f (%.0f table + %.0f index)  RRU %5.1f  %v\n", m, u.name, u.u.WriteUnits(), u.u.TableWriteUnits, u.u.IndexWriteUnits, u.u.ReadUnits, u.u.Requests)
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
	fmt.Fprintf(w, "  %s: $ per million deliveries that fail their first attempt and recover on attempt %d (the first and the immediate retry fail; 5 s later it is delivered)\n", PathRecovers1, recoversOnAttempt)
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
	if len(states) > 10 {
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
