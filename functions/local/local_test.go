package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFirstStartGeneratesATokenAndWarnsAboutPrivateTargets(t *testing.T) {
	dir := t.TempDir()
	var out, logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, func(k string) string {
			return map[string]string{"HOOKSTEP_ADDR": "127.0.0.1:0", "HOOKSTEP_DATA_DIR": dir}[k]
		}, &out, &logs)
	}()
	eventually(t, 10*time.Second, "the server to start", func() bool { return strings.Contains(out.String(), "listening on") })

	// A second process on the same data dir is refused.
	err := run(context.Background(), func(k string) string {
		return map[string]string{"HOOKSTEP_ADDR": "127.0.0.1:0", "HOOKSTEP_DATA_DIR": dir}[k]
	}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second process on the same data dir: got %v, want refused", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if !strings.Contains(logs.String(), "private and loopback delivery targets are allowed") {
		t.Errorf("no warning about private targets in the log:\n%s", logs.String())
	}
	var token, base string
	for _, line := range strings.Split(out.String(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "hsk_") {
			token = line
		}
	}
	if token == "" {
		t.Fatalf("no token printed:\n%s", out.String())
	}

	// The next start keeps the token (only its hash is stored) and does
	// not print it again.
	out = syncBuffer{}
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		done <- run(ctx, func(k string) string {
			return map[string]string{"HOOKSTEP_ADDR": "127.0.0.1:0", "HOOKSTEP_DATA_DIR": dir}[k]
		}, &out, &logs)
	}()
	eventually(t, 10*time.Second, "the restart", func() bool { return strings.Contains(out.String(), "listening on") })
	base = strings.TrimSpace(strings.TrimPrefix(strings.Split(out.String(), "\n")[0], "hookstep listening on "))
	if strings.Contains(out.String(), token) {
		t.Error("the token was printed again")
	}
	if _, err := newClient(t, base, token).Application.List(context.Background(), nil); err != nil {
		t.Errorf("the generated token does not work after a restart: %v", err)
	}
	if _, err := newClient(t, base, "hsk_wrong").Application.List(context.Background(), nil); err == nil {
		t.Error("a wrong token works")
	}
	cancel()
	<-done
}

// TestSweeperDisablesAFailingEndpoint runs local mode with a sweep every
// 100 ms and a one-second failure budget.
func TestSweeperDisablesAFailingEndpoint(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, map[string]string{
		"HOOKSTEP_DISABLE_AFTER": "1s", "HOOKSTEP_SWEEP_INTERVAL": "100ms", "HOOKSTEP_RETRY_SCHEDULE": "0s,1h",
	})
	c := s.Client
	rcv := newReceiver(t, func(string, int) int { return 503 })
	app, _ := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	ep, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: rcv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the endpoint to be disabled", func() bool {
		got, err := c.Endpoint.Get(ctx, app.Id, ep.Id)
		return err == nil && got.Disabled != nil && *got.Disabled
	})
	// Its pending retry is canceled, visibly.
	dest, err := c.MessageAttempt.ListAttemptedDestinations(ctx, app.Id, m.Id, nil)
	if err != nil || len(dest.Data) != 1 {
		t.Fatalf("destinations: %v, %v", dest, err)
	}
	// The sweeper disables, then cancels: two writes, so the cancel may
	// show a moment after the disable.
	eventually(t, 5*time.Second, "the pending retry canceled", func() bool {
		msgs, err := c.MessageAttempt.ListAttemptedMessages(ctx, app.Id, ep.Id, &svix.MessageAttemptListAttemptedMessagesOptions{ExpandedStatuses: ptr(true)})
		return err == nil && len(msgs.Data) == 1 && msgs.Data[0].Status == models.MESSAGESTATUS_CANCELED
	})
	// Re-enable: the endpoint is healthy again and receives new messages.
	if _, err := c.Endpoint.Patch(ctx, app.Id, ep.Id, models.EndpointPatch{Disabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.answer = func(string, int) int { return 200 }
	rcv.mu.Unlock()
	m2, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 2)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "delivery after re-enabling", func() bool { return rcv.succeeded(m2.Id) })
}
