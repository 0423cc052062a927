package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

const testToken = "hsk_test-token-for-the-e2e-suite"

// server is a local-mode hookstep started in this process by run.
type server struct {
	URL    string
	Client *svix.Svix
	stop   func()
}

// startServer runs hookstep in-process on a free loopback port with a
// fresh data dir (unless env names one) and the test token, and stops it
// when the test ends.
//
// With HOOKSTEP_E2E_URL and HOOKSTEP_E2E_TOKEN set, it uses that
// deployment instead (make localstack-e2e does this); tests that need a
// server configured their own way (env) cannot run against it and say so.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	if base := os.Getenv("HOOKSTEP_E2E_URL"); base != "" {
		if len(env) > 0 {
			t.Skipf("needs a local server started with %v; HOOKSTEP_E2E_URL points at a deployment", env)
		}
		return &server{URL: strings.TrimRight(base, "/"), Client: newClient(t, base, os.Getenv("HOOKSTEP_E2E_TOKEN")), stop: func() {}}
	}
	vars := map[string]string{
		"HOOKSTEP_ADDR":           "127.0.0.1:0",
		"HOOKSTEP_DATA_DIR":       t.TempDir(),
		"HOOKSTEP_ADMIN_TOKEN":    testToken,
		"HOOKSTEP_RETRY_SCHEDULE": "0s,50ms,100ms,100ms,100ms,100ms,100ms,100ms",
		"HOOKSTEP_LOG_LEVEL":      "warn",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, func(k string) string { return vars[k] }, outW, testLog{t})
		outW.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "hookstep listening on "); ok {
				addr <- u
			}
		}
		close(addr)
	}()
	var base string
	select {
	case base = <-addr:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start in 30s")
	}
	var once sync.Once
	s := &server{URL: base, Client: newClient(t, base, testToken)}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

func newClient(t *testing.T, base, token string) *svix.Svix {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := svix.New(token, &svix.SvixOptions{ServerUrl: u, HTTPClient: &http.Client{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testLog sends the server's log to the test's log (shown on failure).
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if os.Getenv("HOOKSTEP_E2E_URL") != "" {
		within *= 6 // a deployment adds cold starts and Step Functions to every delivery
	}
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
