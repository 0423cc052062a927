package bench

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
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

// RegionQuotas are the Step Functions quotas that bound deliveries in a
// class of regions.
type RegionQuotas struct {
	Regions          string `json:"regions"`
	StartExecution   Bucket `json:"startExecution"`
	StateTransitions Bucket `json:"stateTransitions"`
}

// StepFunctionsQuotas are AWS Step Functions service quotas for Standard
// workflows, as of 2025 (Step Functions Developer Guide, "Step Functions
// service quotas": API action throttling for StartExecution, state
// throttling for state transitions). They are per account and per region,
// shared by every state machine of the account there, and soft: AWS
// raises them on request, and new accounts may start with lower state
// transition quotas. Check them before quoting.
var StepFunctionsQuotas = []RegionQuotas{
	{
		Regions:          "us-east-1, us-west-2, eu-west-1",
		StartExecution:   Bucket{Burst: 1300, RefillPerSec: 300},
		StateTransitions: Bucket{Burst: 5000, RefillPerSec: 1500},
	},
	{
		Regions:          "other regions",
		StartExecution:   Bucket{Burst: 800, RefillPerSec: 150},
		StateTransitions: Bucket{Burst: 800, RefillPerSec: 500},
	},
}

// burstMessages is the burst whose start time the model shows, at fan-out 1.
const burstMessages = 10_000

// exhaustShare is the share of deliveries that exhaust the schedule in the
// mixed row: one endpoint in ten failing, as in make bench's local scenario.
const exhaustShare = 0.1

// QuotaModel is the throughput the Step Functions quotas allow the AWS
// path: per region class, the sustained deliveries per second of each
// kind of delivery, and how long a burst of messages takes to start.
type QuotaModel struct {
	Source string `json:"source"`
	// StartsPerDelivery is measured: StartExecution calls per delivery
	// made by the api function under the emulator (fan-out 1 and 10).
	StartsPerDelivery Starts          `json:"startsPerDelivery"`
	Regions           []RegionCeiling `json:"regions"`
	Notes             []string        `json:"notes"`
}

// Starts are StartExecution calls per delivery, by fan-out.
type Starts struct {
	FanOut1  float64 `json:"fanOut1"`
	FanOut10 float64 `json:"fanOut10"`
}

// RegionCeiling is what one region class's quotas allow.
type RegionCeiling struct {
	RegionQuotas
	Paths []PathCeiling `json:"paths"`
	Burst BurstStart    `json:"burst"`
}

// PathCeiling is the sustained rate of one kind of delivery.
type PathCeiling struct {
	Name                   string  `json:"name"`
	StartsPerDelivery      float64 `json:"startsPerDelivery"`
	TransitionsPerDelivery float64 `json:"stateTransitionsPerDelivery"`
	DeliveriesPerSec       float64 `json:"sustainedDeliveriesPerSec"`
	LimitedBy              string  `json:"limitedBy"`
}

// BurstStart is how long a burst of messages takes to start.
type BurstStart struct {
	Messages      int     `json:"messages"`
	FanOut        int     `json:"fanOut"`
	StartsSeconds float64 `json:"allStartedAfterSeconds"`
}

// sustained is the deliveries per second that quotas q allow when each
// delivery makes starts StartExecution calls and transitions state
// transitions: the smaller of the two refill rates divided by the use,
// and which quota that is. Use of 0 does not bound; if neither bounds, 0
// and "".
func sustained(q RegionQuotas, starts, transitions float64) (float64, string) {
	best, by := math.Inf(1), ""
	if starts > 0 {
		best, by = q.StartExecution.RefillPerSec/starts, "StartExecution"
	}
	if transitions > 0 {
		if r := q.StateTransitions.RefillPerSec / transitions; r < best {
			best, by = r, "state transitions"
		}
	}
	if by == "" {
		return 0, ""
	}
	return best, by
}

// burstStart is how long messages at fanOut take to start, each delivery
// making starts StartExecution calls: the bucket's burst at once, the
// rest at its refill rate.
func burstStart(q RegionQuotas, messages, fanOut int, starts float64) BurstStart {
	return BurstStart{
		Messages: messages, FanOut: fanOut,
		StartsSeconds: q.StartExecution.seconds(float64(messages*fanOut) * starts),
	}
}

// modelQuotas computes the QuotaModel from the walked transitions and
// the measured starts.
func modelQuotas(quotas []RegionQuotas, t Transitions, starts Starts) *QuotaModel {
	m := &QuotaModel{
		Source:            "AWS Step Functions service quotas, Standard workflows, as of 2025; per account and region; verify before quoting",
		StartsPerDelivery: starts,
	}
	happy, exhausted := float64(t.Happy.Transitions), float64(t.Exhausted.Transitions)
	paths := []struct {
		name        string
		transitions float64
	}{
		{"happy", happy},
		{fmt.Sprintf("%.0f%% exhaust", exhaustShare*100), (1-exhaustShare)*happy + exhaustShare*exhausted},
		{"all exhaust", exhausted},
	}
	for _, q := range quotas {
		rc := RegionCeiling{RegionQuotas: q, Burst: burstStart(q, burstMessages, 1, starts.FanOut1)}
		for _, p := range paths {
			perSec, by := sustained(q, starts.FanOut1, p.transitions)
			rc.Paths = append(rc.Paths, PathCeiling{
				Name: p.name, StartsPerDelivery: starts.FanOut1, TransitionsPerDelivery: round(p.transitions, 2),
				DeliveriesPerSec: round(perSec, 1), LimitedBy: by,
			})
		}
		rc.Burst.StartsSeconds = round(rc.Burst.StartsSeconds, 1)
		m.Regions = append(m.Regions, rc)
	}
	m.Notes = append(m.Notes,
		"Sustained deliveries/s = min(StartExecution refill / starts per delivery, transition refill / transitions per delivery), in a steady state: one execution runs a delivery's whole retry schedule, so one that exhausts it spends its transitions over the schedule's length. \"exhaust\" = the delivery fails every attempt. At fan-out 10 a message is 10 deliveries.",
		"The api function starts a message's first 25 executions while answering POST .../msg and hands the rest, and any a throttle refused, to the sweeper function, which starts them within its dispatch rate (100/s by default, below every region's refill) and re-drives what is left every minute.",
	)
	return m
}

func (m *QuotaModel) writeTable(w io.Writer) {
	fmt.Fprintf(w, "Sustained deliveries/s the Step Functions quotas allow (%s)\n", m.Source)
	fmt.Fprintf(w, "  StartExecution calls per delivery, measured: %.2f at fan-out 1, %.2f at fan-out 10\n", m.StartsPerDelivery.FanOut1, m.StartsPerDelivery.FanOut10)
	if len(m.Regions) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "regions\tStartExecution burst + refill\ttransitions burst + refill\t")
	for _, p := range m.Regions[0].Paths {
		fmt.Fprintf(tw, "%s (%.3g tr.)\t", p.Name, p.TransitionsPerDelivery)
	}
	fmt.Fprintf(tw, "%d msgs at fan-out 1: all started after\t\n", burstMessages)
	for _, rc := range m.Regions {
		fmt.Fprintf(tw, "%s\t%.0f + %.0f/s\t%.0f + %.0f/s\t", rc.Regions,
			rc.StartExecution.Burst, rc.StartExecution.RefillPerSec, rc.StateTransitions.Burst, rc.StateTransitions.RefillPerSec)
		for _, p := range rc.Paths {
			fmt.Fprintf(tw, "%.1f/s (%s)\t", p.DeliveriesPerSec, p.LimitedBy)
		}
		fmt.Fprintf(tw, "%.1f s\t\n", rc.Burst.StartsSeconds)
	}
	tw.Flush()
	for _, n := range m.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w)
}
