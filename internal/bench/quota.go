package bench

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hookstep/hookstep/internal/dynamo"
)

// Bucket is a token-bucket quota: Burst tokens at once, refilled at
// RefillPerSec.
type Bucket struct {
	Burst        float64 `json:"burst"`
	RefillPerSec float64 `json:"refillPerSec"`
}

// seconds is how long n tokens take: the burst at once, the rest at the
// refill rate.
func (b Bucket) seconds(n float64) float64 {
	return math.Max(0, n-b.Burst) / b.RefillPerSec
}

// RegionQuotas are the default quotas that differ between classes of
// regions. All are per account and region, and soft: AWS raises them on
// request (new accounts may start lower).
type RegionQuotas struct {
	// Name is the class's short name; Regions lists them.
	Name             string `json:"name"`
	Regions          string `json:"regions"`
	StartExecution   Bucket `json:"startExecution"`
	StateTransitions Bucket `json:"stateTransitions"`
	// APIGatewayRPS is API Gateway's account throttle, shared by REST,
	// HTTP and WebSocket APIs.
	APIGatewayRPS float64 `json:"apiGatewayRequestsPerSec"`
}

// LargeRegions is the name of the class of the three large regions, the
// issue's target's.
const LargeRegions = "large regions"

// RegionClasses are the region classes: Step Functions' quotas are
// higher in the three large regions, API Gateway's lower in the newer
// ones. Sources: QuotaSources.
var RegionClasses = []RegionQuotas{
	{
		Name:             LargeRegions,
		Regions:          "us-east-1, us-west-2, eu-west-1",
		StartExecution:   Bucket{Burst: 1300, RefillPerSec: 300},
		StateTransitions: Bucket{Burst: 5000, RefillPerSec: 1500},
		APIGatewayRPS:    10_000,
	},
	{
		Name:             "other regions",
		Regions:          "the other regions but the newer ones below",
		StartExecution:   Bucket{Burst: 800, RefillPerSec: 150},
		StateTransitions: Bucket{Burst: 800, RefillPerSec: 500},
		APIGatewayRPS:    10_000,
	},
	{
		Name:             "newer regions",
		Regions:          "af-south-1, eu-south-1/2, eu-central-2, ap-south-2, ap-southeast-3/4/5/7, me-central-1, il-central-1, ca-west-1, mx-central-1",
		StartExecution:   Bucket{Burst: 800, RefillPerSec: 150},
		StateTransitions: Bucket{Burst: 800, RefillPerSec: 500},
		APIGatewayRPS:    2_500,
	},
}

// The default quotas that are the same in every region.
const (
	// lambdaConcurrency is the account's concurrent executions.
	lambdaConcurrency = 1000
	// sqsInFlight is a standard queue's in-flight messages (received,
	// not deleted).
	sqsInFlight = 120_000
	// tableUnits is an on-demand table's, and each of its global
	// secondary indexes', read and write request units a second.
	tableUnits = 40_000
	// partitionWriteUnits is one partition's write units a second.
	partitionWriteUnits = 1000
)

// QuotaSource is one quota as the model uses it: its value, where it is
// documented, and what happens when hookstep reaches it.
type QuotaSource struct {
	Quota   string `json:"quota"`
	Value   string `json:"value"`
	Source  string `json:"source"`
	WhenHit string `json:"whenHit"`
}

// QuotaSources are the quotas of the model.
var QuotaSources = []QuotaSource{
	{"Step Functions StartExecution (Standard)", "bucket 1,300, refill 300/s in us-east-1, us-west-2, eu-west-1; 800 and 150/s elsewhere",
		"Step Functions Developer Guide, quotas related to API action throttling (awsdocs/aws-step-functions-developer-guide doc_source/limits-overview.md; docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html)",
		"ThrottlingException: the api hands the rest of a message's runs to the sweeper, which starts them at dispatchRate; in queue mode deliver's start fails the SQS record, which comes back after a backoff. Alarm: DispatchBacklog"},
	{"Step Functions state transitions (Standard)", "bucket 5,000, refill 1,500/s in us-east-1, us-west-2, eu-west-1; 800 and 500/s elsewhere; new accounts start lower",
		"the same page, quotas related to state throttling (the current page's table was not in the stored copy; these are the guide's published numbers)",
		"ExecutionThrottled: executions, and so retries, run late; none is lost"},
	{"Lambda concurrent executions", "1,000 per account and region (new accounts lower)",
		"docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
		"invocations are throttled: the REST API answers 500 (HTTP API 503), the Svix SDKs retry; the SQS event source mapping backs off and messages wait in the queue; a Task retries with backoff. The stack's reserved concurrencies (api 100, deliver 300, queueConcurrency 100) bind before it"},
	{"Lambda SQS event source mapping", "5 concurrent batches at first, up to 300 more a minute, at most 1,000 batches at once per mapping",
		"docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
		"a burst waits in the queue while the mapping scales"},
	{"SQS standard queue", "nearly unlimited API calls per second per action; about 120,000 messages in flight per queue",
		"docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html and quotas-queues.html",
		"past 120,000 in flight, long-polling receives return nothing: first attempts wait; sends still succeed"},
	{"API Gateway account throttle", "10,000 requests/s per account and region across REST, HTTP and WebSocket APIs (burst set by AWS); 2,500/s in the newer regions listed",
		"docs.aws.amazon.com/apigateway/latest/developerguide/limits.html",
		"429 Too Many Requests without running the function; the SDKs retry. The stack's stage throttle (100/s, burst 200) binds first"},
	{"DynamoDB on-demand table", "40,000 read and 40,000 write request units a second per table; the model applies the same to each global secondary index",
		"docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html (per table, on demand; the per-GSI reading is this model's, from the page's wording for provisioned tables)",
		"ThrottlingException: the SDK retries, then the call fails: the api answers 5xx, a deliver Task fails into its Catch (Reconcile), a queue record comes back"},
	{"DynamoDB partition", "1,000 write and 3,000 read units a second per partition, table or index",
		"docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html",
		"the partition's writes are throttled (KeyRangeThroughputExceeded) while the table has room; GSI throttling slows the table's writes too"},
	{"DynamoDB new on-demand table", "serves 12,000 read and 4,000 write units a second at once, more as traffic grows (warm throughput)",
		"the same page",
		"a cold table throttles a sudden peak above that; the stack's warm throughput props raise it ahead"},
}

// FailShares are the shares of failing deliveries at which the model
// gives the ceilings.
var FailShares = []float64{0, 0.02, 0.10}

// Failure is what a failing delivery does, in a set of ceilings.
type Failure string

// The failures the model mixes with happy deliveries.
const (
	// FailFirstAttempt: the delivery fails its first attempt and the
	// immediate retry and is delivered on attempt recoversOnAttempt
	// (the recovers path): a receiver's blip. The issue's "first-attempt
	// failure".
	FailFirstAttempt Failure = "first attempt"
	// FailEveryAttempt: the delivery fails every attempt until the
	// schedule is spent (the exhausted path): an endpoint that is down,
	// a steady state.
	FailEveryAttempt Failure = "every attempt"
)

// Failures are the failures, in the order the report shows them.
var Failures = []Failure{FailFirstAttempt, FailEveryAttempt}

// fate is the failing deliveries' fate.
func (f Failure) fate() fate {
	if f == FailFirstAttempt {
		return fateRecovers
	}
	return fateExhausted
}

// QuotaFanOuts are the fan-outs at which the model gives the ceilings: a
// message per delivery (the most API requests and message writes per
// delivery), and a message to 10 endpoints, which share them.
var QuotaFanOuts = []int{1, 10}

// receiverMs is how long the model assumes a receiver takes to answer an
// attempt in AWS (the bench's loopback receivers answer at once): it
// holds the invocation that waits for it.
const receiverMs = 200

// burstMessages is the burst whose start time the model shows, at fan-out 1.
const burstMessages = 10_000

// shardedPartitions are the index partition classes (partitionClass)
// that dynamo spreads over several partitions, and how many: an
// endpoint's and an app's entries, and the unfinished deliveries.
var shardedPartitions = map[string]int{
	dynamo.IndexSweep + " U":                dynamo.SweepShards,
	dynamo.IndexEndpoint + " EP#<app>#<ep>": dynamo.EndpointShards,
	dynamo.IndexList + " MSG#<app>":         dynamo.MessageShards,
}

// Limit is one quota's bound on deliveries.
type Limit struct {
	Name string `json:"name"`
	// Use is how much of the quota one delivery uses, in Unit; PerSec
	// the deliveries a second the quota allows (Quota / Use), 0 when a
	// delivery does not use it.
	Quota  float64 `json:"quota"`
	Use    float64 `json:"usePerDelivery"`
	Unit   string  `json:"unit"`
	PerSec float64 `json:"deliveriesPerSec"`
	// PerTable says the bound is DynamoDB's per-table on-demand
	// throughput quota (the table's, or one index's): soft, raised on
	// request through Service Quotas.
	PerTable bool `json:"perTableQuota,omitempty"`
}

func limit(name string, quota, use float64, unit string) Limit {
	l := Limit{Name: name, Quota: quota, Use: round(use, 4), Unit: unit}
	if use > 0 {
		l.PerSec = round(quota/use, 1)
	}
	return l
}

// Ceiling is the sustained deliveries a second one mode allows in a
// region class at a fan-out and a share of deliveries failing as
// Failure says: the smallest of the limits, and which.
type Ceiling struct {
	Regions   string  `json:"regions"` // the class's name
	Mode      Mode    `json:"mode"`
	Failure   Failure `json:"failure"`
	FailShare float64 `json:"failShare"`
	FanOut    int     `json:"fanOut"`
	PerSec    float64 `json:"deliveriesPerSec"`
	LimitedBy string  `json:"limitedBy"`
	// Next is the second smallest.
	Next       string  `json:"next"`
	NextPerSec float64 `json:"nextPerSec"`
	// TableRaised is the ceiling with DynamoDB's per-table on-demand
	// throughput quotas raised (a quota increase request): the smallest
	// of the other limits, and which.
	TableRaisedPerSec    float64 `json:"tableQuotaRaisedPerSec"`
	TableRaisedLimitedBy string  `json:"tableQuotaRaisedLimitedBy"`
	// OneEndpoint is the ceiling when every delivery goes to one
	// endpoint of one app (its partitions), and which partition.
	OneEndpoint          float64 `json:"oneEndpointPerSec"`
	OneEndpointLimitedBy string  `json:"oneEndpointLimitedBy"`
	Limits               []Limit `json:"limits"`
}

// BurstStart is how long a burst of messages takes to start in
// stepfunctions mode.
type BurstStart struct {
	Regions       string  `json:"regions"`
	Messages      int     `json:"messages"`
	FanOut        int     `json:"fanOut"`
	StartsSeconds float64 `json:"allStartedAfterSeconds"`
}

// QuotaModel is the throughput the default quotas allow each mode.
type QuotaModel struct {
	Assumptions []string       `json:"assumptions"`
	Regions     []RegionQuotas `json:"regionClasses"`
	Sources     []QuotaSource  `json:"sources"`
	Ceilings    []Ceiling      `json:"ceilings"`
	Bursts      []BurstStart   `json:"stepFunctionsBursts"`
	Notes       []string       `json:"notes"`
}

// limits are the bounds quotas q put on deliveries that each use u, in a
// mode: those of the region, and those of one endpoint's partitions.
func limits(q RegionQuotas, u Usage, receiverSec float64) (region, oneEndpoint []Limit) {
	db := u.DynamoDB
	region = []Limit{
		limit("Step Functions StartExecution", q.StartExecution.RefillPerSec, u.Executions, "starts/s"),
		limit("Step Functions state transitions", q.StateTransitions.RefillPerSec, u.StateTransitions, "transitions/s"),
		limit("Lambda concurrency", lambdaConcurrency, u.LambdaSeconds+u.ReceiverWaits*receiverSec, "concurrent executions (seconds per delivery)"),
		limit("SQS in-flight messages", sqsInFlight, u.InFlightSeconds+u.InFlightWaits*receiverSec, "messages in flight (seconds per delivery)"),
		limit("API Gateway requests", q.APIGatewayRPS, u.APIRequests, "requests/s"),
		perTable(limit("DynamoDB table writes", tableUnits, db.TableWriteUnits, "WRU/s")),
		perTable(limit("DynamoDB table reads", tableUnits, db.ReadUnits, "RRU/s")),
	}
	perIndex := map[string]float64{}
	for _, class := range slices.Sorted(maps.Keys(db.Partitions)) {
		use := db.Partitions[class]
		index, key, _ := strings.Cut(class, " ")
		perIndex[index] += use
		partitions := float64(max(1, shardedPartitions[class]))
		l := limit(fmt.Sprintf("DynamoDB partition %s %s (%.0f)", index, key, partitions), partitions*partitionWriteUnits, use, "WCU/s")
		switch {
		case strings.Contains(key, "<msg>"): // a partition per message
		case strings.Contains(key, "<ep>"), strings.Contains(key, "<app>"):
			oneEndpoint = append(oneEndpoint, l)
		default:
			region = append(region, l)
		}
	}
	for _, index := range slices.Sorted(maps.Keys(perIndex)) {
		region = append(region, perTable(limit("DynamoDB index "+index+" writes", tableUnits, perIndex[index], "WRU/s")))
	}
	return region, oneEndpoint
}

// perTable marks l as a bound of the per-table throughput quota.
func perTable(l Limit) Limit {
	l.PerTable = true
	return l
}

// lowest returns the two smallest bounds among ls (0 = no bound).
func lowest(ls []Limit) (first, second Limit) {
	bounded := slices.DeleteFunc(slices.Clone(ls), func(l Limit) bool { return l.PerSec == 0 })
	slices.SortStableFunc(bounded, func(a, b Limit) int { return cmp.Compare(a.PerSec, b.PerSec) })
	if len(bounded) > 0 {
		first = bounded[0]
	}
	if len(bounded) > 1 {
		second = bounded[1]
	}
	return first, second
}

// ceiling is what quotas q allow a mode whose deliveries use happy, a
// share of them failing instead.
func ceiling(q RegionQuotas, mode Mode, happy, failing Usage, share, receiverSec float64) Ceiling {
	region, oneEndpoint := limits(q, happy.mix(failing, share), receiverSec)
	all := append(slices.Clip(region), oneEndpoint...)
	first, second := lowest(region)
	hot, _ := lowest(all)
	raised, _ := lowest(slices.DeleteFunc(slices.Clone(region), func(l Limit) bool { return l.PerTable }))
	return Ceiling{Regions: q.Name, Mode: mode, FailShare: share, PerSec: first.PerSec, LimitedBy: first.Name,
		Next: second.Name, NextPerSec: second.PerSec,
		TableRaisedPerSec: raised.PerSec, TableRaisedLimitedBy: raised.Name,
		OneEndpoint: hot.PerSec, OneEndpointLimitedBy: hot.Name, Limits: all}
}

// burstStart is how long messages at fanOut take to start, each delivery
// making starts StartExecution calls: the bucket's burst at once, the
// rest at its refill rate.
func burstStart(q RegionQuotas, messages, fanOut int, starts float64) BurstStart {
	return BurstStart{
		Regions: q.Name, Messages: messages, FanOut: fanOut,
		StartsSeconds: round(q.StartExecution.seconds(float64(messages*fanOut)*starts), 1),
	}
}

// pathUsages are a mode's deliveries' usage by fate and fan-out, behind
// the REST API: what the quota model mixes.
type pathUsages map[pathShape]Usage

// modelQuotas computes the ceilings of each mode in each region class, for
// each failure, at each fan-out and share of failing deliveries: the
// happy deliveries' usage mixed with the failing ones'. A fan-out whose
// usages are missing is left out.
func modelQuotas(regions []RegionQuotas, usages map[Mode]pathUsages) *QuotaModel {
	m := &QuotaModel{
		Assumptions: []string{
			"fan-out 1 (a message per delivery: the most API requests and message writes per delivery) and 10 (a message to 10 endpoints: its API request and writes shared by 10 deliveries), REST API",
			fmt.Sprintf("first-attempt failure (the issue's): a failing delivery fails its first attempt and the immediate retry and is delivered on attempt %d, 5 s later (a receiver's blip), its endpoint healthy before and after", recoversOnAttempt),
			"endpoint down: a failing delivery fails every attempt until the schedule is spent, spending its executions, transitions and retries over the schedule's 27.6 h; a steady state",
			fmt.Sprintf("receivers answer each attempt in %d ms (assumed; the bench's loopback receivers answer at once): an invocation is busy that long per POST it waits for, a queue batch's records waiting together", receiverMs),
			fmt.Sprintf("queue mode: full batches of %d", queueBatch),
			"traffic spread over many apps and endpoints; \"one endpoint\" is the ceiling when all of it goes to one endpoint of one app (its index partitions; its item's reads are not counted)",
		},
		Regions: regions,
		Sources: QuotaSources,
	}
	for _, q := range regions {
		for _, mode := range Modes {
			for _, failure := range Failures {
				for _, fanOut := range QuotaFanOuts {
					happy, ok := usages[mode][pathShape{fateHappy, fanOut}]
					failing, okFailing := usages[mode][pathShape{failure.fate(), fanOut}]
					if !ok || !okFailing {
						continue
					}
					for _, share := range FailShares {
						c := ceiling(q, mode, happy, failing, share, receiverMs/1000.0)
						c.Failure, c.FanOut = failure, fanOut
						m.Ceilings = append(m.Ceilings, c)
					}
				}
			}
		}
		m.Bursts = append(m.Bursts, burstStart(q, burstMessages, 1, usages[ModeStepFunctions][pathShape{fateHappy, 1}].Executions))
	}
	m.Notes = append(m.Notes,
		"Sustained deliveries/s = min over the quotas of quota / use per delivery; StartExecution and transitions use their refill rates (the buckets absorb bursts only).",
		"stepfunctions mode starts an execution per delivery (the api starts a message's first 25, the sweeper the rest at dispatchRate); queue mode only for a delivery whose attempts made off the SQS message failed.",
		"API Gateway's account throttle (10,000 requests/s) alone caps fan-out 1 at 10,000 deliveries/s; at fan-out 10 a request carries 10 deliveries.",
		"A default deployment is bound first by the stack's own limits, which are props: the API stage throttle (100 requests/s, burst 200), the api's reserved concurrency (100), deliver's (300), the queue's maximum concurrency (queueConcurrency, 100 batches) and the sweeper's dispatchRate (100 starts/s).",
	)
	return m
}

// ceiling returns the ceiling of a mode in a region class (by name) for a
// failure at a share and fan-out, if modelled.
func (m *QuotaModel) ceiling(regions string, mode Mode, failure Failure, share float64, fanOut int) (Ceiling, bool) {
	i := slices.IndexFunc(m.Ceilings, func(c Ceiling) bool {
		return c.Regions == regions && c.Mode == mode && c.Failure == failure && c.FailShare == share && c.FanOut == fanOut
	})
	if i < 0 {
		return Ceiling{}, false
	}
	return m.Ceilings[i], true
}

// failureTitles head each failure's table.
var failureTitles = map[Failure]string{
	FailFirstAttempt: fmt.Sprintf("First-attempt failure: the failing share fails attempts 1 and 2 and is delivered on attempt %d (recovers); the rest on attempt 1", recoversOnAttempt),
	FailEveryAttempt: "Endpoint down (steady state): the failing share fails every attempt until the schedule is spent (exhausted); the rest delivered on attempt 1",
}

// The quota target: queue mode's ceiling in the large regions at
// this share of first-attempt failures is at least this many deliveries
// a second. The table also shows that ceiling with DynamoDB's per-table
// quota raised.
const (
	targetFailShare = 0.02
	targetPerSec    = 10_000
)

func (m *QuotaModel) writeTable(w io.Writer) {
	fmt.Fprintln(w, "Sustained deliveries/s the default quotas allow (per account and region)")
	for _, a := range m.Assumptions {
		fmt.Fprintln(w, "  assuming", a)
	}
	for _, failure := range Failures {
		fmt.Fprintln(w, " ", failureTitles[failure])
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  regions\tmode\tfailing\tfan-out 1/s\tbound by\tthen\tfan-out 10/s\tbound by\tone endpoint, fan-out 1/s\t")
		for _, c := range m.Ceilings {
			if c.Failure != failure || c.FanOut != 1 {
				continue
			}
			ten := "-\t-"
			if c10, ok := m.ceiling(c.Regions, c.Mode, failure, c.FailShare, 10); ok {
				ten = fmt.Sprintf("%.0f\t%s", c10.PerSec, c10.LimitedBy)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%.0f%%\t%.0f\t%s\t%s (%.0f)\t%s\t%.0f (%s)\t\n", c.Regions, c.Mode, c.FailShare*100,
				c.PerSec, c.LimitedBy, c.Next, c.NextPerSec, ten, c.OneEndpoint, c.OneEndpointLimitedBy)
		}
		tw.Flush()
	}
	var raised []string
	for _, fanOut := range QuotaFanOuts {
		if c, ok := m.ceiling(LargeRegions, ModeQueue, FailFirstAttempt, targetFailShare, fanOut); ok {
			raised = append(raised, fmt.Sprintf("fan-out %d %.0f/s, bound by %s", fanOut, c.TableRaisedPerSec, c.TableRaisedLimitedBy))
		}
	}
	if len(raised) > 0 {
		fmt.Fprintf(w, "  queue, %s, %.0f%% first-attempt failure, with DynamoDB's per-table on-demand throughput quotas raised (NEEDS A QUOTA INCREASE REQUEST: Service Quotas, DynamoDB's table-level read and write throughput, 40,000 units/s each by default; the index rows, which the model derives from the same quota, lifted with them; partitions stay): %s\n",
			LargeRegions, targetFailShare*100, strings.Join(raised, "; "))
	}
	for _, q := range m.Regions {
		fmt.Fprintf(w, "  %s: %s\n", q.Name, q.Regions)
	}
	for _, b := range m.Bursts {
		fmt.Fprintf(w, "  stepfunctions: %d messages at fan-out 1 all started after %.1f s in %s\n", b.Messages, b.StartsSeconds, b.Regions)
	}
	fmt.Fprintln(w, "  quotas:")
	for _, s := range m.Sources {
		fmt.Fprintf(w, "    %s: %s (%s). When hit: %s\n", s.Quota, s.Value, s.Source, s.WhenHit)
	}
	for _, n := range m.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w)
}
