package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svix/svix-webhooks/go/models"
)

// TestKill9ClaimedDeliveriesRunAtRestart: messages accepted while their
// deliveries were claimed and not attempted (parked behind a hanging
// attempt), and the attempt in flight, all arrive within seconds of a
// restart after kill -9 — not when their claims would have ended (45 s) —
// each with its message's webhook-id, and the restart logs how many
// claims it released.
func TestKill9ClaimedDeliveriesRunAtRestart(t *testing.T) {
	bin := buildBinary(t)
	dataDir := t.TempDir()
	rcv := newGatedReceiver(t)
	// Two workers: an endpoint's share is one attempt in flight, so every
	// other delivery to it waits, claimed, behind the hanging one.
	env := []string{"HOOKSTEP_DATA_DIR=" + dataDir, "HOOKSTEP_WORKERS=2", "HOOKSTEP_LOG_LEVEL=info"}
	cmd, base := startProcess(t, bin, nil, env...)
	c := newClient(t, base, testToken)
	const n = 10
	_, ids := messagesTo(t, c, rcv.URL, n)
	eventually(t, 10*time.Second, "the first attempt to hang", func() bool { return len(rcv.arrivals()) == 1 })
	time.Sleep(100 * time.Millisecond) // no second attempt starts: the share is one
	if got := len(rcv.arrivals()); got != 1 {
		t.Fatalf("%d requests before the kill, want 1 in flight and the rest claimed", got)
	}
	inFlight := rcv.arrivals()[0].id
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	rcv.open()

	var log strings.Builder
	var logMu sync.Mutex
	restart := time.Now()
	_, base = startProcess(t, bin, lockedWriter{&logMu, &log}, env...)
	want := slices.Clone(ids)
	slices.Sort(want)
	answered := func() []string {
		got := rcv.answered()
		slices.Sort(got)
		return slices.Compact(got)
	}
	eventually(t, 60*time.Second, "every message after the restart", func() bool { return slices.Equal(answered(), want) })
	if took := time.Since(restart); took > 10*time.Second {
		t.Errorf("the messages arrived %s after the restart, want a few seconds (their claims ran 45 s)", took.Round(time.Millisecond))
	}
	var again int
	for _, a := range rcv.arrivals() {
		if a.id == inFlight {
			again++
		}
	}
	if again != 2 {
		t.Errorf("the attempt in flight at the kill: %d requests with its webhook-id %s, want 2", again, inFlight)
	}
	logMu.Lock()
	defer logMu.Unlock()
	released := regexp.MustCompile(`released deliveries claimed by a previous process.*\bdeliveries=(\d+)\b`).FindStringSubmatch(log.String())
	if released == nil || released[1] != fmt.Sprint(n) {
		t.Errorf("the restart did not log the %d claims it released:\n%s", n, log.String())
	}
}

// TestABacklogDrainsAtTheEndpointsPace: 2,000 failed deliveries recovered
// at once to an endpoint that answers in 100 ms go out at the pace its
// share of the workers allows (32 in flight), with no second in which it
// gets nothing, while another endpoint's new messages keep arriving at
// once.
func TestABacklogDrainsAtTheEndpointsPace(t *testing.T) {
	ctx := context.Background()
	const backlog, workers, answer = 2000, 64, 100 * time.Millisecond
	share := workers / 2 // an endpoint's share (main.go)
	s := startServer(t, map[string]string{"HOOKSTEP_RETRY_SCHEDULE": "0s", "HOOKSTEP_WORKERS": fmt.Sprint(workers)})
	c := s.Client
	busy := newGatedReceiver(t)
	busy.fail() // until the recover: every delivery fails
	other := newReceiver(t, nil)
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: busy.URL, FilterTypes: []string{"v1.end_user.created"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: other.URL, FilterTypes: []string{"v1.conversation.ended"}}, nil); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < backlog; i += 8 {
				if _, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", i)}, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	eventually(t, 60*time.Second, "every delivery to fail", func() bool {
		st, err := c.Endpoint.GetStats(ctx, app.Id, ep.Id, nil)
		return err == nil && st.Fail == backlog
	})

	busy.slow(answer)
	recovered := time.Now()
	if _, err := c.Endpoint.Recover(ctx, app.Id, ep.Id, models.RecoverIn{Since: since}, nil); err != nil {
		t.Fatal(err)
	}
	// The other endpoint's messages, one every 100 ms while the backlog
	// drains, each arrive at once.
	sent := map[string]time.Time{}
	for i := 0; len(busy.answered()) < backlog && time.Since(recovered) < 60*time.Second; i++ {
		at := time.Now()
		m, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.conversation.ended", Payload: payload("v1.conversation.ended", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sent[m.Id] = at
		time.Sleep(100 * time.Millisecond)
	}
	if got := len(busy.answered()); got < backlog {
		t.Fatalf("%d of %d recovered deliveries arrived in a minute", got, backlog)
	}
	arrivals := busy.arrivals()
	last := arrivals[len(arrivals)-1].at
	ideal := time.Duration(backlog) * answer / time.Duration(share)
	t.Logf("the backlog drained in %s (at the share's pace: %s)", last.Sub(recovered).Round(time.Millisecond), ideal)
	if took := last.Sub(recovered); took > ideal*3/2 {
		t.Errorf("the backlog took %s to drain, want at most 1.5 × %s (%d × %s / a share of %d)",
			took.Round(time.Millisecond), ideal, backlog, answer, share)
	}
	prev := recovered
	for _, a := range arrivals {
		if a.at.Before(recovered) {
			continue // the failures before the recover
		}
		if gap := a.at.Sub(prev); gap >= time.Second {
			t.Errorf("no request reached the endpoint for %s, up to %s after the recover", gap.Round(time.Millisecond), a.at.Sub(recovered).Round(time.Millisecond))
		}
		prev = a.at
	}
	eventually(t, 5*time.Second, "the other endpoint's messages", func() bool { return other.count() == len(sent) })
	for id, at := range sent {
		if got := other.of(id); len(got) != 1 || got[0].At.Sub(at) > time.Second {
			t.Errorf("message %s to the other endpoint: %d requests, first %v after it was sent; want 1 within a second",
				id, len(got), firstAfter(got, at))
		}
	}
}

func firstAfter(rs []received, at time.Time) time.Duration {
	if len(rs) == 0 {
		return 0
	}
	return rs[0].At.Sub(at)
}

// gatedReceiver is a webhook endpoint on 127.0.0.1 whose answers the test
// switches: hang until opened, fail at once, or succeed after a delay.
// Unlike receiver, it answers outside its lock, so that slow answers
// overlap.
type gatedReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	log   []arrival
	ok    []string      // webhook-ids answered with a 2xx
	gate  chan struct{} // closed: no longer hangs
	fails bool
	delay time.Duration
}

type arrival struct {
	id string
	at time.Time
}

func newGatedReceiver(t *testing.T) *gatedReceiver {
	t.Helper()
	r := &gatedReceiver{gate: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.open()
		r.Close()
	})
	return r
}

func (r *gatedReceiver) serve(w http.ResponseWriter, req *http.Request) {
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.log = append(r.log, arrival{id, time.Now()})
	gate, fails, delay := r.gate, r.fails, r.delay
	r.mu.Unlock()
	select {
	case <-gate:
	case <-req.Context().Done():
		return
	}
	if fails {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	time.Sleep(delay)
	r.mu.Lock()
	r.ok = append(r.ok, id)
	r.mu.Unlock()
}

// open stops hanging: from now on requests are answered 2xx at once.
func (r *gatedReceiver) open() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.gate:
	default:
		close(r.gate)
	}
}

// fail answers every request 500 at once.
func (r *gatedReceiver) fail() {
	r.open()
	r.mu.Lock()
	r.fails = true
	r.mu.Unlock()
}

// slow answers every request 2xx after d.
func (r *gatedReceiver) slow(d time.Duration) {
	r.open()
	r.mu.Lock()
	r.fails, r.delay = false, d
	r.mu.Unlock()
}

func (r *gatedReceiver) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *gatedReceiver) answered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ok)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
