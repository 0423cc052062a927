package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// LoopbackRun is one measurement of the loopback POST ceiling: a net/http
// client and a receiver in this process, POSTing as fast as they go.
type LoopbackRun struct {
	Posts      int     `json:"posts"`
	PerSec     float64 `json:"postsPerSec"`
	Elapsed    float64 `json:"elapsedSeconds"`
	CPUSeconds float64 `json:"cpuSeconds"`
	// CPUPer1kPosts is this process's CPU seconds (client and server
	// together) per 1,000 POSTs.
	CPUPer1kPosts float64 `json:"cpuSecondsPer1kPosts"`
}

// LoopbackCeiling is the loopback POST ceiling of the sitting: measured
// before and after the local scenarios, and the mean of the two, which
// the shares are taken of.
type LoopbackCeiling struct {
	Concurrency  int          `json:"concurrency"`
	PayloadBytes int          `json:"payloadBytes"`
	Before       *LoopbackRun `json:"before,omitempty"`
	After        *LoopbackRun `json:"after,omitempty"`
	// PerSec and CPUPer1kPosts are the means of the runs made.
	PerSec        float64 `json:"postsPerSec"`
	CPUPer1kPosts float64 `json:"cpuSecondsPer1kPosts"`
}

// NewLoopbackCeiling combines the runs made (before, after; either may
// be nil) into their means; nil if neither was made.
func NewLoopbackCeiling(opts LocalOptions, before, after *LoopbackRun) *LoopbackCeiling {
	c := &LoopbackCeiling{Concurrency: opts.Concurrency, PayloadBytes: opts.PayloadBytes, Before: before, After: after}
	var n float64
	for _, r := range []*LoopbackRun{before, after} {
		if r == nil {
			continue
		}
		c.PerSec += r.PerSec
		c.CPUPer1kPosts += r.CPUPer1kPosts
		n++
	}
	if n == 0 {
		return nil
	}
	c.PerSec = round(c.PerSec/n, 1)
	c.CPUPer1kPosts = round(c.CPUPer1kPosts/n, 4)
	return c
}

// Shares is a scenario's rates as shares of the ceiling's POSTs/s, and
// its server CPU per 1,000 deliveries as a multiple of the ceiling's CPU
// per 1,000 POSTs.
type Shares struct {
	Accepted   float64 `json:"acceptedPerSec"`
	Deliveries float64 `json:"deliveriesPerSec"`
	CPUPer1k   float64 `json:"cpuPer1kTimesCeiling"`
}

// share is v as a share of the ceiling c, 0 without one.
func share(v, c float64) float64 {
	if c <= 0 {
		return 0
	}
	return round(v/c, 3)
}

// SetCeiling records the ceiling and every local scenario's shares of it.
func (r *Report) SetCeiling(c *LoopbackCeiling) {
	r.Ceiling = c
	for _, s := range r.Scenarios {
		s.Share = nil
		if c == nil {
			continue
		}
		s.Share = &Shares{
			Accepted:   share(s.Ingest.PerSec, c.PerSec),
			Deliveries: share(s.Delivery.PerSec, c.PerSec),
			CPUPer1k:   share(s.Server.CPUPer1kDeliveries, c.CPUPer1kPosts),
		}
	}
}

// MeasureCeiling POSTs ~opts.PayloadBytes bodies from opts.Concurrency
// workers to a healthy receiver in this process for d, and measures the
// rate and this process's CPU: the most a webhook sender on this machine
// could do, one POST per delivery and nothing else.
func MeasureCeiling(ctx context.Context, opts LocalOptions, d time.Duration) (*LoopbackRun, error) {
	if opts.Concurrency <= 0 || opts.PayloadBytes <= 0 || d <= 0 {
		return nil, errors.New("ceiling: concurrency, payload and duration must be positive")
	}
	recv, err := startReceiver(Healthy, 0)
	if err != nil {
		return nil, err
	}
	defer recv.close()
	// The same transport settings as the load generator's client.
	hc := newClient(recv.URL, "", opts.Concurrency).http
	defer hc.CloseIdleConnections()

	body := messageBody(0, opts.PayloadBytes)
	var (
		seq     atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		failed  error
	)
	post := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, recv.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", fmt.Sprintf("msg_%d", seq.Add(1)))
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ceiling: receiver answered %d", resp.StatusCode)
		}
		return nil
	}
	// Warm the connections up, as the scenarios' setup does.
	for range opts.Concurrency {
		if err := post(ctx); err != nil {
			return nil, err
		}
	}
	recv.attempts.Store(0)

	cpu0, err := procCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	until := start.Add(d)
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(until) && ctx.Err() == nil {
				if err := post(ctx); err != nil {
					errOnce.Do(func() { failed = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := procCPU(os.Getpid())
	if err != nil {
		return nil, err
	}
	if failed != nil {
		return nil, failed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := int(recv.attempts.Load())
	if n == 0 {
		return nil, errors.New("ceiling: no POST made")
	}
	cpu := (cpu1 - cpu0).Seconds()
	return &LoopbackRun{
		Posts:         n,
		PerSec:        perSecond(n, elapsed),
		Elapsed:       round(elapsed.Seconds(), 2),
		CPUSeconds:    round(cpu, 2),
		CPUPer1kPosts: round(cpu/float64(n)*1000, 4),
	}, nil
}

// writeLine writes the ceiling above the local-mode table: each run and
// the mean the shares are taken of.
func (c *LoopbackCeiling) writeLine(w io.Writer) {
	if c == nil {
		fmt.Fprintln(w, "(no loopback POST ceiling measured: no shares)")
		return
	}
	run := func(label string, r *LoopbackRun) string {
		if r == nil {
			return label + " -"
		}
		return fmt.Sprintf("%s %.0f/s (CPU %.3f s/1k)", label, r.PerSec, r.CPUPer1kPosts)
	}
	fmt.Fprintf(w, "(loopback POST ceiling, %d in flight, %d-byte payload: %s, %s; mean %.0f POSTs/s, CPU %.3f s per 1,000 POSTs;\n",
		c.Concurrency, c.PayloadBytes, run("before", c.Before), run("after", c.After), c.PerSec, c.CPUPer1kPosts)
	fmt.Fprintln(w, " acc/ceil, del/ceil: accepted/s and deliveries/s as shares of the mean; CPU/ceil: CPU/1k as a multiple of its CPU per 1,000 POSTs)")
}
