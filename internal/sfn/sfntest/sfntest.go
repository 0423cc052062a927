// Package sfntest is a fake of the Step Functions JSON protocol
// (awsJson1_0) on 127.0.0.1 that implements StartExecution only. It
// records every request exactly as it arrived and can be told to fail, so
// tests see what the real SDK sends over the wire.
package sfntest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// StartExecution is one request received.
type StartExecution struct {
	StateMachineArn string `json:"stateMachineArn"`
	Name            string `json:"name"`
	Input           string `json:"input"`
}

// Server is the fake service.
type Server struct {
	URL string

	// OnStart, when set before the first call, is told of every execution
	// started (in its own goroutine), so a test can play the state machine.
	OnStart func(StartExecution)

	mu    sync.Mutex
	calls []StartExecution
	names map[string]string // name → input of executions started
	fail  int               // answer the next fail calls with a 500
}

// New starts a fake on a free loopback port, stopped when the test ends.
func New(t testing.TB) *Server {
	s := &Server{names: map[string]string{}}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// FailNext makes the next n StartExecution calls fail with a service error.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.fail = n
	s.mu.Unlock()
}

// Calls returns the StartExecution requests received so far, failed ones
// included.
func (s *Server) Calls() []StartExecution {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StartExecution(nil), s.calls...)
}

// Started returns the input of each execution started, by name.
func (s *Server) Started() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.names))
	for k, v := range s.names {
		out[k] = v
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if r.Header.Get("X-Amz-Target") != "AWSStepFunctions.StartExecution" {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "only StartExecution is faked")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in StartExecution
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, in)
	if s.fail > 0 {
		s.fail--
		writeError(w, http.StatusInternalServerError, "ServiceUnavailable", "injected failure")
		return
	}
	// Like the real service: the same name with the same input while it
	// runs is idempotent; otherwise a reused name is refused.
	if prev, ok := s.names[in.Name]; ok && prev != in.Input {
		writeError(w, http.StatusBadRequest, "ExecutionAlreadyExists", "Execution Already Exists: '"+in.Name+"'")
		return
	}
	if _, started := s.names[in.Name]; !started && s.OnStart != nil {
		go s.OnStart(in)
	}
	s.names[in.Name] = in.Input
	json.NewEncoder(w).Encode(map[string]any{
		"executionArn": in.StateMachineArn + ":" + in.Name,
		"startDate":    float64(time.Now().Unix()),
	})
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
