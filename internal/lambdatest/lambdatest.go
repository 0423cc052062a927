// Package lambdatest runs hookstep's AWS pieces on this machine for tests
// and benchmarks: dynalite (the DynamoDB API, from infra/node_modules) and
// the real Lambda bootstrap binaries under the AWS Lambda Runtime Interface
// Emulator. Everything binds 127.0.0.1 on a free port, runs in its own
// process group, and is killed when the test ends.
//
// The tools come from `make test` (npm ci in infra/, go install of the
// emulator). When one is missing, a test fails if HOOKSTEP_REQUIRE_AWS_TOOLS
// is 1 (make test and CI set it) and otherwise skips with one line saying
// how to install it.
package lambdatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Root returns the repository's top directory, found from this source
// file's location so that any package's tests can call it.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("lambdatest: cannot locate the repository")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// RequireTool returns path if it exists; otherwise it fails the test (when
// HOOKSTEP_REQUIRE_AWS_TOOLS=1) or skips it with one line.
func RequireTool(t testing.TB, what, path string) string {
	t.Helper()
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("%s not found at %q; `make test` installs it", what, path)
	if os.Getenv("HOOKSTEP_REQUIRE_AWS_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RIE returns the path of the Lambda runtime emulator that make test
// installs (HOOKSTEP_RIE, or build/tools/aws-lambda-rie).
func RIE(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HOOKSTEP_RIE")
	if path == "" {
		path = filepath.Join(Root(t), "build", "tools", "aws-lambda-rie")
	}
	return RequireTool(t, "the Lambda runtime emulator", path)
}

// FreeAddr returns a free 127.0.0.1 address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start runs a helper process in its own process group, its output logged
// to the test, and kills the group when the test ends.
func Start(t testing.TB, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logWriter{t, filepath.Base(name)}, logWriter{t, filepath.Base(name)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

type logWriter struct {
	t    testing.TB
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.HasPrefix(line, "START RequestId") || strings.HasPrefix(line, "END RequestId") {
			continue // the emulator's per-invocation noise
		}
		w.t.Log(w.name + ": " + line)
	}
	return len(p), nil
}

// WaitListening waits until something accepts connections at addr.
func WaitListening(t testing.TB, addr string, proc *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if proc.ProcessState != nil {
			t.Fatalf("%s exited before listening", proc.Path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listening at %s after 20s", addr)
}

// Dynalite starts an in-memory dynalite and returns its endpoint URL.
func Dynalite(t testing.TB) string {
	t.Helper()
	bin := RequireTool(t, "dynalite", filepath.Join(Root(t), "infra", "node_modules", ".bin", "dynalite"))
	addr := FreeAddr(t)
	host, port, _ := strings.Cut(addr, ":")
	proc := Start(t, nil, bin, "--host", host, "--port", port, "--createTableMs", "0", "--deleteTableMs", "0")
	WaitListening(t, addr, proc)
	return "http://" + addr
}

// Build builds functions/<name> as Lambda runs it — a static binary named
// bootstrap, tagged lambda.norpc — for this machine's architecture, so that
// the emulator can run it here (make build makes the arm64 release).
func Build(t testing.TB, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, "./functions/"+name)
	cmd.Dir = Root(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// Function is a Lambda function running under the runtime emulator.
type Function struct {
	Name string
	URL  string // the emulator's invoke URL
}

// Run starts bootstrap under the emulator with env, both of the
// emulator's addresses on 127.0.0.1 (without the flags it would listen on
// every interface).
func Run(t testing.TB, bootstrap string, env []string) *Function {
	t.Helper()
	rie := RIE(t)
	addr, apiAddr := FreeAddr(t), FreeAddr(t)
	// Defaults first: a value in env wins (the last of a key is used).
	env = append([]string{"AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "LOG_LEVEL=warn"}, env...)
	proc := Start(t, env, rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	WaitListening(t, addr, proc)
	return &Function{Name: filepath.Base(filepath.Dir(bootstrap)), URL: "http://" + addr + "/2015-03-31/functions/function/invocations"}
}

// Invoke calls the function with event and returns its raw result. A
// function error fails the test.
func (f *Function) Invoke(t testing.TB, event any) []byte {
	t.Helper()
	body, err := f.Call(event)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// Call is Invoke that returns a function error instead of failing the
// test, for calls from other goroutines.
func (f *Function) Call(event any) ([]byte, error) {
	b, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(b))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var fnErr struct {
		ErrorType string `json:"errorType"`
	}
	json.Unmarshal(body, &fnErr)
	if res.StatusCode != http.StatusOK || fnErr.ErrorType != "" {
		return body, fmt.Errorf("invoke %s: %d %s", f.Name, res.StatusCode, body)
	}
	return body, nil
}

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

// InvokeInto calls the function and decodes its result into out.
func (f *Function) InvokeInto(t testing.TB, event, out any) {
	t.Helper()
	body := f.Invoke(t, event)
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("invoke %s: result %s: %v", f.Name, body, err)
	}
}
