package sfn_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

const arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:hookstep-delivery"

func newDispatcher(t *testing.T) (*sfn.Dispatcher, *sfntest.Server) {
	t.Helper()
	fake := sfntest.New(t)
	client := awssfn.New(awssfn.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(fake.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
	return sfn.New(client.StartExecution, arn), fake
}

var ref = webhook.Ref{AppID: "app_2Q", MsgID: "msg_2QabcDEF", EndpointID: "ep_2Qxyz", Run: 0}

func TestExecutionName(t *testing.T) {
	tests := []struct {
		run  int
		want string
	}{{0, "msg_2QabcDEF-ep_2Qxyz"}, {1, "msg_2QabcDEF-ep_2Qxyz-r1"}, {12, "msg_2QabcDEF-ep_2Qxyz-r12"}}
	for _, tt := range tests {
		r := ref
		r.Run = tt.run
		if got := sfn.ExecutionName(r); got != tt.want {
			t.Errorf("run %d: got %q, want %q", tt.run, got, tt.want)
		}
	}
	// Real ids: 31 + 1 + 30 characters plus a run suffix stay within the
	// 80 characters Step Functions allows.
	long := webhook.Ref{MsgID: webhook.NewID(webhook.PrefixMessage), EndpointID: webhook.NewID(webhook.PrefixEndpoint), Run: 99999}
	if n := len(sfn.ExecutionName(long)); n > 80 {
		t.Errorf("name of %d characters, over 80", n)
	}
}

func TestDispatchSendsIdsOnly(t *testing.T) {
	d, fake := newDispatcher(t)
	if err := d.Dispatch(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	if len(calls) != 1 {
		t.Fatalf("got %d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.StateMachineArn != arn || c.Name != "msg_2QabcDEF-ep_2Qxyz" {
		t.Errorf("got arn %q name %q", c.StateMachineArn, c.Name)
	}
	want := `{"appId":"app_2Q","msgId":"msg_2QabcDEF","endpointId":"ep_2Qxyz","run":0}`
	if c.Input != want {
		t.Errorf("input: got %s, want %s", c.Input, want)
	}
	var keys map[string]any
	json.Unmarshal([]byte(c.Input), &keys)
	if len(keys) != 4 {
		t.Errorf("input has %d keys, want exactly the 4 ids", len(keys))
	}
}

func TestDispatchTwiceCountsAsStarted(t *testing.T) {
	d, fake := newDispatcher(t)
	for range 2 {
		if err := d.Dispatch(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
	}
	// A name reused with another input is refused by the service with
	// ExecutionAlreadyExists: still "started".
	r := ref
	r.AppID = "app_other"
	if err := d.Dispatch(context.Background(), r); err != nil {
		t.Errorf("ExecutionAlreadyExists must count as started: %v", err)
	}
	if n := len(fake.Started()); n != 1 {
		t.Errorf("got %d executions, want 1", n)
	}
}

func TestDispatchReportsServiceErrors(t *testing.T) {
	d, fake := newDispatcher(t)
	fake.FailNext(1)
	err := d.Dispatch(context.Background(), ref)
	if err == nil || !strings.Contains(err.Error(), "sfn: start execution msg_2QabcDEF-ep_2Qxyz") {
		t.Fatalf("got %v, want a wrapped service error", err)
	}
	if err := d.Dispatch(context.Background(), ref); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
}
