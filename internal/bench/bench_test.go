package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/hookstep/hookstep/internal/dynamo"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Latency{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
}

func TestMessageBodyIsValidJSONOfTheRequestedSize(t *testing.T) {
	for _, size := range []int{100, 1024, 4096} {
		var m struct {
			EventType string          `json:"eventType"`
			Payload   json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(messageBody(12345, size), &m); err != nil {
			t.Fatalf("messageBody(%d): %v", size, err)
		}
		if m.EventType == "" || len(m.Payload) != size {
			t.Errorf("messageBody(%d): event type %q, payload of %d bytes; want %d", size, m.EventType, len(m.Payload), size)
		}
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		frac float64
		want string
	}{{0, "[>         ]"}, {0.5, "[=====>    ]"}, {1, "[==========]"}, {2, "[==========]"}} {
		if got := bar(tc.frac, 10); got != tc.want {
			t.Errorf("bar(%v) = %q, want %q", tc.frac, got, tc.want)
		}
	}
}

// machine is a three-attempt delivery state machine shaped like the one
// the stack generates (infra/stack/statemachine.go): one Deliver task, one
// Outcome choice, a Wait per retry chosen by the attempt's number; the
// first retry is immediate (0 s), as the default schedule's.
const machine = `{
  "StartAt": "Deliver",
  "States": {
    "Deliver": {"Type": "Task", "Resource": "arn:fn", "Next": "Outcome",
      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Pause"}]},
    "Outcome": {"Type": "Choice", "Choices": [
      {"Variable": "$.result.outcome", "StringEquals": "delivered", "Next": "Done"},
      {"Variable": "$.result.outcome", "StringEquals": "stop", "Next": "Done"},
      {"And": [{"Variable": "$.result.outcome", "StringEquals": "retry"}, {"Variable": "$.result.final", "BooleanEquals": true}], "Next": "MarkFailed"},
      {"And": [{"Variable": "$.result.outcome", "StringEquals": "retry"}, {"Variable": "$.result.resumeAt", "IsPresent": true}], "Next": "WaitUntil"},
      {"And": [{"Variable": "$.result.outcome", "StringEquals": "retry"}, {"Variable": "$.result.attempt", "NumericEquals": 1}], "Next": "Wait1"},
      {"And": [{"Variable": "$.result.outcome", "StringEquals": "retry"}, {"Variable": "$.result.attempt", "NumericEquals": 2}], "Next": "Wait2"},
      {"Variable": "$.result.outcome", "StringEquals": "retry", "Next": "MarkFailed"}], "Default": "UnknownOutcome"},
    "Wait1": {"Type": "Wait", "Seconds": 0, "Next": "Deliver"},
    "Wait2": {"Type": "Wait", "Seconds": 5, "Next": "Deliver"},
    "WaitUntil": {"Type": "Wait", "TimestampPath": "$.result.resumeAt", "Next": "Deliver"},
    "Pause": {"Type": "Wait", "Seconds": 30, "Next": "Reconcile"},
    "Reconcile": {"Type": "Task", "Resource": "arn:fn", "Parameters": {"action": "reconcile"}, "Next": "Outcome"},
    "MarkFailed": {"Type": "Task", "Resource": "arn:fn", "Parameters": {"action": "fail"}, "Next": "Exhausted"},
    "Done": {"Type": "Succeed"},
    "Exhausted": {"Type": "Succeed"},
    "UnknownOutcome": {"Type": "Fail"}
  }
}`

func TestCountTransitions(t *testing.T) {
	got, err := countTransitions([]byte(machine))
	if err != nil {
		t.Fatal(err)
	}
	path := func(invocations int, states ...string) Path {
		return Path{Transitions: len(states), LambdaInvocations: invocations, States: states}
	}
	want := map[Mode]Transitions{
		ModeStepFunctions: {
			Happy:    path(1, "Deliver", "Outcome", "Done"),
			Recovers: path(3, "Deliver", "Outcome", "Wait1", "Deliver", "Outcome", "Wait2", "Deliver", "Outcome", "Done"),
			Exhausted: path(4, "Deliver", "Outcome", "Wait1", "Deliver", "Outcome", "Wait2",
				"Deliver", "Outcome", "MarkFailed", "Exhausted"),
		},
		// deliver made attempts 1 and 2 (Wait1 is 0 s) off the SQS
		// message; the execution enters with a Deliver that finds
		// attempt 3 not due, waits for it, makes it, and is done
		// (recovers) or marks the delivery failed (exhausted). A happy
		// delivery has no execution.
		ModeQueue: {
			Recovers:       path(2, "Deliver", "Outcome", "WaitUntil", "Deliver", "Outcome", "Done"),
			Exhausted:      path(3, "Deliver", "Outcome", "WaitUntil", "Deliver", "Outcome", "MarkFailed", "Exhausted"),
			QueuedAttempts: 2,
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("transitions (-want +got):\n%s", d)
	}
}

func TestCountTransitionsRejectsWhatItCannotWalk(t *testing.T) {
	for name, def := range map[string]string{
		"unknown state":  `{"StartAt": "A", "States": {"A": {"Type": "Task", "Next": "B"}}}`,
		"unknown type":   `{"StartAt": "A", "States": {"A": {"Type": "Map", "End": true}}}`,
		"endless":        `{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}`,
		"other variable": `{"StartAt": "A", "States": {"A": {"Type": "Choice", "Choices": [{"Variable": "$.x", "StringEquals": "y", "Next": "A"}]}}}`,
	} {
		if _, err := countTransitions([]byte(def)); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// TestIndexMeterFollowsTheIndexWriteRules checks the meter against
// DynamoDB's rules for global secondary index writes, on the real table
// schema.
func TestIndexMeterFollowsTheIndexWriteRules(t *testing.T) {
	base := item{"pk": s("MSG#a#m"), "sk": s("D#e"), "status": s("pending")}
	with := func(extra ...string) item {
		it := item{}
		for k, v := range base {
			it[k] = v
		}
		for i := 0; i+1 < len(extra); i += 2 {
			it[extra[i]] = s(extra[i+1])
		}
		return it
	}
	inEndpoint := with(dynamo.AttrEndpointPK, "EP#a#e", dynamo.AttrEndpointSK, "D#m")
	for _, tc := range []struct {
		name          string
		before, after item
		want          float64
	}{
		{"new item in no index", nil, base, 0},
		{"new item enters an index", nil, inEndpoint, 1},
		{"projected attribute changes", inEndpoint, with(dynamo.AttrEndpointPK, "EP#a#e", dynamo.AttrEndpointSK, "D#m", "status", "success"), 1},
		{"unprojected attribute changes", inEndpoint, with(dynamo.AttrEndpointPK, "EP#a#e", dynamo.AttrEndpointSK, "D#m", "body", "x"), 0},
		{"index key changes", inEndpoint, with(dynamo.AttrEndpointPK, "EP#a#e", dynamo.AttrEndpointSK, "D#n"), 2},
		{"item leaves the index", inEndpoint, base, 1},
		{"item deleted", inEndpoint, nil, 1},
		{"keys-only index: enters", base, with(dynamo.AttrSweepPK, "U#1", dynamo.AttrSweepSK, "1"), 1},
		{"keys-only index: other attribute changes", with(dynamo.AttrSweepPK, "U#1", dynamo.AttrSweepSK, "1"), with(dynamo.AttrSweepPK, "U#1", dynamo.AttrSweepSK, "1", "status", "x"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newIndexMeter(nil, dynamo.TableSchema("t"))
			m.account(tc.before, tc.after)
			if m.units != tc.want {
				t.Errorf("index write units = %v, want %v (writes %v)", m.units, tc.want, m.writes)
			}
		})
	}
}

func TestEmulatorOutputParsing(t *testing.T) {
	out := strings.Join([]string{
		`26 Nov 2026 23:43:20,836 [INFO] (rapid) exec 'bootstrap' (cwd=/x, handler=)`,
		`START RequestId: 1 Version: $LATEST`,
		`26 Nov 2026 23:43:21,384 [INFO] (rapid) INIT REPORT(durationMs: 10.116000)`,
		`{"time":"2026-11-26T23:43:21Z","level":"INFO","msg":"attempt"}`,
		`26 Nov 2026 23:43:21,387 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 2.877000ms)`,
		`END RequestId: 1`,
		"REPORT RequestId: 1\tInit Duration: 0.02 ms\tDuration: 13.20 ms\tBilled Duration: 14 ms\t",
		`26 Nov 2026 23:43:21,698 [INFO] (rapid) INVOKE RTDONE(status: success, produced bytes: 0, duration: 1.776000ms)`,
		"REPORT RequestId: 2\tDuration: 2.04 ms\t",
	}, "\n") + "\n"
	e := &emulator{reports: make(chan invokeReport, 4)}
	e.scan(strings.NewReader(out))
	want := []invokeReport{
		{Init: 10116 * time.Microsecond, Duration: 2877 * time.Microsecond},
		{Duration: 1776 * time.Microsecond},
	}
	for i, w := range want {
		if got := <-e.reports; got != w {
			t.Errorf("report %d = %+v, want %+v", i, got, w)
		}
	}
	if got, want := e.logBytes(), len(`{"time":"2026-11-26T23:43:21Z","level":"INFO","msg":"attempt"}`)+1; got != want {
		t.Errorf("log bytes = %d, want %d", got, want)
	}
}

func TestProcReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if runtime.GOOS == "linux" {
			t.Fatalf("no /proc/self/stat on Linux, which the bench reads CPU from: %v", err)
		}
		t.Skip("no /proc on this system")
	}
	for name, read := range map[string]func(int) (time.Duration, error){"procCPU": procCPU, "threadsCPU": threadsCPU} {
		if _, err := read(os.Getpid()); err != nil {
			t.Errorf("%s(self): %v", name, err)
		}
	}
	if rss, err := procPeakRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("procPeakRSS(self) = %d, %v; want a positive size", rss, err)
	}
	if _, err := machineBusy(); err != nil {
		t.Errorf("machineBusy: %v", err)
	}
}

func TestCheckTargets(t *testing.T) {
	r := &Report{Scenarios: []*ScenarioResult{
		{Scenario: Scenario{Name: "fanout10"}, Delivery: DeliveryResult{PerSec: 4000}, Server: ServerResult{CPUPer1kDeliveries: 0.5}},
		{Scenario: Scenario{Name: "ingest-f1"}, Ingest: IngestResult{PerSec: 2500, Latency: Latency{P99: 12}}},
	}}
	r.CheckTargets()
	if len(r.Targets) != 0 {
		t.Errorf("targets checked without a ceiling: %+v", r.Targets)
	}
	// A ceiling of 16,000 POSTs/s at 0.1 CPU-s per 1,000: fan-out 10 at
	// 0.25 of it misses 0.35, fan-out 1 at 0.156 meets 0.15, 5× the
	// ceiling's CPU misses 2.5×.
	r.SetCeiling(&LoopbackCeiling{PerSec: 16000, CPUPer1kPosts: 0.1})
	r.CheckTargets()
	got := map[string]bool{}
	for _, tc := range r.Targets {
		got[tc.Name] = tc.Met
	}
	want := map[string]bool{
		"fan-out 10, as fast as it goes: ≥ 0.35 of the loopback POST ceiling":               false,
		"server CPU per 1,000 deliveries (fan-out 10) ≤ 2.5× the ceiling's per 1,000 POSTs": false,
		"fan-out 1: accepted messages/s ≥ 0.15 of the ceiling with API p99 ≤ 20 ms":         true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("targets met (-want +got):\n%s", d)
	}
	if r.Targets[0].Note != "missed by 0.100 (29%)" || r.Targets[0].Measured != "0.250 (4000/s of 16000/s)" {
		t.Errorf("missed target measured %q, note %q", r.Targets[0].Measured, r.Targets[0].Note)
	}
}

// TestReportCarriesTheCeiling checks that the shares are taken of the mean
// of the ceiling's two runs, and that the JSON and the table carry the
// ceiling and the shares.
func TestReportCarriesTheCeiling(t *testing.T) {
	opts := LocalOptions{Concurrency: 16, PayloadBytes: 1024}
	c := NewLoopbackCeiling(opts,
		&LoopbackRun{Posts: 30000, PerSec: 10000, CPUPer1kPosts: 0.1},
		&LoopbackRun{Posts: 42000, PerSec: 14000, CPUPer1kPosts: 0.2})
	if c.PerSec != 12000 || c.CPUPer1kPosts != 0.15 {
		t.Fatalf("ceiling mean %v/s, %v s per 1k; want 12000, 0.15", c.PerSec, c.CPUPer1kPosts)
	}
	if one := NewLoopbackCeiling(opts, nil, &LoopbackRun{PerSec: 9000, CPUPer1kPosts: 0.3}); one.PerSec != 9000 || one.CPUPer1kPosts != 0.3 {
		t.Errorf("ceiling of the after run alone = %+v", one)
	}
	if none := NewLoopbackCeiling(opts, nil, nil); none != nil {
		t.Errorf("ceiling of no run = %+v, want nil", none)
	}
	r := &Report{StartedAt: time.Now(), Host: Host{CPUs: 2}, Scenarios: []*ScenarioResult{
		{Scenario: Scenario{Name: "fanout10", FanOut: 10}, Ingest: IngestResult{PerSec: 420}, Delivery: DeliveryResult{PerSec: 4200},
			Server: ServerResult{CPUPer1kDeliveries: 0.375}},
		{Scenario: Scenario{Name: "ingest-f1", FanOut: 1}, Ingest: IngestResult{PerSec: 1800, Latency: Latency{P99: 19}}, Delivery: DeliveryResult{PerSec: 1790},
			Server: ServerResult{CPUPer1kDeliveries: 0.6}},
	}}
	r.SetCeiling(c)
	wantShares := []Shares{{Accepted: 0.035, Deliveries: 0.35, CPUPer1k: 2.5}, {Accepted: 0.15, Deliveries: 0.149, CPUPer1k: 4}}
	for i, s := range r.Scenarios {
		if s.Share == nil || *s.Share != wantShares[i] {
			t.Errorf("%s: shares %+v, want %+v", s.Name, s.Share, wantShares[i])
		}
	}
	r.CheckTargets()
	// Each exactly at its bound: 0.35, 0.15 (p99 19 ms), 2.5×.
	for _, tc := range r.Targets {
		if !tc.Met {
			t.Errorf("target %q missed (%s), want met at its bound", tc.Name, tc.Measured)
		}
	}
	if len(r.Targets) != 3 {
		t.Errorf("%d targets, want 3: %+v", len(r.Targets), r.Targets)
	}

	var table bytes.Buffer
	r.WriteTable(&table)
	for _, want := range []string{
		"before 10000/s (CPU 0.100 s/1k), after 14000/s (CPU 0.200 s/1k); mean 12000 POSTs/s, CPU 0.150 s per 1,000 POSTs",
		"acc/ceil", "del/ceil", "CPU/ceil",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var row string
	for _, line := range strings.Split(table.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "fanout10" && f[1] == "10" {
			row = line
		}
	}
	if f := strings.Fields(row); len(f) < 16 || f[13] != "0.035" || f[14] != "0.350" || f[15] != "2.50×" {
		t.Errorf("fanout10 row does not carry its shares 0.035, 0.350, 2.50×: %q", row)
	}

	path, err := r.WriteJSON(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Ceiling struct {
			Before, After struct {
				PerSec float64 `json:"postsPerSec"`
			}
			PerSec        float64 `json:"postsPerSec"`
			CPUPer1kPosts float64 `json:"cpuSecondsPer1kPosts"`
		} `json:"loopbackCeiling"`
		Scenarios []struct {
			Share map[string]float64 `json:"ceilingShare"`
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if c := back.Ceiling; c.Before.PerSec != 10000 || c.After.PerSec != 14000 || c.PerSec != 12000 || c.CPUPer1kPosts != 0.15 {
		t.Errorf("JSON ceiling = %+v", c)
	}
	wantJSON := map[string]float64{"acceptedPerSec": 0.035, "deliveriesPerSec": 0.35, "cpuPer1kTimesCeiling": 2.5}
	if len(back.Scenarios) != 2 || !cmp.Equal(back.Scenarios[0].Share, wantJSON) {
		t.Errorf("JSON shares of fanout10 = %+v, want %v", back.Scenarios, wantJSON)
	}
}

// TestMeasureCeiling runs a short probe: POSTs are made and counted, and
// they cost CPU.
func TestMeasureCeiling(t *testing.T) {
	run, err := MeasureCeiling(context.Background(), LocalOptions{Concurrency: 4, PayloadBytes: 1024}, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if run.Posts < 10 || run.PerSec <= 0 || run.Elapsed < 0.3 || run.CPUPer1kPosts <= 0 {
		t.Errorf("ceiling run %+v: want POSTs counted over ≥ 0.3 s at a positive CPU cost", run)
	}
	if _, err := MeasureCeiling(context.Background(), LocalOptions{Concurrency: 4}, time.Second); err == nil {
		t.Error("a probe without a payload size ran")
	}
}

func TestNoisyComparisons(t *testing.T) {
	host := Host{CPUs: 2}
	quiet := &ScenarioResult{Scenario: Scenario{Name: "healthy-f10"}, Server: ServerResult{Elapsed: 10, OtherCPUSeconds: 0.5}}
	if n := noisy(host, quiet); n != "" {
		t.Errorf("quiet run flagged: %q", n)
	}
	stalled := &ScenarioResult{Scenario: Scenario{Name: "failing-10pct"}, Server: ServerResult{Elapsed: 10},
		Disk: summarizeSyncs([]time.Duration{time.Millisecond, 230 * time.Millisecond, StallAfter, StallAfter - 1})}
	if stalled.Disk.Stalls != 2 || stalled.Disk.MaxMs != 230 {
		t.Fatalf("disk result %+v, want 2 stalls, the longest 230 ms", stalled.Disk)
	}
	if n := noisy(host, quiet, stalled); !strings.Contains(n, "disk stalled during failing-10pct") || !strings.Contains(n, "230 ms") {
		t.Errorf("stalled disk not flagged: %q", n)
	}
	busy := &ScenarioResult{Scenario: Scenario{Name: "healthy-f10"}, Server: ServerResult{Elapsed: 10, OtherCPUSeconds: 2}}
	if n := noisy(host, busy); !strings.Contains(n, "other processes took 10%") {
		t.Errorf("busy machine not flagged: %q", n)
	}
}

// TestRunLocalSmoke builds the local-mode binary and runs a small
// scenario with one failing endpoint against it: every message reaches the
// healthy endpoints, and the report holds numbers for each part.
func TestRunLocalSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the local-mode binary")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hookstep")
	build := exec.Command("go", "build", "-o", bin, "./functions/local")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sc := Scenario{Name: "smoke", FanOut: 3, Failing: 1, Messages: 30, Rate: 300, Env: map[string]string{"HOOKSTEP_RETRY_SCHEDULE": "0s,10ms"}}
	var progress bytes.Buffer
	res, err := RunLocal(context.Background(), LocalOptions{
		Server: bin, Concurrency: 4, PayloadBytes: 256, Drain: time.Minute, WorkDir: t.TempDir(), Progress: &progress,
	}, []Scenario{sc})
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.Ingest.Accepted != 30 || r.Delivery.Expected != 60 || r.Delivery.Delivered != 60 {
		t.Errorf("accepted %d, delivered %d of %d; want 30, 60 of 60 (errors: %v)", r.Ingest.Accepted, r.Delivery.Delivered, r.Delivery.Expected, r.Errors)
	}
	// One attempt at each healthy endpoint, some at the failing one, and
	// no more than its 3 per message. The run waits for the healthy
	// endpoints only: how many of the failing one's attempts (it runs on
	// a sixteenth of the workers) land before that is up to timing.
	if n := r.Delivery.Attempts; n <= 60 || n > 60+30*3 {
		t.Errorf("attempts received = %d, want %d to %d", n, 61, 60+30*3)
	}
	if r.Ingest.Latency.N != 30 || r.Delivery.FirstAttempt.N != 60 || r.Server.PeakRSSMiB <= 0 || r.Disk.Syncs == 0 {
		t.Errorf("missing measurements: %+v %+v %+v %+v", r.Ingest, r.Delivery, r.Server, r.Disk)
	}
	if !strings.Contains(progress.String(), "smoke") {
		t.Errorf("no progress bar drawn; got %q", progress.String())
	}
	rep := &Report{StartedAt: time.Now(), Host: ThisHost(), Scenarios: res}
	rep.WriteTable(io.Discard)
	path, err := rep.WriteJSON(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &back) != nil || len(back.Scenarios) != 1 {
		t.Errorf("JSON report %s does not read back: %v", path, err)
	}
}
