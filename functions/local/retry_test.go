package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
)

// compressed is the default schedule's shape at millisecond scale: 8 waits,
// 9 attempts.
const compressed = "0s,50ms,100ms,150ms,200ms,250ms,300ms,300ms"

var compressedWaits = []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond,
	200 * time.Millisecond, 250 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}

// TestRetriesFollowTheSchedule: a receiver that fails n times then succeeds
// gets exactly n+1 attempts, each after its scheduled wait; one that always
// fails gets 9 attempts and the message ends fail.
func TestRetriesFollowTheSchedule(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, map[string]string{"HOOKSTEP_RETRY_SCHEDULE": compressed})
	c := s.Client
	const alwaysFail = 100
	failures := map[string]int{}
	rcv := newReceiver(t, func(id string, n int) int {
		if n <= failures[id] {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	app, _ := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Messages are created first and their failure counts set before the
	// receiver can see them: the receiver reads failures under its lock.
	cases := []int{0, 1, 3, alwaysFail}
	ids := make([]string, len(cases))
	rcv.mu.Lock()
	for i, n := range cases {
		m, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", i)}, nil)
		if err != nil {
			rcv.mu.Unlock()
			t.Fatal(err)
		}
		ids[i] = m.Id
		failures[m.Id] = n
	}
	rcv.mu.Unlock()

	for i, n := range cases {
		id := ids[i]
		want := n + 1
		if n == alwaysFail {
			want = len(compressedWaits) + 1
		}
		eventually(t, 20*time.Second, "the end of "+id, func() bool {
			l, err := c.MessageAttempt.ListAttemptedMessages(ctx, app.Id, ep.Id, nil)
			if err != nil {
				return false
			}
			for _, m := range l.Data {
				if m.Id == id {
					return m.Status == models.MESSAGESTATUS_SUCCESS || m.Status == models.MESSAGESTATUS_FAIL
				}
			}
			return false
		})
		got := rcv.of(id)
		if len(got) != want {
			t.Errorf("message with %d failures: got %d attempts, want %d", n, len(got), want)
			continue
		}
		for k := 1; k < len(got); k++ {
			gap := got[k].At.Sub(got[k-1].At)
			wait := compressedWaits[k-1]
			// Never early; late only by scheduling slack.
			if gap < wait || gap > wait+time.Second {
				t.Errorf("message with %d failures: attempt %d came %s after attempt %d, want %s", n, k+1, gap, k, wait)
			}
		}
		attempts, err := c.MessageAttempt.ListByMsg(ctx, app.Id, id, nil)
		if err != nil || len(attempts.Data) != want {
			t.Errorf("message with %d failures: %d attempts listed (%v), want %d", n, len(attempts.Data), err, want)
		}
	}
	dest, err := c.MessageAttempt.ListAttemptedDestinations(ctx, app.Id, ids[3], nil)
	if err != nil || len(dest.Data) != 1 || dest.Data[0].Status != models.MESSAGESTATUS_FAIL || dest.Data[0].StatusText != models.MESSAGESTATUSTEXT_FAIL {
		t.Errorf("always failing message: got %+v, %v; want status fail", dest, err)
	}
}

// TestSurvivesKill9: deliveries waiting between retries when the process
// is killed with SIGKILL are all delivered after a restart.
func TestSurvivesKill9(t *testing.T) {
	ctx := context.Background()
	bin := buildBinary(t)
	dataDir := t.TempDir()
	// Each message fails twice (attempts 1 and 2, 0 s apart), then waits
	// 3 s: that is when the process dies.
	rcv := newReceiver(t, func(_ string, n int) int {
		if n <= 2 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	start := func() (*exec.Cmd, string) {
		return startProcess(t, bin, nil, "HOOKSTEP_DATA_DIR="+dataDir, "HOOKSTEP_RETRY_SCHEDULE=0s,3s,3s", "HOOKSTEP_LOG_LEVEL=warn")
	}

	cmd, base := start()
	c := newClient(t, base, testToken)
	const n = 20
	app, ids := messagesTo(t, c, rcv.URL, n)
	// Recorded, not only received: a kill between a request and its
	// record leaves that attempt in flight, to be made again at restart
	// (README, Durability), which is not what this test is about.
	eventually(t, 10*time.Second, "two failed attempts per message, recorded", func() bool {
		for _, id := range ids {
			if len(rcv.of(id)) < 2 {
				return false
			}
			l, err := c.MessageAttempt.ListByMsg(ctx, app.Id, id, nil)
			if err != nil || len(l.Data) < 2 {
				return false
			}
		}
		return true
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, id := range ids {
		if rcv.succeeded(id) {
			t.Fatalf("message %s was delivered before the kill; the test needs them waiting", id)
		}
	}

	start()
	for _, id := range ids {
		eventually(t, 30*time.Second, "delivery of "+id+" after restart", func() bool { return rcv.succeeded(id) })
	}
	for _, id := range ids {
		if got := len(rcv.of(id)); got != 3 {
			t.Errorf("message %s: got %d requests, want 3 (2 failures, 1 success)", id, got)
		}
	}
}

// TestPrivateTargetsRefused: with HOOKSTEP_ALLOW_PRIVATE_TARGETS=false,
// literal private addresses are refused at create, and a name that
// resolves to loopback is refused at dial time: the canary on 127.0.0.1
// sees no connection and the attempt is recorded as failed.
func TestPrivateTargetsRefused(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, map[string]string{"HOOKSTEP_ALLOW_PRIVATE_TARGETS": "false", "HOOKSTEP_RETRY_SCHEDULE": "0s"})
	c := s.Client
	var conns atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			conn.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	app, _ := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)

	for _, u := range []string{
		"http://127.0.0.1:%d/", "http://[::1]:%d/", "http://[::ffff:127.0.0.1]:%d/",
		"http://2130706433:%d/", "http://0x7f.1:%d/", "http://127.1:%d/",
	} {
		u = strings.Replace(u, "%d", strconv.Itoa(port), 1)
		if _, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: u}, nil); err == nil || !strings.Contains(err.Error(), "422") {
			t.Errorf("endpoint %s: got %v, want a 422", u, err)
		}
	}

	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "http://localhost:" + strconv.Itoa(port) + "/hook"}, nil)
	if err != nil {
		t.Fatalf("a host name is checked at dial time, not at create: %v", err)
	}
	m, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "two failed attempts", func() bool {
		l, err := c.MessageAttempt.ListByMsg(ctx, app.Id, m.Id, nil)
		return err == nil && len(l.Data) == 2
	})
	l, _ := c.MessageAttempt.ListByEndpoint(ctx, app.Id, ep.Id, nil)
	for _, a := range l.Data {
		if a.Status != models.MESSAGESTATUS_FAIL || a.ResponseStatusCode != 0 {
			t.Errorf("attempt %s: status %d code %d, want a failure without response", a.Id, a.Status, a.ResponseStatusCode)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the canary saw %d connections, want 0", n)
	}
}

// buildBinary builds the local-mode binary for tests that kill it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hookstep")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProcess starts the binary on a free loopback port with the test
// token and env (HOOKSTEP_DATA_DIR among it), waits until it listens and
// returns it and its URL; it is killed when the test ends. Its log goes
// to the test's, and to log if not nil.
func startProcess(t *testing.T, bin string, log io.Writer, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), "HOOKSTEP_ADDR=127.0.0.1:0", "HOOKSTEP_ADMIN_TOKEN="+testToken), env...)
	cmd.Stderr = testLog{t}
	if log != nil {
		cmd.Stderr = io.MultiWriter(testLog{t}, log)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "hookstep listening on "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, u
		}
	}
	t.Fatal("the server printed no address")
	return nil, ""
}

// messagesTo creates an app with one endpoint at url and n messages to
// it, and returns the app and the messages' ids.
func messagesTo(t *testing.T, c *svix.Svix, url string, n int) (*models.ApplicationOut, []string) {
	t.Helper()
	ctx := context.Background()
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: url}, nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		m, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Id)
	}
	return app, ids
}
