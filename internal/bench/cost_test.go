package bench

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookstep/hookstep/internal/dynamo"
)

// testPrices are round prices, so that the arithmetic shows.
var testPrices = Prices{
	LambdaGBSecond: 0.00001, LambdaRequest: 0.2 / 1e6, StateTransition: 25 / 1e6,
	DynamoWRU: 0.625 / 1e6, DynamoRRU: 0.125 / 1e6, DynamoStorageGBMonth: 0.25,
	APIGatewayRequest: 3.5 / 1e6, APIGatewayHTTPRequest: 1 / 1e6, SQSRequest: 0.4 / 1e6, LogsIngestGB: 0.5,
}

func TestPriceOfAMillionDeliveries(t *testing.T) {
	u := Usage{
		APIRequests: 1, LambdaInvocations: 2, LambdaGBSeconds: 0.01, StateTransitions: 3, SQSRequests: 1.2,
		// 3,044 bytes kept with the message, and an idempotency record
		// of 304.4 bytes for a day.
		DynamoDB: Units{TableWriteUnits: 4, IndexWriteUnits: 4, ReadUnits: 8, RetainedBytes: 3044, ShortLivedByteDays: 304.4},
		LogBytes: 1000,
	}
	tests := []struct {
		d       Deployment
		api     float64
		storage float64
	}{
		// (3,044 × 30 + 304.4) / 30.44 = 3,010 byte-months per delivery.
		{Deployment{ModeQueue, APIHTTP, 30}, 1, 3010e-9 * 0.25 * 1e6},
		{Deployment{ModeQueue, APIRest, 30}, 3.5, 3010e-9 * 0.25 * 1e6},
		{Deployment{ModeStepFunctions, APIRest, 90}, 3.5, 9010e-9 * 0.25 * 1e6},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			got := price(u, testPrices, tt.d)
			want := map[string]float64{
				"apiGateway": tt.api, "lambdaRequests": 0.4, "lambdaDuration": 0.1, "stepFunctions": 75, "sqs": 0.48,
				"dynamodbWrites": 5, "dynamodbReads": 1, "dynamodbStorage": tt.storage, "cloudwatchLogs": 0.5,
			}
			for k, w := range want {
				if !near(got[k], w) {
					t.Errorf("%s: $%g per million, want $%g", k, got[k], w)
				}
			}
			if len(got) != len(want) {
				t.Errorf("services %v, want %v", got, want)
			}
			if sum := total(got); !near(sum, 82.48+tt.api+tt.storage) {
				t.Errorf("total $%g, want $%g", sum, 82.48+tt.api+tt.storage)
			}
		})
	}
}

// testModel is a cost model of measured-looking numbers: every deliver
// invocation takes 10 ms (a batch of 10, 100 ms; a failing batch 200 ms,
// a recovering one 220 ms; a recovering delivery's first attempt 12 ms,
// its last 14 ms), every api invocation 20 ms, each logging 40 bytes.
func testModel() (*CostResult, *LambdaResult) {
	deliver := &FunctionResult{Name: "deliver", MemoryMB: 256}
	api := &FunctionResult{Name: "api", MemoryMB: 512}
	for name, ms := range map[string]float64{
		wHappy: 10, wFailed: 10, wMark: 10, wRecoverFail: 12, wRecovered: 14,
		wSQS1: 10, wSQS10: 100, wSQS10Fail: 200, wSQS10Recover: 220, wNotDue: 10,
	} {
		deliver.Workloads = append(deliver.Workloads, Workload{Name: name, EstimatedAWSMs: ms, LogBytes: 40})
	}
	for _, mode := range Modes {
		for _, kind := range APIKinds {
			for _, fanOut := range []int{1, 10} {
				api.Workloads = append(api.Workloads, Workload{Name: apiWorkloadName(mode, kind, fanOut), EstimatedAWSMs: 20, LogBytes: 40})
			}
		}
	}
	lr := &LambdaResult{Functions: []FunctionResult{*api, *deliver}}
	units := func(w float64) Units { return Units{TableWriteUnits: w, ReadUnits: w, RetainedBytes: 1000} }
	c := &CostResult{
		Prices: testPrices,
		DynamoDB: map[Mode]*StepUnits{
			ModeStepFunctions: {APIFanOut1: units(4), APIFanOut10: units(31), DeliverHappy: units(4), DeliverRecovers: units(12), DeliverExhausted: units(40)},
			ModeQueue:         {APIFanOut1: units(4), APIFanOut10: units(31), DeliverHappy: units(4), DeliverRecovers: units(12), DeliverExhausted: units(40)},
		},
		Calls: map[Mode]*Calls{
			ModeStepFunctions: {APIDispatch: PerFanOut{1, 1}},
			ModeQueue:         {APIDispatch: PerFanOut{1, 0.1}, ExecutionsRecovers: 1, ExecutionsFailing: 1},
		},
		Transitions: map[Mode]Transitions{
			ModeStepFunctions: {
				Happy:     Path{Transitions: 3, LambdaInvocations: 1},
				Recovers:  Path{Transitions: 9, LambdaInvocations: 3},
				Exhausted: Path{Transitions: 28, LambdaInvocations: 10},
			},
			ModeQueue: {
				Recovers:       Path{Transitions: 6, LambdaInvocations: 2},
				Exhausted:      Path{Transitions: 25, LambdaInvocations: 9},
				QueuedAttempts: 2,
			},
		},
	}
	return c, lr
}

func TestPathUsage(t *testing.T) {
	c, lr := testModel()
	tests := []struct {
		mode Mode
		path string
		want Usage
	}{
		{ModeStepFunctions, PathHappy1, Usage{
			APIRequests: 1, LambdaInvocations: 2, LambdaGBSeconds: 0.02*0.5 + 0.01*0.25, LambdaSeconds: 0.03,
			ReceiverWaits: 1, StateTransitions: 3, Executions: 1, LogBytes: 2*(40+platformLogBytes) + accessLogBytes,
		}},
		// The api's share is a tenth; deliver's is the same.
		{ModeStepFunctions, PathHappy10, Usage{
			APIRequests: 0.1, LambdaInvocations: 1.1, LambdaGBSeconds: 0.002*0.5 + 0.01*0.25, LambdaSeconds: 0.012,
			ReceiverWaits: 1, StateTransitions: 3, Executions: 1, LogBytes: 1.1*(40+platformLogBytes) + 0.1*accessLogBytes,
		}},
		// The first attempt finds the endpoint healthy (12 ms), the
		// second fails like any (10 ms), the third delivers (14 ms); 9
		// transitions in the api's execution.
		{ModeStepFunctions, PathRecovers1, Usage{
			APIRequests: 1, LambdaInvocations: 4, LambdaGBSeconds: 0.01 + 0.036*0.25, LambdaSeconds: 0.056,
			ReceiverWaits: 3, StateTransitions: 9, Executions: 1, LogBytes: 4*(40+platformLogBytes) + accessLogBytes,
		}},
		// 9 failed attempts and MarkFailed.
		{ModeStepFunctions, PathExhausted1, Usage{
			APIRequests: 1, LambdaInvocations: 11, LambdaGBSeconds: 0.01 + 10*0.01*0.25, LambdaSeconds: 0.12,
			ReceiverWaits: 9, StateTransitions: 28, Executions: 1, LogBytes: 11*(40+platformLogBytes) + accessLogBytes,
		}},
		// A tenth of a 100 ms batch; SendMessageBatch, ReceiveMessage and
		// DeleteMessageBatch's share; no execution.
		{ModeQueue, PathHappy1, Usage{
			APIRequests: 1, LambdaInvocations: 1.1, LambdaGBSeconds: 0.01 + 0.1*0.25/10, LambdaSeconds: 0.03,
			ReceiverWaits: 0.1, InFlightSeconds: 0.1, InFlightWaits: 1, SQSRequests: 1.2,
			LogBytes: 1.1*(40+platformLogBytes) + accessLogBytes,
		}},
		// A tenth of a 220 ms recovering batch (2 attempts each), then
		// one execution: not due (no POST), the delivering attempt.
		{ModeQueue, PathRecovers1, Usage{
			APIRequests: 1, LambdaInvocations: 1 + 0.1 + 2, LambdaGBSeconds: 0.01 + 0.22*0.25/10 + 0.024*0.25, LambdaSeconds: 0.02 + 0.022 + 0.024,
			ReceiverWaits: 0.2 + 1, InFlightSeconds: 0.22, InFlightWaits: 2, StateTransitions: 6, Executions: 1, SQSRequests: 1.2,
			LogBytes: 3.1*(40+platformLogBytes) + accessLogBytes,
		}},
		// A tenth of a 200 ms failing batch (2 attempts each), then one
		// execution: not due, 7 attempts, MarkFailed.
		{ModeQueue, PathExhausted1, Usage{
			APIRequests: 1, LambdaInvocations: 1 + 0.1 + 9, LambdaGBSeconds: 0.01 + 0.2*0.25/10 + 9*0.01*0.25, LambdaSeconds: 0.02 + 0.02 + 0.09,
			ReceiverWaits: 0.2 + 7, InFlightSeconds: 0.2, InFlightWaits: 2, StateTransitions: 25, Executions: 1, SQSRequests: 1.2,
			LogBytes: 10.1*(40+platformLogBytes) + accessLogBytes,
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+", "+tt.path, func(t *testing.T) {
			got, _, err := c.pathUsage(lr, tt.mode, APIRest, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"API requests", got.APIRequests, tt.want.APIRequests},
				{"invocations", got.LambdaInvocations, tt.want.LambdaInvocations},
				{"GB-s", got.LambdaGBSeconds, tt.want.LambdaGBSeconds},
				{"Lambda seconds", got.LambdaSeconds, tt.want.LambdaSeconds},
				{"receiver waits", got.ReceiverWaits, tt.want.ReceiverWaits},
				{"in flight", got.InFlightSeconds, tt.want.InFlightSeconds},
				{"in-flight waits", got.InFlightWaits, tt.want.InFlightWaits},
				{"transitions", got.StateTransitions, tt.want.StateTransitions},
				{"executions", got.Executions, tt.want.Executions},
				{"SQS requests", got.SQSRequests, tt.want.SQSRequests},
				{"log bytes", got.LogBytes, tt.want.LogBytes},
			} {
				if !near(f.got, f.want) {
					t.Errorf("%s = %g, want %g", f.name, f.got, f.want)
				}
			}
		})
	}
}

func TestPathUsageAddsTheAPIsShareOfItsUnits(t *testing.T) {
	c, lr := testModel()
	for _, tt := range []struct {
		path         string
		writes, kept float64
	}{
		{PathHappy1, 4 + 4, 1000 + 1000},
		{PathHappy10, 3.1 + 4, 100 + 1000},
		{PathRecovers1, 4 + 12, 1000 + 1000},
		{PathExhausted1, 4 + 40, 1000 + 1000},
	} {
		u, _, err := c.pathUsage(lr, ModeQueue, APIHTTP, tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if !near(u.DynamoDB.WriteUnits(), tt.writes) || !near(u.DynamoDB.RetainedBytes, tt.kept) {
			t.Errorf("%s: %g write units, %g bytes kept; want %g and %g", tt.path, u.DynamoDB.WriteUnits(), u.DynamoDB.RetainedBytes, tt.writes, tt.kept)
		}
	}
}

func TestModelSetsDeploymentsSideBySide(t *testing.T) {
	c, lr := testModel()
	if err := c.model(lr); err != nil {
		t.Fatal(err)
	}
	if len(c.Paths) != len(PathNames)*len(Deployments) || len(c.SideBySide.Rows) != len(PathNames) {
		t.Fatalf("%d paths, %d rows; want %d and %d", len(c.Paths), len(c.SideBySide.Rows), len(PathNames)*len(Deployments), len(PathNames))
	}
	for i, r := range c.SideBySide.Rows {
		for j, d := range Deployments {
			p, ok := c.path(d, PathNames[i])
			if !ok || r.TotalPerMillion[j] != p.TotalPerMillion {
				t.Errorf("%s, %s: side by side $%g, path $%g (found %v)", PathNames[i], d, r.TotalPerMillion[j], p.TotalPerMillion, ok)
			}
		}
	}
	// Step Functions' $75 per million happy deliveries is the difference.
	sfn, _ := c.path(Deployment{ModeStepFunctions, APIRest, 30}, PathHappy1)
	queue, _ := c.path(Deployment{ModeQueue, APIRest, 30}, PathHappy1)
	if sfn.DollarsPerMillion["stepFunctions"] != 75 || queue.DollarsPerMillion["stepFunctions"] != 0 || queue.DollarsPerMillion["sqs"] != 0.48 {
		t.Errorf("stepfunctions %v, queue %v", sfn.DollarsPerMillion, queue.DollarsPerMillion)
	}
	var out bytes.Buffer
	c.writeTable(&out)
	for _, s := range []string{"queue http 30d", "stepfunctions rest 90d", PathRecovers1, PathExhausted1, "Idempotency-Key",
		"fail their first attempt and recover on attempt 3"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q", s)
		}
	}
}

func TestModelNeedsEveryWorkload(t *testing.T) {
	for _, missing := range []string{wHappy, wSQS10, wNotDue, wRecoverFail, wRecovered, wSQS10Recover, apiWorkloadName(ModeQueue, APIHTTP, 10)} {
		c, lr := testModel()
		for i := range lr.Functions {
			lr.Functions[i].Workloads = slices.DeleteFunc(lr.Functions[i].Workloads, func(w Workload) bool { return w.Name == missing })
		}
		if err := c.model(lr); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%q not timed: got %v, want an error naming it", missing, err)
		}
	}
}

func TestCostTargets(t *testing.T) {
	c, lr := testModel()
	if err := c.model(lr); err != nil {
		t.Fatal(err)
	}
	c.Quotas = &QuotaModel{Ceilings: []Ceiling{{Regions: bigRegions.Name, Mode: ModeQueue, Failure: FailFirstAttempt, FailShare: 0.02, FanOut: 1, PerSec: 12_000, LimitedBy: "x"}}}
	r := &Report{Cost: c}
	r.CheckTargets()
	got := map[string]bool{}
	for _, tc := range r.Targets {
		got[tc.Name] = tc.Met
	}
	want := map[string]bool{
		// 4 (api) + 4 (deliver) = 8 write units at fan-out 1; at 10,
		// 31 + 10 × 4 = 71 per message: 7 per extra endpoint.
		"stepfunctions: ≤ 8 DynamoDB write units per happy delivery at fan-out 1 (api + deliver, Idempotency-Key included)": true,
		"stepfunctions: ≤ 4 DynamoDB write units per extra endpoint":                                                        false,
		"stepfunctions: ≤ 4 state transitions per happy delivery":                                                           true,
		"queue: ≤ 8 DynamoDB write units per happy delivery at fan-out 1 (api + deliver, Idempotency-Key included)":         true,
		"queue: ≤ 4 DynamoDB write units per extra endpoint":                                                                false,
		"queue: 0 state transitions per happy delivery":                                                                     true,
		"queue: ≤ 1 execution per delivery that fails its first attempt":                                                    true,
		"queue, REST API: ≤ $13 per million happy deliveries at fan-out 1":                                                  true,
		"queue, HTTP API, 30-day retention: ≤ $10 per million happy deliveries at fan-out 1":                                true,
		"queue: quota ceiling ≥ 10,000 deliveries/s at 2% first-attempt failure, large regions":                             true,
	}
	for name, met := range want {
		if g, ok := got[name]; !ok || g != met {
			t.Errorf("%q: met %v (present %v), want %v", name, g, ok, met)
		}
	}
	for _, tc := range r.Targets {
		if tc.Name == "queue: ≤ 4 DynamoDB write units per extra endpoint" && tc.Measured != "7.00" {
			t.Errorf("write units per extra endpoint measured %q, want 7.00", tc.Measured)
		}
	}
}

// TestQuotaTarget checks that the quota target reads queue
// mode's ceilings in the large regions at 2% first-attempt failure (the
// recovers mix), at either fan-out, and nothing else.
func TestQuotaTarget(t *testing.T) {
	ceiling := func(regions string, mode Mode, failure Failure, share float64, fanOut int, perSec float64) Ceiling {
		return Ceiling{Regions: regions, Mode: mode, Failure: failure, FailShare: share, FanOut: fanOut, PerSec: perSec,
			LimitedBy: fmt.Sprintf("bound %d", fanOut), TableRaisedPerSec: 2 * perSec, TableRaisedLimitedBy: "next"}
	}
	first := func(fanOut int, perSec float64) Ceiling {
		return ceiling(bigRegions.Name, ModeQueue, FailFirstAttempt, 0.02, fanOut, perSec)
	}
	tests := []struct {
		name     string
		ceilings []Ceiling
		met      bool
		measured string
		note     string
	}{
		{"holds at fan-out 10 only", []Ceiling{first(1, 9000), first(10, 12_000)}, true,
			"fan-out 1: 9000/s, bound by bound 1; fan-out 10: 12000/s, bound by bound 10", "holds at fan-out 10 "},
		{"holds at neither", []Ceiling{first(1, 5000), first(10, 7500)}, false,
			"fan-out 1: 5000/s, bound by bound 1; fan-out 10: 7500/s, bound by bound 10", "holds at no fan-out modelled"},
		{"exactly 10,000 holds", []Ceiling{first(1, 10_000)}, true, "fan-out 1: 10000/s, bound by bound 1", "holds at fan-out 1 "},
		// Other mixes, modes, regions and shares do not count.
		{"only other ceilings above", []Ceiling{
			first(1, 5000),
			ceiling(bigRegions.Name, ModeQueue, FailEveryAttempt, 0.02, 1, 20_000),
			ceiling(bigRegions.Name, ModeStepFunctions, FailFirstAttempt, 0.02, 1, 20_000),
			ceiling(otherRegions.Name, ModeQueue, FailFirstAttempt, 0.02, 1, 20_000),
			ceiling(bigRegions.Name, ModeQueue, FailFirstAttempt, 0, 1, 20_000),
		}, false, "fan-out 1: 5000/s, bound by bound 1", "raised (a quota increase request): fan-out 1 10000/s, bound by next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []TargetCheck
			quotaTarget(&QuotaModel{Ceilings: tt.ceilings}, func(name string, met bool, measured, note string) {
				got = append(got, TargetCheck{Name: name, Met: met, Measured: measured, Note: note})
			})
			if len(got) != 1 {
				t.Fatalf("%d targets, want 1: %+v", len(got), got)
			}
			if g := got[0]; g.Met != tt.met || g.Measured != tt.measured || !strings.Contains(g.Note, tt.note) ||
				g.Name != "queue: quota ceiling ≥ 10,000 deliveries/s at 2% first-attempt failure, large regions" {
				t.Errorf("got %+v, want met %v, measured %q, a note with %q", g, tt.met, tt.measured, tt.note)
			}
		})
	}
	var none []TargetCheck
	quotaTarget(&QuotaModel{Ceilings: []Ceiling{ceiling(bigRegions.Name, ModeQueue, FailEveryAttempt, 0.02, 1, 20_000)}},
		func(name string, met bool, measured, note string) { none = append(none, TargetCheck{Name: name}) })
	if len(none) != 0 {
		t.Errorf("no first-attempt ceiling modelled: got %+v, want the target left out", none)
	}
}

func TestMeterSortsStorageByLifetime(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	expires := func(d time.Duration) item {
		return item{"pk": s("X"), "sk": s("Y"), dynamo.TTLAttribute: &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d).Unix(), 10)}}
	}
	for _, tc := range []struct {
		name               string
		it                 item
		retained, byteDays bool
	}{
		{"kept with its message (30 days)", expires(30 * 24 * time.Hour), true, false},
		{"idempotency record (24 h)", expires(24 * time.Hour), false, true},
		{"no TTL (an endpoint)", item{"pk": s("X"), "sk": s("Y")}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newIndexMeter(nil, dynamo.TableSchema("t"))
			m.now = func() time.Time { return now }
			m.account(nil, tc.it)
			size := storedSize(tc.it)
			var retained, byteDays float64
			if tc.retained {
				retained = size
			}
			if tc.byteDays {
				byteDays = size // for one day
			}
			if !near(m.retained, retained) || !near(m.byteDays, byteDays) {
				t.Errorf("retained %g bytes and %g byte-days, want %g and %g", m.retained, m.byteDays, retained, byteDays)
			}
			if m.stored != size {
				t.Errorf("stored %g, want %g", m.stored, size)
			}
		})
	}
}

func TestPartitionClass(t *testing.T) {
	for _, tc := range []struct {
		index, pk, want string
	}{
		{"sweep", "U#7", "sweep U"},
		{"sweep", "U#0", "sweep U"},
		{"sweep", "FAILING", "sweep FAILING"},
		{"byEndpoint", "EP#app_2pX9#ep_2pY8#3", "byEndpoint EP#<app>#<ep>"},
		{"byEndpoint", "EP#app_2pX9#ep_2pY8", "byEndpoint EP#<app>#<ep>"}, // shard 0
		{"list", "MSG#app_2pX9#5", "list MSG#<app>"},
		{"list", "APP", "list APP"},
	} {
		if got := partitionClass(tc.index, s(tc.pk)); got != tc.want {
			t.Errorf("partitionClass(%s, %s) = %q, want %q", tc.index, tc.pk, got, tc.want)
		}
	}
}

func TestBenchClockOnlyMovesForward(t *testing.T) {
	c := &benchClock{}
	ahead := time.Now().Add(5 * time.Hour)
	c.advanceTo(ahead)
	if d := c.Now().Sub(ahead); d < 0 || d > time.Second {
		t.Errorf("advanced to %v, now %v", ahead, c.Now())
	}
	c.advanceTo(time.Now())
	if c.Now().Before(ahead) {
		t.Errorf("a time behind moved the clock back: %v", c.Now())
	}
	c.reset()
	if d := time.Since(c.Now()); d > time.Second || d < -time.Second {
		t.Errorf("reset: now %v", c.Now())
	}
}

func TestIdempotencyKeyIsTheSDKs(t *testing.T) {
	uuid := regexp.MustCompile(`^auto_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := idempotencyKey(), idempotencyKey()
	if !uuid.MatchString(a) || a == b {
		t.Errorf("keys %q, %q: want two different auto_<uuid v4>", a, b)
	}
}
