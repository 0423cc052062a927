// Command bench measures hookstep: local mode under load (throughput,
// latency, CPU and memory), the Lambda functions' footprint, and the AWS
// cost per million deliveries. `make bench` builds what it needs and runs
// it from the repository's top directory; internal/bench says what is
// measured and how.
//
//	go run ./functions/bench                          # everything, ~2 minutes
//	go run ./functions/bench -aws=false -scale 5      # local mode only, 5× longer
//	go run ./functions/bench -scenarios fanout10 -rate 600 -profile 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hookstep/hookstep/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		local       = fs.Bool("local", true, "run the local-mode scenarios")
		awsPart     = fs.Bool("aws", true, "measure the Lambda functions and the AWS cost model")
		scenarios   = fs.String("scenarios", "", "comma-separated scenarios to run (default all): ingest-f1, fanout10, latency-500, healthy-f10, failing-10pct, hanging-1")
		scale       = fs.Float64("scale", 1, "multiply every scenario's message count (longer runs: 5, 10)")
		rate        = fs.Float64("rate", 0, "target messages/s of ingest-f1 and fanout10; 0 = as fast as the API takes them")
		pacedRate   = fs.Float64("paced-rate", 200, "messages/s of healthy-f10, failing-10pct and hanging-1")
		hangTimeout = fs.Duration("hang-timeout", 2*time.Second, "the server's HTTP timeout in hanging-1")
		concurrency = fs.Int("concurrency", 16, "API requests in flight")
		payload     = fs.Int("payload", 1024, "payload bytes per message")
		ceiling     = fs.Duration("ceiling", 3*time.Second, "how long each loopback POST ceiling probe runs, before and after the local scenarios (0: none, and no shares)")
		drain       = fs.Duration("drain", 30*time.Second, "longest wait for deliveries after the last message")
		profile     = fs.Duration("profile", 0, "record a CPU profile of the server for this long in each scenario (build/bench/<scenario>.cpu.pprof)")
		server      = fs.String("server", "build/bench/hookstep", "local-mode binary (go build ./functions/local)")
		out         = fs.String("out", "build/bench", "directory for the JSON report, logs, profiles and binaries")
		dataDir     = fs.String("data-dir", "", "directory for the servers' data dirs (default: -out); /dev/shm takes a stalling disk out of the latency comparisons, and fsync with it")
		rie         = fs.String("rie", "build/tools/aws-lambda-rie", "AWS Lambda Runtime Interface Emulator")
		dynalite    = fs.String("dynalite", "infra/node_modules/.bin/dynalite", "dynalite executable")
		definition  = fs.String("definition", "build/bench/definition.json", "the state machine's definition (cd infra && go run ./cmd/definition -o ...)")
		coldStarts  = fs.Int("cold-starts", 5, "cold starts timed per function")
		invocations = fs.Int("invocations", 200, "warm deliver invocations timed")
		quiet       = fs.Bool("quiet", false, "no progress bar")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	workDir, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}

	rep := &bench.Report{StartedAt: time.Now(), Host: bench.ThisHost(), Command: strings.TrimSpace("go run ./functions/bench " + strings.Join(args, " "))}
	var progress io.Writer
	if !*quiet {
		progress = stderr
	}
	if *local {
		var only []string
		if *scenarios != "" {
			only = strings.Split(*scenarios, ",")
		}
		scs, err := bench.Scenarios(bench.Sizing{Scale: *scale, Rate: *rate, PacedRate: *pacedRate, HangTimeout: *hangTimeout}, only)
		if err != nil {
			return err
		}
		opts := bench.LocalOptions{
			Server: *server, Concurrency: *concurrency, PayloadBytes: *payload, Drain: *drain,
			WorkDir: workDir, DataDir: *dataDir, Progress: progress, Profile: *profile,
		}
		// The loopback POST ceiling, before and after the scenarios: the
		// local rates are reported as shares of it.
		probe := func(when string) *bench.LoopbackRun {
			if *ceiling <= 0 || ctx.Err() != nil {
				return nil
			}
			if progress != nil {
				fmt.Fprintf(progress, "loopback POST ceiling (%s the scenarios, %s)\n", when, *ceiling)
			}
			run, err := bench.MeasureCeiling(ctx, opts, *ceiling)
			if err != nil {
				rep.Errors = append(rep.Errors, "ceiling "+when+": "+err.Error())
			}
			return run
		}
		before := probe("before")
		rep.Scenarios, err = bench.RunLocal(ctx, opts, scs)
		if err != nil {
			rep.Errors = append(rep.Errors, "local: "+err.Error())
		}
		rep.SetCeiling(bench.NewLoopbackCeiling(opts, before, probe("after")))
	}
	if *awsPart && ctx.Err() == nil {
		var log io.Writer = io.Discard
		if progress != nil {
			log = prefixWriter{progress, "aws: "}
		}
		rep.Lambda, rep.Cost, err = bench.RunAWS(ctx, bench.AWSOptions{
			Root: root, WorkDir: workDir, RIE: *rie, Dynalite: *dynalite, Definition: *definition,
			ColdStarts: *coldStarts, Invocations: *invocations, Log: log,
		})
		if err != nil {
			rep.Errors = append(rep.Errors, "aws: "+err.Error())
		}
	}
	rep.CheckTargets()
	fmt.Fprintln(stdout)
	rep.WriteTable(stdout)
	path, err := rep.WriteJSON(workDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "JSON report: %s\n", path)
	if len(rep.Errors) > 0 {
		return errors.New(strings.Join(rep.Errors, "; "))
	}
	return ctx.Err()
}

// prefixWriter prefixes each write (one line) with a label.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}
