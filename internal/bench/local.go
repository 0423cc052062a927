package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hookstep/hookstep/internal/awstest"
)

// Scenario is one run of local mode under load, on a fresh server.
type Scenario struct {
	Name  string `json:"name"`
	About string `json:"about"`
	// FanOut is the number of endpoints of the one app; every message goes
	// to all of them.
	FanOut   int `json:"fanOut"`
	Messages int `json:"messages"`
	// Rate is the target in messages/s; 0 sends as fast as the API takes
	// them (Concurrency requests in flight).
	Rate float64 `json:"targetRate"`
	// Failing and Hanging endpoints (of FanOut) answer 500, or never
	// answer; the others answer 200 at once.
	Failing int `json:"failingEndpoints,omitempty"`
	Hanging int `json:"hangingEndpoints,omitempty"`
	// Env is the server's configuration beyond the bench's defaults
	// (HOOKSTEP_* variables).
	Env map[string]string `json:"env,omitempty"`
}

// LocalOptions configure the local-mode runs.
type LocalOptions struct {
	// Server is the local-mode binary (go build ./functions/local).
	Server string
	// Concurrency is the number of API requests in flight at once.
	Concurrency int
	// PayloadBytes is the approximate size of each message's payload.
	PayloadBytes int
	// Drain bounds the wait for deliveries after the last message.
	Drain time.Duration
	// WorkDir holds each run's server log, and its data dir unless
	// DataDir is set.
	WorkDir string
	// DataDir, if set, holds each run's data dir instead: e.g. /dev/shm,
	// to take a stalling disk out of a comparison (fsync then costs
	// nothing, so the numbers no longer include durability).
	DataDir string
	// Progress, if set, shows a progress bar (stderr).
	Progress io.Writer
	// Profile, if positive, records a CPU profile of the server for that
	// long from the start of the load, into WorkDir/<scenario>.cpu.pprof.
	Profile time.Duration
}

// ScenarioResult is what one scenario measured.
type ScenarioResult struct {
	Scenario
	Ingest   IngestResult   `json:"ingest"`
	Delivery DeliveryResult `json:"delivery"`
	Server   ServerResult   `json:"server"`
	// Disk is what a probe saw of the data dir's disk meanwhile.
	Disk DiskResult `json:"disk"`
	// Hangs is how long the hanging endpoints' requests were held open
	// before the server gave up on them.
	Hangs  *Latency `json:"hangs,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Profile is the path of the server's CPU profile, if one was taken.
	Profile string `json:"cpuProfile,omitempty"`
	// Share is the rates as shares of the loopback POST ceiling measured
	// in the same sitting (Report.SetCeiling), if one was.
	Share *Shares `json:"ceilingShare,omitempty"`
}

// IngestResult is the API side of a scenario.
type IngestResult struct {
	Accepted int     `json:"accepted"`
	Rejected int     `json:"rejected"`
	PerSec   float64 `json:"acceptedPerSec"`
	Latency  Latency `json:"apiLatency"`
}

// DeliveryResult is the receivers' side of a scenario.
type DeliveryResult struct {
	// Expected is accepted messages × healthy endpoints; Delivered of them
	// reached their endpoint within the run.
	Expected  int     `json:"expected"`
	Delivered int     `json:"delivered"`
	PerSec    float64 `json:"deliveriesPerSec"`
	// FirstAttempt is accept→first attempt on healthy endpoints.
	FirstAttempt Latency `json:"acceptToFirstAttempt"`
	// Attempts counts every request the receivers got, failing and
	// hanging endpoints included.
	Attempts int64 `json:"attempts"`
}

// ServerResult is the server process's cost over the scenario.
type ServerResult struct {
	CPUSeconds float64 `json:"cpuSeconds"`
	// CPUPer1kDeliveries is CPU seconds per 1,000 healthy deliveries
	// (accepting the messages included).
	CPUPer1kDeliveries float64 `json:"cpuSecondsPer1kDeliveries"`
	PeakRSSMiB         float64 `json:"peakRssMiB"`
	Elapsed            float64 `json:"elapsedSeconds"`
	// LoadGenCPUSeconds is this process's CPU over the scenario: the load
	// generator and the receivers, which share the machine with the
	// server.
	LoadGenCPUSeconds float64 `json:"loadGenCpuSeconds"`
	// OtherCPUSeconds is the CPU that other processes on the machine used
	// over the scenario: noise, when it is more than a few percent of the
	// machine (cores × elapsed).
	OtherCPUSeconds float64 `json:"otherCpuSeconds"`
}

// runScenario runs one scenario on a fresh server.
func runScenario(ctx context.Context, opts LocalOptions, sc Scenario) (*ScenarioResult, error) {
	res := &ScenarioResult{Scenario: sc}
	healthy := sc.FanOut - sc.Failing - sc.Hanging
	if healthy < 0 || sc.FanOut < 1 || sc.Messages < 1 {
		return nil, fmt.Errorf("scenario %s: bad shape", sc.Name)
	}

	// Receivers: the healthy ones first.
	recvs := make([]*receiver, sc.FanOut)
	for i := range recvs {
		b := Healthy
		switch {
		case i >= healthy+sc.Failing:
			b = Hanging
		case i >= healthy:
			b = Failing
		}
		r, err := startReceiver(b, sc.Messages)
		if err != nil {
			return nil, err
		}
		defer r.close()
		recvs[i] = r
	}

	parent := opts.WorkDir
	if opts.DataDir != "" {
		parent = opts.DataDir
	}
	dataDir, err := os.MkdirTemp(parent, "hookstep-"+sc.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	logf, err := os.Create(filepath.Join(opts.WorkDir, sc.Name+".server.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	token := "hsk_bench_" + randomHex(16)
	env := map[string]string{
		"HOOKSTEP_ADDR":        "127.0.0.1:0",
		"HOOKSTEP_DATA_DIR":    dataDir,
		"HOOKSTEP_ADMIN_TOKEN": token,
	}
	for k, v := range sc.Env {
		env[k] = v
	}
	var pprofAddr string
	if opts.Profile > 0 {
		if pprofAddr, err = awstest.PickAddr(); err != nil {
			return nil, err
		}
		env["HOOKSTEP_PPROF_ADDR"] = pprofAddr
	}
	srv, err := startServer(ctx, opts.Server, env, logf)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
	}
	defer srv.stop(10 * time.Second)

	c := newClient(srv.URL, token, opts.Concurrency)
	defer c.http.CloseIdleConnections()
	appID, err := c.setup(ctx, recvs)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: setup: %w", sc.Name, err)
	}

	var bar *progressBar
	if opts.Progress != nil {
		bar = startProgress(opts.Progress, sc, recvs[:healthy])
		defer bar.stop()
	}

	probe, err := startDiskProbe(dataDir, 20*time.Millisecond)
	if err != nil {
		return nil, err
	}
	cpu0, err := sampleCPU(srv.Pid())
	if err != nil {
		probe.result()
		return nil, err
	}
	start := time.Now()
	var profiled chan error
	if opts.Profile > 0 {
		profiled = make(chan error, 1)
		path := filepath.Join(opts.WorkDir, sc.Name+".cpu.pprof")
		go func() { profiled <- fetchProfile(ctx, pprofAddr, opts.Profile, path) }()
		res.Profile = path
	}
	ld := c.send(ctx, appID, sc, opts, bar)
	res.Ingest = IngestResult{
		Accepted: len(ld.accepted),
		Rejected: ld.rejected,
		PerSec:   perSecond(len(ld.accepted), ld.lastResponse.Sub(start)),
		Latency:  summarize(ld.latencies),
	}
	res.Errors = ld.errors

	// Wait for the healthy endpoints to have every message.
	want := int64(len(ld.accepted) * healthy)
	deadline := time.Now().Add(opts.Drain)
	for delivered(recvs[:healthy]) < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if sc.Hanging > 0 {
		// Let the requests hanging now reach the server's timeout, so
		// that their duration shows.
		time.Sleep(hangGrace(sc))
	}
	res.Disk = probe.result()
	cpu1, err := sampleCPU(srv.Pid())
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	rss, err := procPeakRSS(srv.Pid())
	if err != nil {
		return nil, err
	}
	if bar != nil {
		bar.stop()
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			res.Errors = append(res.Errors, "profile: "+err.Error())
			res.Profile = ""
		}
	}

	// accept→first attempt on every healthy endpoint.
	lat := make([]time.Duration, 0, want)
	var last time.Time
	for _, r := range recvs[:healthy] {
		for _, m := range ld.accepted {
			t, ok := r.firstArrival(m.id)
			if !ok {
				continue
			}
			lat = append(lat, t.Sub(m.ts))
			if t.After(last) {
				last = t
			}
		}
	}
	var attempts int64
	for _, r := range recvs {
		attempts += r.attempts.Load()
	}
	res.Delivery = DeliveryResult{
		Expected:     int(want),
		Delivered:    len(lat),
		PerSec:       perSecond(len(lat), last.Sub(start)),
		FirstAttempt: summarize(lat),
		Attempts:     attempts,
	}
	if n := len(lat); n < int(want) {
		res.Errors = append(res.Errors, fmt.Sprintf("%d of %d deliveries did not arrive within the drain time (%s)", int(want)-n, want, opts.Drain))
	}
	cpu := cpu1.server - cpu0.server
	self := cpu1.self - cpu0.self
	res.Server = ServerResult{
		CPUSeconds:        round(cpu.Seconds(), 2),
		PeakRSSMiB:        round(float64(rss)/(1<<20), 1),
		Elapsed:           round(elapsed.Seconds(), 2),
		LoadGenCPUSeconds: round(self.Seconds(), 2),
		OtherCPUSeconds:   round(max(0, (cpu1.machine-cpu0.machine-cpu-self).Seconds()), 2),
	}
	if len(lat) > 0 {
		res.Server.CPUPer1kDeliveries = round(cpu.Seconds()/float64(len(lat))*1000, 3)
	}
	if sc.Hanging > 0 {
		var held []time.Duration
		for _, r := range recvs[healthy+sc.Failing:] {
			held = append(held, r.hangDurations()...)
		}
		l := summarize(held)
		res.Hangs = &l
	}
	return res, nil
}

// hangGrace is how long to wait after the healthy deliveries for the
// hanging requests in flight to time out: the server's HTTP timeout.
func hangGrace(sc Scenario) time.Duration {
	d, err := time.ParseDuration(sc.Env["HOOKSTEP_HTTP_TIMEOUT"])
	if err != nil || d <= 0 {
		return 0
	}
	return d + 200*time.Millisecond
}

func delivered(rs []*receiver) int64 {
	var n int64
	for _, r := range rs {
		n += r.firsts.Load()
	}
	return n
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// client talks to the API.
type client struct {
	base, token string
	http        *http.Client
}

func newClient(base, token string, conns int) *client {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &client{base: base, token: token, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// do sends one request and decodes a JSON answer of the wanted status. A
// POST carries a new Idempotency-Key, as the Svix SDKs send.
func (c *client) do(ctx context.Context, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", idempotencyKey())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// setup creates the app and one endpoint per receiver.
func (c *client) setup(ctx context.Context, recvs []*receiver) (string, error) {
	var app struct{ ID string }
	if err := c.do(ctx, "POST", "/api/v1/app", []byte(`{"name":"bench"}`), http.StatusCreated, &app); err != nil {
		return "", err
	}
	for i, r := range recvs {
		body, _ := json.Marshal(map[string]any{"url": r.URL, "description": fmt.Sprintf("bench %d (%s)", i, r.behaviour)})
		if err := c.do(ctx, "POST", "/api/v1/app/"+app.ID+"/endpoint", body, http.StatusCreated, nil); err != nil {
			return "", err
		}
	}
	return app.ID, nil
}

// acceptedMsg is a message the API accepted: its id and its timestamp.
type acceptedMsg struct {
	id string
	ts time.Time
}

// loadResult is what the load generator saw.
type loadResult struct {
	accepted     []acceptedMsg
	latencies    []time.Duration
	rejected     int
	errors       []string
	lastResponse time.Time
}

// messageBody builds the body of message seq with a payload of about
// size bytes.
func messageBody(seq, size int) []byte {
	const head = `{"eventType":"bench.message","payload":{"type":"bench.message","seq":`
	pad := max(size-len(`{"type":"bench.message","seq":,"data":""}`)-len(strconv.Itoa(seq)), 0)
	b := make([]byte, 0, len(head)+size+32)
	b = append(b, head...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"data":"`...)
	b = append(b, strings.Repeat("x", pad)...)
	return append(b, `"}}`...)
}

// send posts sc.Messages messages at sc.Rate (or as fast as the API takes
// them) from opts.Concurrency workers.
func (c *client) send(ctx context.Context, appID string, sc Scenario, opts LocalOptions, bar *progressBar) loadResult {
	jobs := make(chan int, opts.Concurrency)
	go func() {
		defer close(jobs)
		start := time.Now()
		for i := range sc.Messages {
			if sc.Rate > 0 {
				due := start.Add(time.Duration(float64(i) / sc.Rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()

	path := "/api/v1/app/" + appID + "/msg?with_content=false"
	var (
		mu  sync.Mutex
		out loadResult
		wg  sync.WaitGroup
		n   atomic.Int64
	)
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var acc []acceptedMsg
			var lats []time.Duration
			var errs []string
			rejected := 0
			var last time.Time
			for seq := range jobs {
				var m struct {
					ID        string `json:"id"`
					Timestamp string `json:"timestamp"`
				}
				t0 := time.Now()
				err := c.do(ctx, "POST", path, messageBody(seq, opts.PayloadBytes), http.StatusAccepted, &m)
				now := time.Now()
				last = now
				if bar != nil {
					bar.sent.Add(1)
				}
				n.Add(1)
				if err != nil {
					rejected++
					if len(errs) < 3 {
						errs = append(errs, err.Error())
					}
					continue
				}
				ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
				if err != nil {
					rejected++
					errs = append(errs, fmt.Sprintf("bad timestamp %q", m.Timestamp))
					continue
				}
				lats = append(lats, now.Sub(t0))
				acc = append(acc, acceptedMsg{id: m.ID, ts: ts})
			}
			mu.Lock()
			defer mu.Unlock()
			out.accepted = append(out.accepted, acc...)
			out.latencies = append(out.latencies, lats...)
			out.rejected += rejected
			if len(out.errors) < 5 {
				out.errors = append(out.errors, errs...)
			}
			if last.After(out.lastResponse) {
				out.lastResponse = last
			}
		}()
	}
	wg.Wait()
	return out
}

// RunLocal runs the scenarios one after another, each on a fresh server.
func RunLocal(ctx context.Context, opts LocalOptions, scenarios []Scenario) ([]*ScenarioResult, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.PayloadBytes <= 0 {
		opts.PayloadBytes = 1024
	}
	if opts.Drain <= 0 {
		opts.Drain = 30 * time.Second
	}
	if _, err := os.Stat(opts.Server); err != nil {
		return nil, fmt.Errorf("local-mode binary: %w (go build -o %s ./functions/local)", err, opts.Server)
	}
	var results []*ScenarioResult
	for _, sc := range scenarios {
		// The previous scenario's database was just deleted: let the
		// kernel write back what it still holds before timing again.
		syscall.Sync()
		r, err := runScenario(ctx, opts, sc)
		if err != nil {
			return results, err
		}
		results = append(results, r)
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
	}
	if len(results) == 0 {
		return nil, errors.New("no scenario ran")
	}
	return results, nil
}

// fetchProfile records a CPU profile of d from the server's pprof
// listener into path.
func fetchProfile(ctx context.Context, addr string, d time.Duration, path string) error {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
