package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Prices are AWS list prices in USD, us-east-1.
type Prices struct {
	AsOf   string `json:"asOf"`
	Region string `json:"region"`
	Source string `json:"source"`
	// Lambda on arm64 (Graviton): per GB-second (first pricing tier) and
	// per request.
	LambdaGBSecond float64 `json:"lambdaArm64PerGBSecond"`
	LambdaRequest  float64 `json:"lambdaPerRequest"`
	// Step Functions Standard: per state transition.
	StateTransition float64 `json:"stepFunctionsPerStateTransition"`
	// DynamoDB on demand, Standard table class: per write and read
	// request unit, and storage per GB-month.
	DynamoWRU            float64 `json:"dynamodbPerWriteRequestUnit"`
	DynamoRRU            float64 `json:"dynamodbPerReadRequestUnit"`
	DynamoStorageGBMonth float64 `json:"dynamodbStoragePerGBMonth"`
	// API Gateway REST API: per request (first 333 million a month).
	APIGatewayRequest float64 `json:"apiGatewayRestPerRequest"`
	// CloudWatch Logs: ingestion per GB (standard class).
	LogsIngestGB float64 `json:"cloudwatchLogsIngestPerGB"`
}

// PublishedPrices are the prices the cost model uses. They are AWS's
// published us-east-1 list prices as of January 2025 (DynamoDB on demand
// after its November 2024 price cut); they were not re-checked when this
// was written, and must be checked against https://aws.amazon.com/pricing/
// before being quoted.
var PublishedPrices = Prices{
	AsOf:                 "2025-01 (not re-checked since; verify before quoting)",
	Region:               "us-east-1",
	Source:               "aws.amazon.com/{lambda,step-functions,dynamodb,api-gateway,cloudwatch}/pricing",
	LambdaGBSecond:       0.0000133334,
	LambdaRequest:        0.20 / 1e6,
	StateTransition:      0.025 / 1000,
	DynamoWRU:            0.625 / 1e6,
	DynamoRRU:            0.125 / 1e6,
	DynamoStorageGBMonth: 0.25,
	APIGatewayRequest:    3.50 / 1e6,
	LogsIngestGB:         0.50,
}

// platformLogBytes is what Lambda itself logs per invocation (START, END
// and REPORT lines), about 260 bytes.
const platformLogBytes = 260

// retentionMonths is how long messages, deliveries and attempts stay in
// the table: the default payload retention, 90 days.
const retentionMonths = 90.0 / 30.44

// CostResult is the AWS cost model.
type CostResult struct {
	Prices Prices `json:"prices"`
	// DynamoDB is the capacity measured against dynalite for each step.
	DynamoDB struct {
		APIFanOut1       Units `json:"apiCreateMessageFanOut1"`
		APIFanOut10      Units `json:"apiCreateMessageFanOut10"`
		DeliverHappy     Units `json:"deliverHappy"`
		DeliverExhausted Units `json:"deliverExhausted"`
	} `json:"dynamodb"`
	Transitions Transitions `json:"stateMachine"`
	Paths       []PathCost  `json:"paths"`
	Notes       []string    `json:"notes"`
	// Quotas is the throughput Step Functions' quotas allow these paths.
	Quotas *QuotaModel `json:"stepFunctionsQuotas,omitempty"`
}

// Transitions are the state machine's paths, walked on its definition.
type Transitions struct {
	Happy     Path `json:"happy"`
	Exhausted Path `json:"exhausted"`
}

// Path is one execution: the states entered, in order.
type Path struct {
	Transitions       int      `json:"stateTransitions"`
	LambdaInvocations int      `json:"lambdaInvocations"`
	States            []string `json:"states"`
}

// PathCost is the cost of one delivery along a path.
type PathCost struct {
	Name   string `json:"name"`
	FanOut int    `json:"fanOut"`
	// Per delivery.
	APIGatewayRequests float64 `json:"apiGatewayRequests"`
	LambdaInvocations  float64 `json:"lambdaInvocations"`
	LambdaGBSeconds    float64 `json:"lambdaGBSeconds"`
	StateTransitions   float64 `json:"stateTransitions"`
	ReadUnits          float64 `json:"readUnits"`
	WriteUnits         float64 `json:"writeUnits"` // table + indexes
	LogBytes           float64 `json:"logBytes"`
	StoredBytes        float64 `json:"storedBytes"`
	// DollarsPerMillion is the cost of a million such deliveries, by
	// service, and in total.
	DollarsPerMillion map[string]float64 `json:"dollarsPerMillion"`
	TotalPerMillion   float64            `json:"totalPerMillion"`
}

// measureCost measures the DynamoDB capacity of the API's create message
// (fan-out 1 and 10) and of the deliver function's work for a happy
// delivery and for one that exhausts the schedule (nine failed attempts,
// then MarkFailed).
func (f *awsFixture) measureCost(app1, app10, appFail string) (*CostResult, error) {
	c := &CostResult{Prices: PublishedPrices}
	var err error
	var seq int
	post := func(appID string) func() error {
		return func() error { seq++; _, err := f.message(appID, seq); return err }
	}
	if c.DynamoDB.APIFanOut1, err = f.measure(post(app1)); err != nil {
		return nil, err
	}
	if c.DynamoDB.APIFanOut10, err = f.measure(post(app10)); err != nil {
		return nil, err
	}
	happy, err := f.messages(app1, 1)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	c.DynamoDB.DeliverHappy, err = f.measure(func() error {
		res, err := f.svc.Attempt(ctx, happy[0])
		if err == nil && res.Outcome != delivery.Delivered {
			err = fmt.Errorf("happy attempt: outcome %s", res.Outcome)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	failing, err := f.messages(appFail, 1)
	if err != nil {
		return nil, err
	}
	c.DynamoDB.DeliverExhausted, err = f.measure(func() error {
		for n := 1; n <= webhook.DefaultSchedule.MaxAttempts(); n++ {
			res, err := f.svc.Attempt(ctx, failing[0])
			if err != nil {
				return err
			}
			if res.Outcome != delivery.Retry || res.Final != (n == webhook.DefaultSchedule.MaxAttempts()) {
				return fmt.Errorf("failing attempt %d: %+v", n, res)
			}
		}
		return f.svc.Fail(ctx, failing[0])
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// model prices the paths with the measured durations.
func (c *CostResult) model(lr *LambdaResult) {
	p := c.Prices
	billedGBs := func(fn, workload string) float64 {
		w, ok := lr.workload(fn, workload)
		if !ok {
			return 0
		}
		// Lambda bills duration in 1 ms steps.
		return math.Ceil(w.EstimatedAWSMs) / 1000 * float64(functionMemoryMB[fn]) / 1024
	}
	logs := func(fn, workload string) float64 {
		w, _ := lr.workload(fn, workload)
		return w.LogBytes + platformLogBytes
	}
	apiW := map[int]string{1: "POST msg, fan-out 1", 10: "POST msg, fan-out 10"}
	apiUnits := map[int]Units{1: c.DynamoDB.APIFanOut1, 10: c.DynamoDB.APIFanOut10}
	const (
		happyW  = "happy attempt (200 from a loopback receiver)"
		failedW = "failed attempt (500 from a loopback receiver)"
		markW   = "MarkFailed (action fail)"
	)
	price := func(pc *PathCost) {
		d := map[string]float64{
			"apiGateway":          pc.APIGatewayRequests * p.APIGatewayRequest,
			"lambdaRequests":      pc.LambdaInvocations * p.LambdaRequest,
			"lambdaDuration":      pc.LambdaGBSeconds * p.LambdaGBSecond,
			"stepFunctions":       pc.StateTransitions * p.StateTransition,
			"dynamodbWrites":      pc.WriteUnits * p.DynamoWRU,
			"dynamodbReads":       pc.ReadUnits * p.DynamoRRU,
			"dynamodbStorage90d":  pc.StoredBytes / 1e9 * p.DynamoStorageGBMonth * retentionMonths,
			"cloudwatchLogsWrite": pc.LogBytes / 1e9 * p.LogsIngestGB,
		}
		pc.DollarsPerMillion = map[string]float64{}
		pc.TotalPerMillion = 0
		for k, v := range d {
			pc.DollarsPerMillion[k] = round(v*1e6, 4)
			pc.TotalPerMillion += v * 1e6
		}
		pc.TotalPerMillion = round(pc.TotalPerMillion, 2)
	}
	happy, exhausted := c.Transitions.Happy, c.Transitions.Exhausted
	for _, fanOut := range []int{1, 10} {
		k := 1 / float64(fanOut)
		api, dl := apiUnits[fanOut].scaled(k), c.DynamoDB.DeliverHappy
		pc := PathCost{
			Name: fmt.Sprintf("happy, fan-out %d", fanOut), FanOut: fanOut,
			APIGatewayRequests: k,
			LambdaInvocations:  k + float64(happy.LambdaInvocations),
			LambdaGBSeconds:    k*billedGBs("api", apiW[fanOut]) + float64(happy.LambdaInvocations)*billedGBs("deliver", happyW),
			StateTransitions:   float64(happy.Transitions),
			ReadUnits:          api.ReadUnits + dl.ReadUnits,
			WriteUnits:         api.WriteUnits() + dl.WriteUnits(),
			LogBytes:           k*logs("api", apiW[fanOut]) + float64(happy.LambdaInvocations)*logs("deliver", happyW),
			StoredBytes:        api.StoredBytes + dl.StoredBytes,
		}
		price(&pc)
		c.Paths = append(c.Paths, pc)
	}
	attempts := float64(exhausted.LambdaInvocations - 1) // the last one is MarkFailed
	api, dl := c.DynamoDB.APIFanOut1, c.DynamoDB.DeliverExhausted
	pc := PathCost{
		Name: "exhausted, fan-out 1", FanOut: 1,
		APIGatewayRequests: 1,
		LambdaInvocations:  1 + float64(exhausted.LambdaInvocations),
		LambdaGBSeconds:    billedGBs("api", apiW[1]) + attempts*billedGBs("deliver", failedW) + billedGBs("deliver", markW),
		StateTransitions:   float64(exhausted.Transitions),
		ReadUnits:          api.ReadUnits + dl.ReadUnits,
		WriteUnits:         api.WriteUnits() + dl.WriteUnits(),
		LogBytes:           logs("api", apiW[1]) + attempts*logs("deliver", failedW) + logs("deliver", markW),
		StoredBytes:        api.StoredBytes + dl.StoredBytes,
	}
	price(&pc)
	c.Paths = append(c.Paths, pc)
	c.Notes = append(c.Notes,
		"DynamoDB: table units as dynalite reports them (ConsumedCapacity), plus global secondary index writes counted from before/after images by AWS's rules (dynalite reports table units only); reads are strongly consistent where the store asks for it.",
		"Lambda duration: warm durations measured under the runtime emulator, the CPU part stretched to the function's CPU share (memory/1769 MB of a vCPU); real DynamoDB and receiver round trips are longer than on loopback: every extra 10 ms of a deliver invocation adds $0.033 per million deliveries.",
		"Not counted: cold-start INIT time (rare at steady load), the hourly sweeper, data transfer out to receivers, and Step Functions task retries (Lambda service errors only).",
		"Storage: the bytes each delivery leaves in the table and its indexes (items + 100 bytes each), kept for the default 90-day retention.",
	)
}

// countTransitions walks the state machine's definition along the happy
// path (the first attempt delivers) and the exhausted path (every attempt
// fails, then MarkFailed), counting the states entered: Step Functions
// Standard bills one state transition per state entered.
func countTransitions(def []byte) (Transitions, error) {
	var m aslMachine
	if err := json.Unmarshal(def, &m); err != nil {
		return Transitions{}, fmt.Errorf("state machine definition: %w", err)
	}
	// One Wait<n> state follows each attempt but the last.
	attempts := 1
	for name := range m.States {
		if n, ok := strings.CutPrefix(name, "Wait"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			attempts++
		}
	}
	happy, err := m.walk(func(n int) map[string]any {
		return map[string]any{"outcome": "delivered", "attempt": float64(n), "final": true}
	})
	if err != nil {
		return Transitions{}, err
	}
	exhausted, err := m.walk(func(n int) map[string]any {
		return map[string]any{"outcome": "retry", "attempt": float64(n), "final": n >= attempts}
	})
	if err != nil {
		return Transitions{}, err
	}
	return Transitions{Happy: happy, Exhausted: exhausted}, nil
}

type aslMachine struct {
	StartAt string              `json:"StartAt"`
	States  map[string]aslState `json:"States"`
}

type aslState struct {
	Type       string         `json:"Type"`
	Next       string         `json:"Next"`
	End        bool           `json:"End"`
	Parameters map[string]any `json:"Parameters"`
	Choices    []aslRule      `json:"Choices"`
	Default    string         `json:"Default"`
}

type aslRule struct {
	Variable      string    `json:"Variable"`
	StringEquals  *string   `json:"StringEquals"`
	BooleanEquals *bool     `json:"BooleanEquals"`
	NumericEquals *float64  `json:"NumericEquals"`
	IsPresent     *bool     `json:"IsPresent"`
	And           []aslRule `json:"And"`
	Or            []aslRule `json:"Or"`
	Not           *aslRule  `json:"Not"`
	Next          string    `json:"Next"`
}

// walk runs the machine with each deliver Task returning result(n) for
// its n-th attempt (and MarkFailed returning stop) into $.result.
func (m aslMachine) walk(result func(n int) map[string]any) (Path, error) {
	var p Path
	var res map[string]any
	attempt := 0
	name := m.StartAt
	for steps := 0; name != ""; steps++ {
		if steps > 1000 {
			return p, fmt.Errorf("state machine: no end after 1000 states")
		}
		st, ok := m.States[name]
		if !ok {
			return p, fmt.Errorf("state machine: no state %q", name)
		}
		p.States = append(p.States, name)
		p.Transitions++
		next := st.Next
		switch st.Type {
		case "Task":
			p.LambdaInvocations++
			if st.Parameters["action"] != nil {
				res = map[string]any{"outcome": string(delivery.Stop), "final": true}
			} else {
				attempt++
				res = result(attempt)
			}
		case "Choice":
			next = st.Default
			for _, r := range st.Choices {
				ok, err := r.matches(res)
				if err != nil {
					return p, err
				}
				if ok {
					next = r.Next
					break
				}
			}
		case "Wait", "Pass":
		case "Succeed", "Fail":
			next = ""
		default:
			return p, fmt.Errorf("state machine: state %s has type %s, which the walk does not know", name, st.Type)
		}
		if st.End {
			next = ""
		}
		name = next
	}
	return p, nil
}

func (r aslRule) matches(res map[string]any) (bool, error) {
	switch {
	case r.And != nil:
		for _, a := range r.And {
			if ok, err := a.matches(res); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case r.Or != nil:
		for _, a := range r.Or {
			if ok, err := a.matches(res); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case r.Not != nil:
		ok, err := r.Not.matches(res)
		return !ok, err
	}
	field, ok := strings.CutPrefix(r.Variable, "$.result.")
	if !ok {
		return false, fmt.Errorf("state machine: choice on %s, which the walk does not know", r.Variable)
	}
	v, present := res[field]
	switch {
	case r.StringEquals != nil:
		return v == *r.StringEquals, nil
	case r.BooleanEquals != nil:
		return v == *r.BooleanEquals, nil
	case r.NumericEquals != nil:
		return v == *r.NumericEquals, nil
	case r.IsPresent != nil:
		return present == *r.IsPresent, nil
	}
	return false, fmt.Errorf("state machine: a choice rule the walk does not know: %+v", r)
}

func (c *CostResult) writeTable(w io.Writer) {
	fmt.Fprintf(w, "AWS cost per 1 million deliveries (USD, %s list prices as of %s)\n", c.Prices.Region, c.Prices.AsOf)
	fmt.Fprintf(w, "  state transitions: happy %d (%s); exhausted %d (%d Lambda invocations)\n",
		c.Transitions.Happy.Transitions, strings.Join(c.Transitions.Happy.States, " → "),
		c.Transitions.Exhausted.Transitions, c.Transitions.Exhausted.LambdaInvocations)
	d := c.DynamoDB
	fmt.Fprintf(w, "  DynamoDB (write units = table + index; read units):\n")
	for _, u := range []struct {
		name string
		u    Units
	}{{"API create message, fan-out 1", d.APIFanOut1}, {"API create message, fan-out 10", d.APIFanOut10},
		{"deliver, happy delivery", d.DeliverHappy}, {"deliver, exhausted (9 attempts + MarkFailed)", d.DeliverExhausted}} {
		fmt.Fprintf(w, "    %-46s WRU %5.1f (%.0f table + %.0f index)  RRU %5.1f  %v\n", u.name, u.u.WriteUnits(), u.u.TableWriteUnits, u.u.IndexWriteUnits, u.u.ReadUnits, u.u.Requests)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\ttransitions\tinvocations\tGB-s\tWRU\tRRU\tStep Fn $\tLambda $\tDynamoDB $\tAPI GW $\tlogs+storage $\ttotal $/1M\t")
	for _, pc := range c.Paths {
		dd := pc.DollarsPerMillion
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.5f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", pc.Name, pc.StateTransitions, pc.LambdaInvocations,
			pc.LambdaGBSeconds, pc.WriteUnits, pc.ReadUnits, dd["stepFunctions"], dd["lambdaRequests"]+dd["lambdaDuration"],
			dd["dynamodbWrites"]+dd["dynamodbReads"], dd["apiGateway"], dd["cloudwatchLogsWrite"]+dd["dynamodbStorage90d"], pc.TotalPerMillion)
	}
	tw.Flush()
	for _, n := range c.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w)
}
