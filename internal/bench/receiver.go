package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Behaviour is how a receiver answers.
type Behaviour int

// The behaviours.
const (
	Healthy Behaviour = iota // 200 at once
	Failing                  // 500 at once
	Hanging                  // no answer until the client gives up
	// Recovering answers 500 to the first recoveringFailures requests
	// for each message id, then 200: a receiver's blip, which the
	// schedule's retries outlast.
	Recovering
)

// recoveringFailures is how many requests per message id a Recovering
// receiver fails: the first attempt and the schedule's immediate retry,
// so that the delivery succeeds on the first attempt made after a wait
// (recoversOnAttempt).
const recoveringFailures = recoversOnAttempt - 1

func (b Behaviour) String() string {
	return [...]string{"healthy", "failing", "hanging", "recovering"}[b]
}

// receiver is one endpoint's HTTP server on 127.0.0.1. It records when
// the first request for each message id arrived.
type receiver struct {
	behaviour Behaviour
	URL       string
	srv       *http.Server

	attempts atomic.Int64 // requests received
	firsts   atomic.Int64 // distinct message ids seen

	mu    sync.Mutex
	first map[string]time.Time // webhook-id → arrival of its first request
	tries map[string]int       // webhook-id → requests so far (Recovering only)
	hangs []time.Duration      // how long each hanging request was held
}

// startReceiver listens on a free loopback port.
func startReceiver(b Behaviour, expect int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{behaviour: b, URL: "http://" + ln.Addr().String() + "/hook", first: make(map[string]time.Time, expect), tries: map[string]int{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// ServeHTTP implements http.Handler.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	_, _ = io.Copy(io.Discard, req.Body)
	r.attempts.Add(1)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	if _, seen := r.first[id]; !seen {
		r.first[id] = now
		r.firsts.Add(1)
	}
	var tries int
	if r.behaviour == Recovering {
		r.tries[id]++
		tries = r.tries[id]
	}
	r.mu.Unlock()
	switch r.behaviour {
	case Healthy:
		w.WriteHeader(http.StatusOK)
	case Failing:
		w.WriteHeader(http.StatusInternalServerError)
	case Recovering:
		if tries <= recoveringFailures {
			w.WriteHeader(http.StatusInternalServerError)
		} else {
			w.WriteHeader(http.StatusOK)
		}
	case Hanging:
		select {
		case <-req.Context().Done():
		case <-time.After(10 * time.Minute):
		}
		r.mu.Lock()
		r.hangs = append(r.hangs, time.Since(now))
		r.mu.Unlock()
	}
}

// firstArrival returns when the first request for msgID arrived.
func (r *receiver) firstArrival(msgID string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.first[msgID]
	return t, ok
}

// hangDurations returns how long each finished hanging request was held.
func (r *receiver) hangDurations() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.hangs...)
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r.srv.Shutdown(ctx) != nil {
		r.srv.Close() // hanging requests: cut them
	}
}
