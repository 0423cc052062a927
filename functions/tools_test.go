package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireTool finds a tool the test cannot run without. `make test` (and
// CI) installs them all and sets HOOKSTEP_REQUIRE_AWS_TOOLS=1, which turns
// a missing tool into a failure; a bare `go test` says what is missing in
// one line and skips.
func requireTool(t *testing.T, what, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found at %s; `make test` installs it", what, path)
	if os.Getenv("HOOKSTEP_REQUIRE_AWS_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// repoRoot is the repository's top directory (this file is in functions/).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until something accepts connections at addr.
func waitListening(t *testing.T, addr string, proc *exec.Cmd) {
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
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listening at %s after 20s", addr)
}

// startProcess starts a long-running helper process in its own process
// group, logging to the test, and kills the group when the test ends.
func startProcess(t *testing.T, env []string, name string, args ...string) *exec.Cmd {
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
	t    *testing.T
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.name + ": " + line)
	}
	return len(p), nil
}

// buildBootstrap builds a function as Lambda runs it (a static binary
// named bootstrap, lambda.norpc), for this machine's architecture so the
// emulator can run it here; `make build` builds the arm64 release.
func buildBootstrap(t *testing.T, root, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, "./functions/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// function is one Lambda function running under the runtime emulator.
type function struct {
	name string
	url  string
}

// startFunction runs bootstrap under aws-lambda-rie, both of its addresses
// on 127.0.0.1 (without the flags it would listen on every interface).
func startFunction(t *testing.T, rie, bootstrap string, env []string) *function {
	t.Helper()
	addr, apiAddr := freeAddr(t), freeAddr(t)
	env = append(env, "AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "LOG_LEVEL=warn")
	proc := startProcess(t, env, rie,
		"--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	waitListening(t, addr, proc)
	return &function{name: filepath.Base(filepath.Dir(bootstrap)), url: "http://" + addr + "/2015-03-31/functions/function/invocations"}
}

// invoke calls the function with event and decodes its result into out.
func (f *function) invoke(t *testing.T, event, out any) {
	t.Helper()
	b, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(b))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoke %s: %v", f.name, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("X-Amz-Function-Error") != "" {
		t.Fatalf("invoke %s: %d %s", f.name, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("invoke %s: result %s: %v", f.name, body, err)
	}
}
