package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// The region classes of StepFunctionsQuotas.
var (
	bigRegions   = StepFunctionsQuotas[0] // us-east-1, us-west-2, eu-west-1
	otherRegions = StepFunctionsQuotas[1]
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestStepFunctionsQuotasAreAWSs(t *testing.T) {
	for _, tt := range []struct {
		q                  RegionQuotas
		regions            string
		start, transitions Bucket
	}{
		{bigRegions, "us-east-1, us-west-2, eu-west-1", Bucket{1300, 300}, Bucket{5000, 1500}},
		{otherRegions, "other regions", Bucket{800, 150}, Bucket{800, 500}},
	} {
		if tt.q.Regions != tt.regions || tt.q.StartExecution != tt.start || tt.q.StateTransitions != tt.transitions {
			t.Errorf("got %+v, want %s: StartExecution %+v, transitions %+v", tt.q, tt.regions, tt.start, tt.transitions)
		}
	}
}

func TestSustainedDeliveriesPerSecond(t *testing.T) {
	tests := []struct {
		name               string
		q                  RegionQuotas
		starts, transition float64
		want               float64
		limitedBy          string
	}{
		{"happy, big regions: starts bind (300 < 1500/3)", bigRegions, 1, 3, 300, "StartExecution"},
		{"happy, other regions: starts bind (150 < 500/3)", otherRegions, 1, 3, 150, "StartExecution"},
		{"10% exhaust, big regions: transitions bind", bigRegions, 1, 0.9*3 + 0.1*28, 1500 / 5.5, "state transitions"},
		{"10% exhaust, other regions", otherRegions, 1, 5.5, 500 / 5.5, "state transitions"},
		{"all exhaust, big regions", bigRegions, 1, 28, 1500.0 / 28, "state transitions"},
		{"all exhaust, other regions", otherRegions, 1, 28, 500.0 / 28, "state transitions"},
		{"two starts per delivery", bigRegions, 2, 1, 150, "StartExecution"},
		{"a tie goes to StartExecution", bigRegions, 1, 5, 300, "StartExecution"},
		{"no starts: transitions alone", otherRegions, 0, 3, 500.0 / 3, "state transitions"},
		{"no use: no rate", bigRegions, 0, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, by := sustained(tt.q, tt.starts, tt.transition)
			if !near(got, tt.want) || by != tt.limitedBy {
				t.Errorf("sustained(%s, %g starts, %g transitions) = %g (%s), want %g (%s)",
					tt.q.Regions, tt.starts, tt.transition, got, by, tt.want, tt.limitedBy)
			}
		})
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
		{"10,000 at fan-out 1, other regions: 800 at once, 9,200 at 150/s", otherRegions, 10_000, 1, 1, 9200.0 / 150},
		{"1,000 at fan-out 10 is 10,000 starts", bigRegions, 1_000, 10, 1, 29},
		{"within the burst: at once", bigRegions, 1_300, 1, 1, 0},
		{"two starts per delivery", otherRegions, 400, 1, 2, 0},
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

// TestModelQuotas checks the model on the transitions the stack's state
// machine has (3 happy, 28 exhausted) and one start per delivery, and
// that the table shows it.
func TestModelQuotas(t *testing.T) {
	tr := Transitions{Happy: Path{Transitions: 3}, Exhausted: Path{Transitions: 28}}
	m := modelQuotas(StepFunctionsQuotas, tr, Starts{FanOut1: 1, FanOut10: 1})
	type row struct {
		perSec []float64 // happy, 10% exhaust, all exhaust
		burst  float64
	}
	want := map[string]row{
		bigRegions.Regions:   {[]float64{300, 272.7, 53.6}, 29},
		otherRegions.Regions: {[]float64{150, 90.9, 17.9}, 61.3},
	}
	if len(m.Regions) != len(want) {
		t.Fatalf("%d region classes, want %d", len(m.Regions), len(want))
	}
	for _, rc := range m.Regions {
		w := want[rc.Regions]
		if len(rc.Paths) != len(w.perSec) {
			t.Fatalf("%s: %d paths, want %d", rc.Regions, len(rc.Paths), len(w.perSec))
		}
		for i, p := range rc.Paths {
			if p.DeliveriesPerSec != w.perSec[i] {
				t.Errorf("%s, %s: %g deliveries/s, want %g", rc.Regions, p.Name, p.DeliveriesPerSec, w.perSec[i])
			}
		}
		if rc.Burst.StartsSeconds != w.burst || rc.Burst.Messages != 10_000 || rc.Burst.FanOut != 1 {
			t.Errorf("%s: burst %+v, want 10,000 messages at fan-out 1 started after %g s", rc.Regions, rc.Burst, w.burst)
		}
	}
	var out bytes.Buffer
	m.writeTable(&out)
	for _, s := range []string{"1300 + 300/s", "800 + 500/s", "300.0/s (StartExecution)", "53.6/s (state transitions)", "61.3 s", "per account and region"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}
