package awstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// BuildFunction builds functions/<name> at out as `make build` does — a
// static, stripped binary named bootstrap, tagged lambda.norpc — for
// goarch: arm64 for the release, runtime.GOARCH for the emulator here.
func BuildFunction(ctx context.Context, root, name, goarch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", out, "./functions/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %v\n%s", name, goarch, err, b)
	}
	return nil
}

// Build builds functions/<name> for this machine's architecture, so that
// the emulator can run it here, and returns the bootstrap's path.
func Build(t testing.TB, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name, "bootstrap")
	if err := BuildFunction(t.Context(), Root(t), name, runtime.GOARCH, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// StartEmulator runs bootstrap under the runtime emulator (rie) with env
// added to this process's environment, both of the emulator's addresses
// on 127.0.0.1 (without the flags it would listen on every interface),
// its output and the function's to out. It returns once the emulator
// accepts invocations, with its invoke URL; the emulator starts the
// bootstrap on the first one (the cold start).
func StartEmulator(rie, bootstrap string, env []string, out io.Writer) (*Process, string, error) {
	addr, err := PickAddr()
	if err != nil {
		return nil, "", err
	}
	apiAddr, err := PickAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := StartProcess(env, out, rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitListening(addr); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, "http://" + addr + "/2015-03-31/functions/function/invocations", nil
}

// Invoke calls the function behind an emulator's invoke URL with event
// (JSON) and returns its raw result, and with it an error if the
// function failed.
func Invoke(ctx context.Context, url string, event any) ([]byte, error) {
	b, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	var fnErr struct {
		ErrorType string `json:"errorType"`
	}
	_ = json.Unmarshal(body, &fnErr)
	if res.StatusCode != http.StatusOK || fnErr.ErrorType != "" {
		return body, fmt.Errorf("%d %s", res.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// Function is a Lambda function running under the runtime emulator for a
// test.
type Function struct {
	Name string
	URL  string // the emulator's invoke URL
}

// Run starts bootstrap under the emulator with env, its output logged to
// the test, and stops it when the test ends.
func Run(t testing.TB, bootstrap string, env []string) *Function {
	t.Helper()
	rie := RIE(t)
	// Defaults first: a value in env wins (the last of a key is used).
	env = append([]string{"AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "LOG_LEVEL=warn"}, env...)
	p, url, err := StartEmulator(rie, bootstrap, env, logWriter{t, filepath.Base(rie)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &Function{Name: filepath.Base(filepath.Dir(bootstrap)), URL: url}
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
	body, err := Invoke(context.Background(), f.URL, event)
	if err != nil {
		return body, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	return body, nil
}

// InvokeInto calls the function and decodes its result into out.
func (f *Function) InvokeInto(t testing.TB, event, out any) {
	t.Helper()
	body := f.Invoke(t, event)
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("invoke %s: result %s: %v", f.Name, body, err)
	}
}
