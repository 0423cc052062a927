package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// The region classes of RegionClasses.
var (
	bigRegions   = RegionClasses[0] // us-east-1, us-west-2, eu-west-1
	otherRegions = RegionClasses[1]
	newRegions   = RegionClasses[2]
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestRegionQuotasAreAWSs(t *testing.T) {
	for _, tt := range []struct {
		q                  RegionQuotas
		start, transitions Bucket
		apiGateway         float64
	}{
		{bigRegions, Bucket{1300, 300}, Bucket{5000, 1500}, 10_000},
		{otherRegions, Bucket{800, 150}, Bucket{800, 500}, 10_000},
		{newRegions, Bucket{800, 150}, Bucket{800, 500}, 2_500},
	} {
		if tt.q.StartExecution != tt.start || tt.q.StateTransitions != tt.transitions || tt.q.APIGatewayRPS != tt.apiGateway {
			t.Errorf("%s: got %+v, want StartExecution %+v, transitions %+v, API Gateway %g/s", tt.q.Regions, tt.q, tt.start, tt.transitions, tt.apiGateway)
		}
	}
	if !strings.HasPrefix(bigRegions.Regions, "us-east-1, us-west-2, eu-west-1") {
		t.Errorf("the first class is %q, want the large regions", bigRegions.Regions)
	}
}

func TestLimitIsQuotaOverUse(t *testing.T) {
	for _, tt := range []struct {
		quota, use, want float64
	}{
		{300, 1, 300},
		{1500, 0.5, 3000},
		{40_000, 8, 5000},
		{10_000, 0, 0}, // not used: no bound
	} {
		if got := limit("x", tt.quota, tt.use, "u").PerSec; !near(got, tt.want) {
			t.Errorf("limit(%g / %g) = %g deliveries/s, want %g", tt.quota, tt.use, got, tt.want)
		}
	}
}

// usages are a happy and an exhausted delivery shaped like queue mode's:
// the happy one starts no execution, the exhausted one one execution of
// 25 transitions.
func usages() (happy, exhausted Usage) {
	happy = Usage{
		APIRequests: 1, LambdaSeconds: 0.05, ReceiverWaits: 0.1, InFlightSeconds: 0.1, InFlightWaits: 1,
		DynamoDB: Units{TableWriteUnits: 4, ReadUnits: 8, Partitions: map[string]float64{
			"sweep U": 2, "byEndpoint EP#<app>#<ep>": 4, "list MSG#<app>": 1,
		}},
	}
	exhausted = Usage{
		APIRequests: 1, LambdaSeconds: 0.5, ReceiverWaits: 7.2, Executions: 1, StateTransitions: 25,
		InFlightSeconds: 0.3, InFlightWaits: 2,
		DynamoDB: Units{TableWriteUnits: 20, ReadUnits: 50, Partitions: map[string]float64{"sweep U": 20, "byEndpoint EP#<app>#<ep>": 30}},
	}
	return happy, exhausted
}

func TestCeilingTakesTheSmallestLimit(t *testing.T) {
	happy, exhausted := usages()
	tests := []struct {
		name      string
		q         RegionQuotas
		share     float64
		perSec    float64
		limitedBy string
		next      string
		hot       float64
		hotBy     string
		raised    float64 // with the per-table quota raised
		raisedBy  string
	}{
		// 40,000 RRU / 8 = 5,000; then the 16 sweep shards' 16,000 WCU/s
		// / 2, which no quota request raises; one endpoint's 8 shards
		// take 8,000 / 4.
		{"no failures: table reads", bigRegions, 0, 5000, "DynamoDB table reads", "DynamoDB partition sweep U (16)", 2000, "DynamoDB partition byEndpoint EP#<app>#<ep> (8)",
			8000, "DynamoDB partition sweep U (16)"},
		// 2% exhaust: 0.5 transitions per delivery against 1,500/s; reads
		// 0.98 × 8 + 0.02 × 50; one endpoint 8,000 / (0.98 × 4 + 0.02 × 30).
		{"2% failing, large regions: transitions", bigRegions, 0.02, 3000, "Step Functions state transitions", "DynamoDB table reads", 1769.9, "DynamoDB partition byEndpoint EP#<app>#<ep> (8)",
			3000, "Step Functions state transitions"},
		{"2% failing, other regions: 500/s", otherRegions, 0.02, 1000, "Step Functions state transitions", "DynamoDB table reads", 1000, "Step Functions state transitions",
			1000, "Step Functions state transitions"},
		{"no failures, newer regions: API Gateway's 2,500", newRegions, 0, 2500, "API Gateway requests", "DynamoDB table reads", 2000, "DynamoDB partition byEndpoint EP#<app>#<ep> (8)",
			2500, "API Gateway requests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ceiling(tt.q, ModeQueue, happy, exhausted, tt.share, 0.2)
			if !near(c.PerSec, tt.perSec) || c.LimitedBy != tt.limitedBy || c.Next != tt.next {
				t.Errorf("got %.1f/s by %q then %q, want %.1f/s by %q then %q", c.PerSec, c.LimitedBy, c.Next, tt.perSec, tt.limitedBy, tt.next)
			}
			if !near(c.OneEndpoint, tt.hot) || c.OneEndpointLimitedBy != tt.hotBy {
				t.Errorf("one endpoint: got %.1f/s by %q, want %.1f/s by %q", c.OneEndpoint, c.OneEndpointLimitedBy, tt.hot, tt.hotBy)
			}
			if !near(c.TableRaisedPerSec, tt.raised) || c.TableRaisedLimitedBy != tt.raisedBy {
				t.Errorf("per-table quota raised: got %.1f/s by %q, want %.1f/s by %q", c.TableRaisedPerSec, c.TableRaisedLimitedBy, tt.raised, tt.raisedBy)
			}
		})
	}
}

func TestLimitsPerQuota(t *testing.T) {
	happy, _ := usages()
	happy.DynamoDB.Partitions["sweep FAILING"] = 0.5
	region, oneEndpoint := limits(bigRegions, happy, 0.2)
	want := map[string]float64{
		"Step Functions StartExecution":    0, // no execution
		"Step Functions state transitions": 0,
		// 0.05 s + 0.1 waits × 0.2 s = 0.07 s per delivery.
		"Lambda concurrency": 1000 / 0.07,
		// in flight 0.1 s + 1 wait × 0.2 s.
		"SQS in-flight messages": 120_000 / 0.3,
		"API Gateway requests":   10_000,
		"DynamoDB table writes":  10_000,
		"DynamoDB table reads":   5000,
		// 16 shards of 1,000 WCU/s, 2 per delivery; FAILING is one.
		"DynamoDB partition sweep U (16)":      8000,
		"DynamoDB partition sweep FAILING (1)": 2000,
		"DynamoDB index byEndpoint writes":     10_000,
		"DynamoDB index list writes":           40_000,
		"DynamoDB index sweep writes":          16_000,
	}
	got := map[string]float64{}
	for _, l := range region {
		got[l.Name] = l.PerSec
		// The table's and its indexes' throughput quotas, and only
		// those, are the per-table quota a request raises.
		if want := strings.HasPrefix(l.Name, "DynamoDB table") || strings.HasPrefix(l.Name, "DynamoDB index"); l.PerTable != want {
			t.Errorf("%s: per-table quota %v, want %v", l.Name, l.PerTable, want)
		}
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || math.Abs(g-w) > 0.1 {
			t.Errorf("%s: %g deliveries/s (present %v), want %g", name, g, ok, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d region limits, want %d: %v", len(got), len(want), got)
	}
	hot := map[string]float64{}
	for _, l := range oneEndpoint {
		hot[l.Name] = l.PerSec
	}
	if hot["DynamoDB partition byEndpoint EP#<app>#<ep> (8)"] != 2000 || hot["DynamoDB partition list MSG#<app> (8)"] != 8000 || len(hot) != 2 {
		t.Errorf("one endpoint's limits = %v, want its 8 endpoint shards (2,000/s) and its app's 8 message shards (8,000/s)", hot)
	}
}

func TestBurstStartTime(t *testing.T) {
	tests := []struct {
		name             string
		q                RegionQuotas
		messages, fanOut int
		starts           float64
		want             float64
	}{
		{"10,000 at fan-out 1, big regions: 1,300 at once, 8,700 at 300/s", bigRegions, 10_000, 1, 1, 29},
		{"10,000 at fan-out 1, other regions: 800 at once, 9,200 at 150/s", otherRegions, 10_000, 1, 1, 61.3},
		{"1,000 at fan-out 10 is 10,000 starts", bigRegions, 1_000, 10, 1, 29},
		{"within the burst: at once", bigRegions, 1_300, 1, 1, 0},
		{"no starts (queue mode)", bigRegions, 10_000, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := burstStart(tt.q, tt.messages, tt.fanOut, tt.starts)
			if !near(got.StartsSeconds, tt.want) || got.Messages != tt.messages || got.FanOut != tt.fanOut {
				t.Errorf("burstStart = %+v, want %g s", got, tt.want)
			}
		})
	}
}

// TestModelQuotas checks the model on stepfunctions mode's shape (one
// start per delivery; 3 transitions when happy, 9 when it recovers on
// attempt 3, 28 when exhausted) and queue mode's, at fan-out 1 and 10,
// and that the table shows it.
func TestModelQuotas(t *testing.T) {
	qHappy, qExhausted := usages()
	qRecovers := Usage{
		APIRequests: 1, LambdaSeconds: 0.1, ReceiverWaits: 1.2, Executions: 1, StateTransitions: 6,
		InFlightSeconds: 0.2, InFlightWaits: 2,
		DynamoDB: Units{TableWriteUnits: 9, ReadUnits: 17, Partitions: map[string]float64{"byEndpoint EP#<app>#<ep>": 10}},
	}
	// At fan-out 10 a delivery's share of its message's request and
	// writes is a tenth: 0.1 requests, 2.8 fewer reads and 2.7 fewer
	// writes per delivery.
	atTen := func(u Usage) Usage {
		u.APIRequests = 0.1
		u.DynamoDB.ReadUnits -= 2.8
		u.DynamoDB.TableWriteUnits -= 2.7
		return u
	}
	sHappy := Usage{APIRequests: 1, Executions: 1, StateTransitions: 3, LambdaSeconds: 0.06, ReceiverWaits: 1}
	sRecovers := Usage{APIRequests: 1, Executions: 1, StateTransitions: 9, LambdaSeconds: 0.1, ReceiverWaits: 3}
	sExhausted := Usage{APIRequests: 1, Executions: 1, StateTransitions: 28, LambdaSeconds: 0.3, ReceiverWaits: 9}
	// No exhausted deliveries at fan-out 10, and none in stepfunctions
	// mode at all: left out.
	m := modelQuotas(RegionClasses[:2], map[Mode]pathUsages{
		ModeStepFunctions: {{fateHappy, 1}: sHappy, {fateRecovers, 1}: sRecovers, {fateExhausted, 1}: sExhausted},
		ModeQueue: {
			{fateHappy, 1}: qHappy, {fateRecovers, 1}: qRecovers, {fateExhausted, 1}: qExhausted,
			{fateHappy, 10}: atTen(qHappy), {fateRecovers, 10}: atTen(qRecovers),
		},
	})
	type key struct {
		regions string
		mode    Mode
		failure Failure
		share   float64
		fanOut  int
	}
	want := map[key]float64{
		{bigRegions.Name, ModeStepFunctions, FailFirstAttempt, 0, 1}: 300,
		// 3.6 transitions per delivery allow 417/s: StartExecution's
		// 300 still binds.
		{bigRegions.Name, ModeStepFunctions, FailFirstAttempt, 0.10, 1}: 300,
		{bigRegions.Name, ModeStepFunctions, FailEveryAttempt, 0.10, 1}: 1500 / 5.5,
		{otherRegions.Name, ModeStepFunctions, FailFirstAttempt, 0, 1}:  150,
		// 500 / 3.12 = 160 transitions-bound; starts bind at 150.
		{otherRegions.Name, ModeStepFunctions, FailFirstAttempt, 0.02, 1}: 150,
		{otherRegions.Name, ModeStepFunctions, FailEveryAttempt, 0.02, 1}: 500 / 3.5,
		// Reads: 0.98 × 8 + 0.02 × 17 = 8.18 RRU per delivery.
		{bigRegions.Name, ModeQueue, FailFirstAttempt, 0.02, 1}: 40_000 / 8.18,
		// Reads: 0.98 × 5.2 + 0.02 × 14.2 = 5.38.
		{bigRegions.Name, ModeQueue, FailFirstAttempt, 0.02, 10}: 40_000 / 5.38,
		// Transitions: 0.1 × 6 = 0.6 per delivery.
		{bigRegions.Name, ModeQueue, FailFirstAttempt, 0.10, 1}: 2500,
		{bigRegions.Name, ModeQueue, FailEveryAttempt, 0.02, 1}: 3000,
		{bigRegions.Name, ModeQueue, FailEveryAttempt, 0.10, 1}: 600,
		// 0.12 transitions per delivery against 500/s bind before reads.
		{otherRegions.Name, ModeQueue, FailFirstAttempt, 0.02, 1}: 500 / 0.12,
	}
	// Per region: stepfunctions 2 failures × 3 shares; queue the same
	// plus first-attempt failure at fan-out 10.
	if n := 2 * (6 + 9); len(m.Ceilings) != n {
		t.Fatalf("%d ceilings, want %d", len(m.Ceilings), n)
	}
	for k, w := range want {
		c, ok := m.ceiling(k.regions, k.mode, k.failure, k.share, k.fanOut)
		if !ok || math.Abs(c.PerSec-w) > 0.1 {
			t.Errorf("%+v: %.1f/s (found %v), want %.1f/s", k, c.PerSec, ok, w)
		}
	}
	if _, ok := m.ceiling(bigRegions.Name, ModeQueue, FailEveryAttempt, 0.02, 10); ok {
		t.Errorf("a ceiling at fan-out 10 without exhausted deliveries at fan-out 10")
	}
	// Past the table's 40,000 RRU: the sweep index's 16 shards, 16,000
	// WCU/s / (0.98 × 2) per delivery; a quota request does not raise
	// partitions.
	for _, fanOut := range []int{1, 10} {
		c, _ := m.ceiling(bigRegions.Name, ModeQueue, FailFirstAttempt, 0.02, fanOut)
		if !near(c.TableRaisedPerSec, round(16_000/1.96, 1)) || c.TableRaisedLimitedBy != "DynamoDB partition sweep U (16)" {
			t.Errorf("fan-out %d, per-table quota raised: %.1f/s by %q, want %.1f/s by the sweep shards", fanOut, c.TableRaisedPerSec, c.TableRaisedLimitedBy, 16_000/1.96)
		}
	}
	if len(m.Bursts) != 2 || m.Bursts[0].StartsSeconds != 29 || m.Bursts[1].StartsSeconds != 61.3 {
		t.Errorf("bursts %+v, want 29 s and 61.3 s", m.Bursts)
	}
	var out bytes.Buffer
	m.writeTable(&out)
	for _, s := range []string{"3000", "4890", "7435", "8163", "Step Functions state transitions", "per account and region",
		"docs.aws.amazon.com/apigateway", "When hit:", "200 ms", failureTitles[FailFirstAttempt], failureTitles[FailEveryAttempt],
		"NEEDS A QUOTA INCREASE REQUEST", "fan-out 10 8163/s, bound by DynamoDB partition sweep U (16)"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}
