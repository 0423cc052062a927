package bench

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// functionNames are the Lambda functions (functions/<name>).
var functionNames = []string{"api", "deliver", "sweeper"}

// LambdaResult is the Lambda footprint.
type LambdaResult struct {
	Functions []FunctionResult `json:"functions"`
	// DeliverCPUPerInvocationMs is the deliver runtime's CPU time (user +
	// system, from /proc) per happy attempt: signing, the POST, the
	// DynamoDB calls' encoding and decoding. Time spent waiting on the
	// network is not CPU time and is not in it.
	DeliverCPUPerInvocationMs float64  `json:"deliverCpuPerInvocationMs"`
	Notes                     []string `json:"notes"`
}

// FunctionResult is one function's footprint.
type FunctionResult struct {
	Name     string `json:"name"`
	MemoryMB int    `json:"memoryMB"`
	// ReleaseBytes is the size of the linux/arm64 bootstrap that `make
	// build` ships (stripped, -trimpath).
	ReleaseBytes int64 `json:"releaseBytes"`
	// MeasuredArch and MeasuredBytes are the build that ran under the
	// emulator on this machine (same flags, this machine's arch).
	MeasuredArch  string `json:"measuredArch"`
	MeasuredBytes int64  `json:"measuredBytes"`
	// ColdStart is the emulator's "Init Duration": from starting the
	// bootstrap to its first request for work (Go runtime start, config,
	// AWS SDK configuration, and for api the admin token read from
	// Secrets Manager — a local fake here).
	ColdStart Latency    `json:"coldStartInit"`
	Workloads []Workload `json:"workloads,omitempty"`
}

// Workload is a kind of warm invocation and what it took.
type Workload struct {
	Name string `json:"name"`
	// Duration is the emulator's duration of warm invocations, on this
	// machine (a full core; dynalite and the receiver local).
	Duration Latency `json:"duration"`
	// CPUMs is the runtime's CPU time per invocation (0: not measured).
	CPUMs float64 `json:"cpuMs,omitempty"`
	// EstimatedAWSMs is the duration expected at the function's memory
	// size: Lambda gives memory/1769 of a vCPU, so the CPU part
	// stretches by 1769/memory; the waits stay. Network round trips to
	// DynamoDB and to real receivers are longer in AWS than on loopback
	// and are not in it.
	EstimatedAWSMs float64 `json:"estimatedAwsMs"`
	// LogBytes is what the function logged per invocation (JSON lines,
	// billed as CloudWatch Logs ingestion).
	LogBytes float64 `json:"logBytesPerInvocation,omitempty"`
}

func workload(name string, durs []time.Duration, cpu time.Duration, logBytes float64, memoryMB int) Workload {
	w := Workload{Name: name, Duration: summarize(durs), CPUMs: round(cpu.Seconds()*1000, 3), LogBytes: round(logBytes, 1)}
	stretch := math.Max(1, float64(lambdaFullCoreMB)/float64(memoryMB))
	w.EstimatedAWSMs = round(w.Duration.P50+w.CPUMs*(stretch-1), 2)
	return w
}

func (lr *LambdaResult) function(name string) *FunctionResult {
	for i := range lr.Functions {
		if lr.Functions[i].Name == name {
			return &lr.Functions[i]
		}
	}
	return nil
}

// workload returns the named workload of a function, if measured.
func (lr *LambdaResult) workload(fn, name string) (Workload, bool) {
	if f := lr.function(fn); f != nil {
		for _, w := range f.Workloads {
			if w.Name == name {
				return w, true
			}
		}
	}
	return Workload{}, false
}

func mb(b int64) float64 { return round(float64(b)/1e6, 2) }

func (lr *LambdaResult) writeTable(w io.Writer) {
	fmt.Fprintln(w, "Lambda footprint (sizes in MB = 10^6 bytes; times in ms)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "function\tmemory MB\tarm64 release\tmeasured build\tcold init p50\tmax\tn\t")
	for _, f := range lr.Functions {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f (%s)\t%.1f\t%.1f\t%d\t\n", f.Name, f.MemoryMB, mb(f.ReleaseBytes), mb(f.MeasuredBytes), f.MeasuredArch,
			f.ColdStart.P50, f.ColdStart.Max, f.ColdStart.N)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "function\twarm invocation\tn\tduration p50\tp99\tCPU\test. on AWS\tlog bytes\t")
	for _, f := range lr.Functions {
		for _, wl := range f.Workloads {
			cpu := "-"
			if wl.CPUMs > 0 {
				cpu = fmt.Sprintf("%.2f", wl.CPUMs)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%s\t%.1f\t%.0f\t\n", f.Name, wl.Name, wl.Duration.N, wl.Duration.P50, wl.Duration.P99, cpu, wl.EstimatedAWSMs, wl.LogBytes)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "deliver handler CPU per happy invocation: %.2f ms (user+system of the runtime process; network waits excluded)\n", lr.DeliverCPUPerInvocationMs)
	for _, n := range lr.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	fmt.Fprintln(w)
}
