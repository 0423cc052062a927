package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/lambdatest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestSynthesizedStateMachineDrivesDeliveries executes the state machine
// definition the stack synthesizes for the default schedule with
// aws-local-stepfunctions (infra/sfnlocal/run.mjs, on Node 22), its Task
// states answered by the real deliver bootstrap under the Lambda runtime
// emulator against dynalite, and its Wait states shortened to milliseconds.
func TestSynthesizedStateMachineDrivesDeliveries(t *testing.T) {
	root := lambdatest.Root(t)
	node := lambdatest.RequireTool(t, "Node 22", filepath.Join(root, "infra", "node_modules", ".bin", "node"))
	ctx := context.Background()

	def, err := stack.Definition(webhook.DefaultSchedule)
	if err != nil {
		t.Fatal(err)
	}
	dbURL := lambdatest.Dynalite(t)
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err := dynamo.CreateTable(ctx, client, "hookstep"); err != nil {
		t.Fatal(err)
	}
	store := dynamo.New(client, "hookstep", webhook.SystemClock{})
	deliver := lambdatest.Run(t, lambdatest.Build(t, "deliver"), []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_ENDPOINT_URL_DYNAMODB=" + dbURL, "HOOKSTEP_TABLE=hookstep",
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS=true", "HOOKSTEP_REQUIRE_HTTPS=false", "HOOKSTEP_HTTP_TIMEOUT=5s",
	})
	now := time.Now().UTC()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "Acme", CreatedAt: now, UpdatedAt: now}
	if err := store.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		answer   func(n int, disable func()) int // status for the n-th request
		status   string                          // execution result
		error    string
		attempts int
		final    webhook.Status
	}{
		{"fails twice then succeeds", func(n int, _ func()) int {
			if n <= 2 {
				return 500
			}
			return 200
		}, "SUCCEEDED", "", 3, webhook.StatusSuccess},
		{"always fails", func(int, func()) int { return 503 }, "FAILED", "hookstep.RetriesExhausted", webhook.DefaultSchedule.MaxAttempts(), webhook.StatusFail},
		{"endpoint disabled mid-way", func(n int, disable func()) int {
			if n == 2 {
				disable()
			}
			return 500
		}, "SUCCEEDED", "", 2, webhook.StatusCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: app.ID, Version: 1,
				Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: now, UpdatedAt: now}
			disable := func() {
				got, err := store.GetEndpoint(ctx, app.ID, ep.ID)
				if err != nil {
					t.Error(err)
					return
				}
				prev := got.UpdatedAt
				got.Disabled, got.DisabledWhy, got.DisabledAt, got.UpdatedAt = true, webhook.DisabledManual, time.Now().UTC(), time.Now().UTC()
				if err := store.UpdateEndpoint(ctx, got, prev); err != nil {
					t.Error(err)
				}
			}
			var mu sync.Mutex
			requests := 0
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				n := requests
				mu.Unlock()
				w.WriteHeader(tt.answer(n, disable))
			}))
			defer rcv.Close()
			ep.URL = rcv.URL
			if err := store.CreateEndpoint(ctx, ep); err != nil {
				t.Fatal(err)
			}
			msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: app.ID, EventType: "v1.end_user.created",
				Payload: []byte(`{"type":"v1.end_user.created"}`), Timestamp: now, ExpiresAt: now.Add(time.Hour)}
			if err := store.CreateMessage(ctx, msg, []webhook.Delivery{{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID,
				EventType: msg.EventType, Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}}); err != nil {
				t.Fatal(err)
			}

			res := execute(t, node, filepath.Join(root, "infra", "sfnlocal", "run.mjs"), def,
				webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID}, deliver.URL)
			if res.Status != tt.status || res.Error != tt.error {
				t.Fatalf("execution: got %s %s (%s), want %s %s; states %v", res.Status, res.Error, res.Cause, tt.status, tt.error, res.States)
			}
			page, err := store.ListAttempts(ctx, webhook.AttemptFilter{AppID: app.ID, MsgID: msg.ID})
			if err != nil || len(page.Items) != tt.attempts {
				t.Errorf("attempts recorded: got %d (%v), want %d", len(page.Items), err, tt.attempts)
			}
			if requests != tt.attempts {
				t.Errorf("receiver got %d requests, want %d", requests, tt.attempts)
			}
			d, err := store.GetDelivery(ctx, app.ID, msg.ID, ep.ID)
			if err != nil || d.Status != tt.final {
				t.Errorf("delivery: got %v (%v), want %v", d.Status, err, tt.final)
			}
		})
	}
}

type executionResult struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Cause  string          `json:"cause"`
	Output json.RawMessage `json:"output"`
	States []string        `json:"states"`
}

// execute runs the definition once with input through run.mjs.
func execute(t *testing.T, node, script string, def []byte, input webhook.Ref, invokeURL string) executionResult {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"definition": json.RawMessage(def), "input": input, "invokeUrl": invokeURL, "waitMs": 5})
	cmd := exec.Command(node, script)
	cmd.Dir = filepath.Dir(script)
	cmd.Stdin = bytes.NewReader(req)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run.mjs: %v\n%s", err, stderr.String())
	}
	var res executionResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("run.mjs output %q: %v", out, err)
	}
	return res
}
