package bench

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The local throughput targets (issue 17), as shares of the loopback POST
// ceiling.
const (
	targetShareFanOut10   = 0.35 // deliveries/s at fan-out 10
	targetShareIngest     = 0.15 // accepted messages/s at fan-out 1
	targetCPUTimesCeiling = 2.5  // server CPU per 1,000 deliveries ÷ the ceiling's per 1,000 POSTs
)

// TargetCheck compares one measured number with its target.
type TargetCheck struct {
	Name     string `json:"name"`
	Met      bool   `json:"met"`
	Measured string `json:"measured"`
	Note     string `json:"note,omitempty"`
}

// CheckTargets compares the report with the targets of the benchmark
// issue; a target whose numbers were not measured is left out.
func (r *Report) CheckTargets() {
	r.Targets = nil
	add := func(name string, met bool, measured, note string) {
		r.Targets = append(r.Targets, TargetCheck{Name: name, Met: met, Measured: measured, Note: note})
	}
	sc := map[string]*ScenarioResult{}
	for _, s := range r.Scenarios {
		sc[s.Name] = s
	}
	// The throughput targets are shares of the loopback POST ceiling
	// measured in the same sitting: absolute rates do not travel between
	// machines. Without a ceiling they are left out.
	if c := r.Ceiling; c != nil {
		if s := sc["fanout10"]; s != nil && s.Share != nil {
			v := s.Share.Deliveries
			add(fmt.Sprintf("fan-out 10, as fast as it goes: ≥ %.2f of the loopback POST ceiling", targetShareFanOut10), v >= targetShareFanOut10,
				fmt.Sprintf("%.3f (%.0f/s of %.0f/s)", v, s.Delivery.PerSec, c.PerSec), shareShortfall(v, targetShareFanOut10))
			k := s.Share.CPUPer1k
			add(fmt.Sprintf("server CPU per 1,000 deliveries (fan-out 10) ≤ %.1f× the ceiling's per 1,000 POSTs", targetCPUTimesCeiling), k > 0 && k <= targetCPUTimesCeiling,
				fmt.Sprintf("%.2f× (%.3f s vs %.3f s)", k, s.Server.CPUPer1kDeliveries, c.CPUPer1kPosts), "")
		}
		if s := sc["ingest-f1"]; s != nil && s.Share != nil {
			v, p99 := s.Share.Accepted, s.Ingest.Latency.P99
			add(fmt.Sprintf("fan-out 1: accepted messages/s ≥ %.2f of the ceiling with API p99 ≤ 20 ms", targetShareIngest), v >= targetShareIngest && p99 <= 20,
				fmt.Sprintf("%.3f (%.0f/s of %.0f/s), p99 %.1f ms", v, s.Ingest.PerSec, c.PerSec, p99), noisy(r.Host, s))
		}
	}
	if s := sc["latency-500"]; s != nil {
		v := s.Delivery.FirstAttempt.P99
		add("accept→first attempt p99 ≤ 50 ms at 500 messages/s", v <= 50 && s.Ingest.PerSec >= 490, fmt.Sprintf("%.1f ms at %.0f/s", v, s.Ingest.PerSec), noisy(r.Host, s))
	}
	if h, f := sc["healthy-f10"], sc["failing-10pct"]; h != nil && f != nil && h.Delivery.FirstAttempt.P99 > 0 {
		k := f.Delivery.FirstAttempt.P99 / h.Delivery.FirstAttempt.P99
		add("healthy-endpoint p99 with 10% failing ≤ 1.5× all-healthy", k <= 1.5,
			fmt.Sprintf("%.1f ms vs %.1f ms (%.2f×)", f.Delivery.FirstAttempt.P99, h.Delivery.FirstAttempt.P99, k), noisy(r.Host, h, f))
	}
	if h, g := sc["healthy-f10"], sc["hanging-1"]; h != nil && g != nil && h.Delivery.FirstAttempt.P99 > 0 {
		k := g.Delivery.FirstAttempt.P99 / h.Delivery.FirstAttempt.P99
		add("(same bound, 1 hanging endpoint; not an issue target)", k <= 1.5,
			fmt.Sprintf("%.1f ms vs %.1f ms (%.2f×)", g.Delivery.FirstAttempt.P99, h.Delivery.FirstAttempt.P99, k), noisy(r.Host, h, g))
	}
	if c := r.Cost; c != nil {
		r.costTargets(add)
	}
	if l := r.Lambda; l != nil {
		for _, f := range l.Functions {
			add(fmt.Sprintf("%s: cold-start init ≤ 50 ms", f.Name), f.ColdStart.P50 <= 50 && f.ColdStart.N > 0,
				fmt.Sprintf("p50 %.1f ms, max %.1f ms", f.ColdStart.P50, f.ColdStart.Max), shortfall(-f.ColdStart.P50, -50, " ms"))
			add(fmt.Sprintf("%s: binary ≤ 15 MB", f.Name), f.ReleaseBytes <= 15e6, fmt.Sprintf("%.2f MB (arm64)", mb(f.ReleaseBytes)), "")
		}
	}
}

// costTargets adds the AWS cost model's targets: write units per
// delivery in both modes, and queue mode's transitions, executions, $ per
// million and quota ceiling.
func (r *Report) costTargets(add func(name string, met bool, measured, note string)) {
	c := r.Cost
	for _, mode := range Modes {
		rest := Deployment{mode, APIRest, DefaultRetentionDays}
		one, ok1 := c.path(rest, PathHappy1)
		ten, ok10 := c.path(rest, PathHappy10)
		if !ok1 || !ok10 {
			continue
		}
		u1, u10 := one.Usage.DynamoDB, ten.Usage.DynamoDB
		api := c.DynamoDB[mode].APIFanOut1
		add(fmt.Sprintf("%s: ≤ 8 DynamoDB write units per happy delivery at fan-out 1 (api + deliver, Idempotency-Key included)", mode),
			u1.WriteUnits() <= 8, fmt.Sprintf("%.1f (%.0f table + %.0f index)", u1.WriteUnits(), u1.TableWriteUnits, u1.IndexWriteUnits),
			fmt.Sprintf("api %.1f, deliver %.1f", api.WriteUnits(), c.DynamoDB[mode].DeliverHappy.WriteUnits()))
		// A message to 10 endpoints against one to 1: what each of the
		// other 9 adds, api and deliver.
		extra := (10*u10.WriteUnits() - u1.WriteUnits()) / 9
		add(fmt.Sprintf("%s: ≤ 4 DynamoDB write units per extra endpoint", mode), extra <= 4,
			fmt.Sprintf("%.2f", extra), fmt.Sprintf("(fan-out 10 per message %.1f - fan-out 1 %.1f) / 9", 10*u10.WriteUnits(), u1.WriteUnits()))
		if mode == ModeStepFunctions {
			t := one.Usage.StateTransitions
			add("stepfunctions: ≤ 4 state transitions per happy delivery", t <= 4, fmt.Sprintf("%.0f", t), "")
			continue
		}
		calls := c.Calls[mode]
		add("queue: 0 state transitions per happy delivery", one.Usage.StateTransitions == 0,
			fmt.Sprintf("%.0f", one.Usage.StateTransitions), fmt.Sprintf("%.0f executions per happy delivery, counted", calls.ExecutionsHappy))
		fails := []float64{calls.ExecutionsRecovers, calls.ExecutionsFailing}
		add("queue: ≤ 1 execution per delivery that fails its first attempt", slices.Max(fails) <= 1 && slices.Min(fails) > 0,
			fmt.Sprintf("%.0f recovering on attempt %d, %.0f exhausted", calls.ExecutionsRecovers, recoversOnAttempt, calls.ExecutionsFailing),
			"counted in process and under the emulator; 0 would leave the retries to nobody")
		old, _ := c.path(Deployment{mode, APIRest, OldRetentionDays}, PathHappy1)
		add("queue, REST API: ≤ $13 per million happy deliveries at fan-out 1", one.TotalPerMillion <= 13,
			fmt.Sprintf("$%.2f (30-day retention)", one.TotalPerMillion), fmt.Sprintf("$%.2f with 90-day retention", old.TotalPerMillion))
		if http, ok := c.path(Deployment{mode, APIHTTP, DefaultRetentionDays}, PathHappy1); ok {
			add("queue, HTTP API, 30-day retention: ≤ $10 per million happy deliveries at fan-out 1", http.TotalPerMillion <= 10,
				fmt.Sprintf("$%.2f", http.TotalPerMillion), "")
		}
	}
	if q := c.Quotas; q != nil {
		quotaTarget(q, add)
	}
}

// quotaTarget adds the quota target: queue mode's ceiling in the
// large regions with targetFailShare of the deliveries failing their
// first attempt (and recovering on attempt recoversOnAttempt), at least
// targetPerSec at one of the fan-outs modelled, under the default quotas.
func quotaTarget(q *QuotaModel, add func(name string, met bool, measured, note string)) {
	var measured, holds, raised []string
	for _, fanOut := range QuotaFanOuts {
		c, ok := q.ceiling(LargeRegions, ModeQueue, FailFirstAttempt, targetFailShare, fanOut)
		if !ok {
			continue
		}
		measured = append(measured, fmt.Sprintf("fan-out %d: %.0f/s, bound by %s", fanOut, c.PerSec, c.LimitedBy))
		raised = append(raised, fmt.Sprintf("fan-out %d %.0f/s, bound by %s", fanOut, c.TableRaisedPerSec, c.TableRaisedLimitedBy))
		if c.PerSec >= targetPerSec {
			holds = append(holds, fmt.Sprintf("fan-out %d", fanOut))
		}
	}
	if len(measured) == 0 {
		return
	}
	note := "holds at no fan-out modelled"
	if len(holds) > 0 {
		note = "holds at " + strings.Join(holds, " and ")
	}
	note += fmt.Sprintf(" (failing deliveries recover on attempt %d); with DynamoDB's per-table throughput quotas raised (a quota increase request): %s",
		recoversOnAttempt, strings.Join(raised, "; "))
	add(fmt.Sprintf("queue: quota ceiling ≥ %s deliveries/s at %.0f%% first-attempt failure, large regions", thousands(targetPerSec), targetFailShare*100),
		len(holds) > 0, strings.Join(measured, "; "), note)
}

// thousands formats n with commas between thousands.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// shortfall says by how much v misses target (for "at least" targets;
// negate both for "at most").
func shortfall(v, target float64, unit string) string {
	if v >= target || target == 0 {
		return ""
	}
	d := target - v
	if d < 0 {
		d = -d
	}
	return fmt.Sprintf("missed by %.0f%s (%.0f%%)", d, unit, 100*d/abs(target))
}

// shareShortfall says by how much a share v misses an "at least" target.
func shareShortfall(v, target float64) string {
	if v >= target || target <= 0 {
		return ""
	}
	return fmt.Sprintf("missed by %.3f (%.0f%%)", target-v, 100*(target-v)/target)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// noisy warns when another process took more than 5% of the machine, or
// the disk stalled, during one of the scenarios a latency target rests on:
// the tails then say more about the neighbours or the disk than about
// hookstep.
func noisy(h Host, scs ...*ScenarioResult) string {
	for _, s := range scs {
		if s.Server.Elapsed > 0 && h.CPUs > 0 {
			if other := 100 * s.Server.OtherCPUSeconds / (s.Server.Elapsed * float64(h.CPUs)); other > 5 {
				return fmt.Sprintf("noisy: other processes took %.0f%% of the machine during %s; run again", other, s.Name)
			}
		}
		if d := s.Disk; d.Stalls > 0 {
			return fmt.Sprintf("noisy: the disk stalled during %s (%d fsyncs of the probe over %s, the longest %.0f ms); run again, or see -data-dir",
				s.Name, d.Stalls, StallAfter, d.MaxMs)
		}
	}
	return ""
}
