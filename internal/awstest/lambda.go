package awstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Lambda is a fake of Lambda's Invoke API on 127.0.0.1 for the
// asynchronous invokes hookstep makes (the api function handing runs to
// the sweeper): each is answered 202 at once, and its payload handed to
// the function's handler in the background, one at a time per function,
// as one instance of it would take them. Nothing else of Lambda is
// played: the harness stands in for its event queue.
type Lambda struct {
	URL string

	mu       sync.Mutex
	handlers map[string]func(payload []byte)
	turns    map[string]*sync.Mutex
	invokes  map[string]int
	refuse   bool
	inFlight sync.WaitGroup
}

// NewLambda starts the fake, stopped (after its handlers return) when the
// test ends.
func NewLambda(t testing.TB) *Lambda {
	l := &Lambda{handlers: map[string]func([]byte){}, turns: map[string]*sync.Mutex{}, invokes: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(l.serve))
	t.Cleanup(func() { srv.Close(); l.inFlight.Wait() })
	l.URL = srv.URL
	return l
}

// Handle sets what the function named name (or an ARN ending in it) does
// with each payload.
func (l *Lambda) Handle(name string, h func(payload []byte)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[name] = h
	l.turns[name] = &sync.Mutex{}
}

// Refuse makes invokes fail (429, as a throttled Invoke) while on.
func (l *Lambda) Refuse(on bool) {
	l.mu.Lock()
	l.refuse = on
	l.mu.Unlock()
}

// Invokes returns how many invokes of the function were accepted.
func (l *Lambda) Invokes(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.invokes[name]
}

// Wait waits until every accepted invoke has been handled.
func (l *Lambda) Wait() { l.inFlight.Wait() }

func (l *Lambda) serve(w http.ResponseWriter, r *http.Request) {
	// POST /2015-03-31/functions/{name or ARN}/invocations
	fn, _ := url.PathUnescape(strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/"), "/invocations"))
	payload, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	var name string
	for n := range l.handlers {
		if fn == n || strings.HasSuffix(fn, ":"+n) {
			name = n
		}
	}
	refuse := l.refuse
	if name != "" && !refuse {
		l.invokes[name]++
		l.inFlight.Add(1)
	}
	h, turn := l.handlers[name], l.turns[name]
	l.mu.Unlock()
	switch {
	case name == "":
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"Type":"User","message":"Function not found: `+fn+`"}`)
		return
	case refuse:
		w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"Type":"User","message":"Rate Exceeded."}`)
		return
	case r.Header.Get("X-Amz-Invocation-Type") != "Event":
		l.inFlight.Done()
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"Type":"User","message":"only asynchronous invokes are faked"}`)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	go func() {
		defer l.inFlight.Done()
		turn.Lock()
		defer turn.Unlock()
		h(payload)
	}()
}
