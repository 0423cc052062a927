package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one run measured; it is written as JSON.
type Report struct {
	StartedAt time.Time `json:"startedAt"`
	Host      Host      `json:"host"`
	// Command is how the run was started, to run it again.
	Command string `json:"command"`
	// Ceiling is the loopback POST ceiling measured before and after the
	// scenarios; each scenario's Share is taken of its mean.
	Ceiling   *LoopbackCeiling  `json:"loopbackCeiling,omitempty"`
	Scenarios []*ScenarioResult `json:"scenarios,omitempty"`
	Lambda    *LambdaResult     `json:"lambda,omitempty"`
	Cost      *CostResult       `json:"cost,omitempty"`
	// Targets compares the numbers with the targets.
	Targets []TargetCheck `json:"targets,omitempty"`
	Errors  []string      `json:"errors,omitempty"`
}

// Host describes the machine.
type Host struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUModel  string `json:"cpuModel,omitempty"`
}

// ThisHost describes this machine.
func ThisHost() Host {
	h := Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return h
}

// WriteJSON writes the report as indented JSON to dir/bench-<time>.json
// and to dir/latest.json, and returns the first path.
func (r *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	b = append(b, '\n')
	path := filepath.Join(dir, "bench-"+r.StartedAt.UTC().Format("20060102-150405")+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", err
	}
	return path, os.WriteFile(filepath.Join(dir, "latest.json"), b, 0o644)
}

// WriteTable writes the report as plain-text tables.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "hookstep bench  %s  %d CPUs (%s)  %s\n\n", r.StartedAt.UTC().Format(time.RFC3339), r.Host.CPUs, r.Host.CPUModel, r.Host.GoVersion)
	if len(r.Scenarios) > 0 {
		fmt.Fprintln(w, "Local mode (one server per scenario; latencies in ms; CPU = server CPU seconds per 1,000 deliveries)")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "(other CPU %: what other processes on the machine took; above a few percent the run is noisy)")
		fmt.Fprintf(w, "(disk stalls: a probe's fsyncs in the data dir that took %s or more, and the longest; any make the tails noisy)\n", StallAfter)
		r.Ceiling.writeLine(w)
		fmt.Fprintln(tw, "scenario\tfan-out\tmsgs\ttarget/s\taccepted/s\tAPI p50\tp95\tp99\tdeliveries/s\taccept→1st p50\tp95\tp99\tCPU/1k\tacc/ceil\tdel/ceil\tCPU/ceil\tpeak RSS MiB\tother CPU %\tdisk stalls\t")
		for _, s := range r.Scenarios {
			target := "max"
			if s.Rate > 0 {
				target = fmt.Sprintf("%g", s.Rate)
			}
			other := 0.0
			if s.Server.Elapsed > 0 {
				other = 100 * s.Server.OtherCPUSeconds / (s.Server.Elapsed * float64(r.Host.CPUs))
			}
			stalls := "0"
			if s.Disk.Stalls > 0 {
				stalls = fmt.Sprintf("%d (%.0f ms)", s.Disk.Stalls, s.Disk.MaxMs)
			}
			shares := [3]string{"-", "-", "-"}
			if sh := s.Share; sh != nil {
				shares = [3]string{fmt.Sprintf("%.3f", sh.Accepted), fmt.Sprintf("%.3f", sh.Deliveries), fmt.Sprintf("%.2f×", sh.CPUPer1k)}
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t%.3f\t%s\t%s\t%s\t%.1f\t%.0f\t%s\t\n",
				s.Name, s.FanOut, s.Messages, target, s.Ingest.PerSec,
				s.Ingest.Latency.P50, s.Ingest.Latency.P95, s.Ingest.Latency.P99,
				s.Delivery.PerSec, s.Delivery.FirstAttempt.P50, s.Delivery.FirstAttempt.P95, s.Delivery.FirstAttempt.P99,
				s.Server.CPUPer1kDeliveries, shares[0], shares[1], shares[2], s.Server.PeakRSSMiB, other, stalls)
		}
		tw.Flush()
		for _, s := range r.Scenarios {
			extra := ""
			if s.Hangs != nil && s.Hangs.N > 0 {
				extra = fmt.Sprintf("; hanging requests held p50 %.0f ms, max %.0f ms (n=%d)", s.Hangs.P50, s.Hangs.Max, s.Hangs.N)
			}
			fmt.Fprintf(w, "  %-14s %s: %d/%d delivered, %d attempts received%s\n", s.Name, s.About, s.Delivery.Delivered, s.Delivery.Expected, s.Delivery.Attempts, extra)
			for _, e := range s.Errors {
				fmt.Fprintf(w, "  %-14s ! %s\n", "", e)
			}
		}
		fmt.Fprintln(w)
	}
	if r.Lambda != nil {
		r.Lambda.writeTable(w)
	}
	if r.Cost != nil {
		r.Cost.writeTable(w)
		if r.Cost.Quotas != nil {
			r.Cost.Quotas.writeTable(w)
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "Targets")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range r.Targets {
			mark := "MET"
			if !t.Met {
				mark = "MISSED"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", mark, t.Name, t.Measured, t.Note)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}
