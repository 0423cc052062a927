// Package sfntest is a fake of the Step Functions JSON protocol
// (awsJson1_0) on 127.0.0.1 that implements StartExecution and
// DescribeExecution. It records every StartExecution request exactly as
// it arrived and can be told to fail or throttle, so tests see what the
// real SDK sends over the wire. Executions run until the test ends them
// (End): nothing here plays the state machine itself.
package sfntest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

	mu       sync.Mutex
	calls    []StartExecution
	names    map[string]string // name → input of executions started
	status   map[string]string // name → RUNNING, SUCCEEDED, FAILED, ...
	fail     int               // answer the next fail calls with a 500
	throttle int               // answer the next throttle calls with ThrottlingException
	describe int               // DescribeExecution calls
}

// New starts a fake on a free loopback port, stopped when the test ends.
func New(t testing.TB) *Server {
	s := &Server{names: map[string]string{}, status: map[string]string{}}
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

// ThrottleNext makes the next n StartExecution calls fail with a
// ThrottlingException, as the StartExecution token bucket does.
func (s *Server) ThrottleNext(n int) {
	s.mu.Lock()
	s.throttle = n
	s.mu.Unlock()
}

// End sets the status of a started execution (e.g. "SUCCEEDED", "FAILED",
// "ABORTED"); DescribeExecution reports it from then on.
func (s *Server) End(name, status string) {
	s.mu.Lock()
	s.status[name] = status
	s.mu.Unlock()
}

// Status returns the status of every execution started, by name.
func (s *Server) Status() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.status))
	for k, v := range s.status {
		out[k] = v
	}
	return out
}

// Describes returns how many DescribeExecution calls arrived.
func (s *Server) Describes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.describe
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
	switch r.Header.Get("X-Amz-Target") {
	case "AWSStepFunctions.StartExecution":
	case "AWSStepFunctions.DescribeExecution":
		s.describeExecution(w, r)
		return
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "only StartExecution and DescribeExecution are faked")
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
	if s.throttle > 0 {
		s.throttle--
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	// Like the real service: the same name with the same input while it
	// runs is idempotent; otherwise a reused name is refused.
	if prev, ok := s.names[in.Name]; ok && prev != in.Input {
		writeError(w, http.StatusBadRequest, "ExecutionAlreadyExists", "Execution Already Exists: '"+in.Name+"'")
		return
	}
	if _, started := s.names[in.Name]; !started {
		s.status[in.Name] = "RUNNING"
		if s.OnStart != nil {
			go s.OnStart(in)
		}
	}
	s.names[in.Name] = in.Input
	json.NewEncoder(w).Encode(map[string]any{
		"executionArn": strings.Replace(in.StateMachineArn, ":stateMachine:", ":execution:", 1) + ":" + in.Name,
		"startDate":    float64(time.Now().Unix()),
	})
}

// describeExecution answers with the status of the execution the ARN
// names (its last part), or ExecutionDoesNotExist.
func (s *Server) describeExecution(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ExecutionArn string `json:"executionArn"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	name := in.ExecutionArn[strings.LastIndex(in.ExecutionArn, ":")+1:]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.describe++
	status, ok := s.status[name]
	if !ok {
		writeError(w, http.StatusBadRequest, "ExecutionDoesNotExist", "Execution Does Not Exist: '"+in.ExecutionArn+"'")
		return
	}
	json.NewEncoder(w).Encode(map[string]any{
		"executionArn": in.ExecutionArn, "name": name, "status": status,
		"stateMachineArn": "", "startDate": float64(time.Now().Unix()), "input": s.names[name],
	})
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
