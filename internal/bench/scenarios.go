package bench

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Sizing chooses the scenarios' sizes. The zero value is the default run
// (under two minutes on 2 cores with the Lambda and cost parts).
type Sizing struct {
	// Scale multiplies every scenario's message count (longer runs: 5).
	Scale float64
	// Rate is the target of the throughput scenarios (ingest-f1,
	// fanout10) in messages/s; 0 sends as fast as the API takes them.
	Rate float64
	// PacedRate is the rate of the paced fan-out 10 scenarios (healthy,
	// failing, hanging), which compare healthy endpoints' latency.
	PacedRate float64
	// HangTimeout is the server's HTTP timeout in the hanging scenario.
	HangTimeout time.Duration
}

// stormSchedule is the retry schedule of the paced fan-out scenarios: the
// default one's first waits are seconds to hours, so a short run would see
// no retries; this one makes every failing delivery retry five times
// within four seconds, a retry storm.
const stormSchedule = "0s,250ms,500ms,1s,2s"

// Scenarios returns the scenarios of a run, filtered by name (empty: all).
func Scenarios(sz Sizing, only []string) ([]Scenario, error) {
	if sz.Scale <= 0 {
		sz.Scale = 1
	}
	if sz.PacedRate <= 0 {
		sz.PacedRate = 200
	}
	if sz.HangTimeout <= 0 {
		sz.HangTimeout = 2 * time.Second
	}
	n := func(base int) int { return max(1, int(math.Round(float64(base)*sz.Scale))) }
	paced := func(seconds float64) int { return n(int(seconds * sz.PacedRate)) }
	storm := map[string]string{"HOOKSTEP_RETRY_SCHEDULE": stormSchedule}
	all := []Scenario{
		{
			Name: "ingest-f1", About: "fan-out 1, as fast as the API takes messages",
			FanOut: 1, Messages: n(10000), Rate: sz.Rate,
		},
		{
			Name: "fanout10", About: "fan-out 10, as fast as the API takes messages",
			FanOut: 10, Messages: n(5000), Rate: sz.Rate,
		},
		{
			Name: "latency-500", About: "fan-out 1 at 500 messages/s",
			FanOut: 1, Messages: n(5000), Rate: 500,
		},
		{
			Name: "healthy-f10", About: fmt.Sprintf("fan-out 10 at %g messages/s, all endpoints healthy", sz.PacedRate),
			FanOut: 10, Messages: paced(10), Rate: sz.PacedRate, Env: storm,
		},
		{
			Name: "failing-10pct", About: fmt.Sprintf("as healthy-f10, 1 of 10 endpoints answers 500 (retries %s)", stormSchedule),
			FanOut: 10, Messages: paced(10), Rate: sz.PacedRate, Failing: 1, Env: storm,
		},
		{
			Name: "hanging-1", About: fmt.Sprintf("as healthy-f10, 1 of 10 endpoints hangs until the %s timeout", sz.HangTimeout),
			FanOut: 10, Messages: paced(10), Rate: sz.PacedRate, Hanging: 1,
			Env: map[string]string{"HOOKSTEP_RETRY_SCHEDULE": stormSchedule, "HOOKSTEP_HTTP_TIMEOUT": sz.HangTimeout.String()},
		},
	}
	if len(only) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, name := range only {
		found := false
		for _, sc := range all {
			if sc.Name == name {
				out = append(out, sc)
				found = true
			}
		}
		if !found {
			names := make([]string, len(all))
			for i, sc := range all {
				names[i] = sc.Name
			}
			return nil, fmt.Errorf("no scenario %q (have %s)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}
