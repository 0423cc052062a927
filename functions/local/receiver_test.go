package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook endpoint on 127.0.0.1 that records every request
// and answers with a status chosen per request.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	counts   map[string]int                // requests by message id
	ok       map[string]bool               // message ids answered 2xx
	answer   func(msgID string, n int) int // n counts this message's requests from 1
}

type received struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
	Status int
}

func newReceiver(t *testing.T, answer func(msgID string, n int) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer, counts: map[string]int{}, ok: map[string]bool{}}
	r.Server = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	// Against a deployment in containers (LocalStack), the receiver must be
	// reachable from there: HOOKSTEP_E2E_LISTEN picks the address and
	// HOOKSTEP_E2E_RECEIVER_HOST the host name hookstep is given. Tests
	// against local mode keep the loopback default.
	if addr := os.Getenv("HOOKSTEP_E2E_LISTEN"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r.Server.Listener.Close()
		r.Server.Listener = ln
	}
	r.Server.Start()
	if host := os.Getenv("HOOKSTEP_E2E_RECEIVER_HOST"); host != "" {
		_, port, _ := net.SplitHostPort(r.Server.Listener.Addr().String())
		r.URL = "http://" + net.JoinHostPort(host, port)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.counts[id]++
	n := r.counts[id]
	status := http.StatusOK
	if r.answer != nil {
		status = r.answer(id, n)
	}
	if status < 300 {
		r.ok[id] = true
	}
	r.requests = append(r.requests, received{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, At: time.Now(), Status: status})
	r.mu.Unlock()
	w.WriteHeader(status)
	io.WriteString(w, `{"ok":true}`)
}

// of returns the requests for one message id, in arrival order.
func (r *receiver) of(msgID string) []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []received
	for _, p := range r.requests {
		if p.Header.Get("webhook-id") == msgID {
			out = append(out, p)
		}
	}
	return out
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

// succeeded reports whether msgID got a 2xx answer.
func (r *receiver) succeeded(msgID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok[msgID]
}

// succeededAll reports how many of the message ids got a 2xx answer.
func (r *receiver) succeededAll(msgIDs []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range msgIDs {
		if r.ok[id] {
			n++
		}
	}
	return n
}
