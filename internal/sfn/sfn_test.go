package sfn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

const arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:hookstep-delivery"

func newDispatcher(t *testing.T, cfg sfn.Config) (*sfn.Dispatcher, *sfntest.Server) {
	t.Helper()
	fake := sfntest.New(t)
	cfg.StateMachineARN = arn
	return sfn.New(newClient(fake).StartExecution, cfg), fake
}

func newClient(fake *sfntest.Server) *awssfn.Client {
	return awssfn.New(awssfn.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(fake.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

// dispatch dispatches refs and fails the test on an error.
func dispatch(t *testing.T, d *sfn.Dispatcher, refs ...webhook.Ref) []webhook.Ref {
	t.Helper()
	taken, err := d.Dispatch(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	return taken
}

// refs returns n runs of different messages to one endpoint.
func refs(n int) []webhook.Ref {
	out := make([]webhook.Ref, n)
	for i := range out {
		out[i] = webhook.Ref{AppID: "app_2Q", MsgID: fmt.Sprintf("msg_%03d", i), EndpointID: "ep_2Qxyz"}
	}
	return out
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
	d, fake := newDispatcher(t, sfn.Config{})
	if taken := dispatch(t, d, ref); len(taken) != 1 || taken[0] != ref {
		t.Fatalf("taken %v, want %v", taken, ref)
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
	d, fake := newDispatcher(t, sfn.Config{})
	for range 2 {
		dispatch(t, d, ref)
	}
	// A name reused with another input is refused by the service with
	// ExecutionAlreadyExists: still "started".
	r := ref
	r.AppID = "app_other"
	if taken := dispatch(t, d, r); len(taken) != 1 {
		t.Errorf("ExecutionAlreadyExists must count as started: taken %v", taken)
	}
	if n := len(fake.Started()); n != 1 {
		t.Errorf("got %d executions, want 1", n)
	}
}

func TestDispatchReportsServiceErrors(t *testing.T) {
	d, fake := newDispatcher(t, sfn.Config{Concurrency: 1})
	fake.FailNext(1)
	taken, err := d.Dispatch(context.Background(), refs(3))
	if err == nil || !strings.Contains(err.Error(), "sfn: start execution msg_000-ep_2Qxyz") {
		t.Fatalf("got %v, want a wrapped service error", err)
	}
	if want := refs(3)[1:]; !slices.Equal(taken, want) {
		t.Errorf("taken %v, want the two that started %v", taken, want)
	}
	dispatch(t, d, ref)
}

// TestThrottledBatchStopsAtTheFirstThrottle: without WaitOnThrottle (the
// api function), a throttle ends the batch: what started is taken, the
// rest is left for the caller to hand on, and the error says throttled.
func TestThrottledBatchStopsAtTheFirstThrottle(t *testing.T) {
	d, fake := newDispatcher(t, sfn.Config{Concurrency: 1})
	all := refs(10)
	dispatch(t, d, all[:2]...)
	fake.ThrottleNext(1)
	taken, err := d.Dispatch(context.Background(), all[2:])
	if !errors.Is(err, sfn.ErrThrottled) {
		t.Errorf("got %v, want ErrThrottled", err)
	}
	if len(taken) != 0 {
		t.Errorf("taken %v after a throttle at the first start, want none", taken)
	}
	if n := len(fake.Calls()); n != 3 {
		t.Errorf("%d StartExecution calls, want 3: the batch stops at the throttle", n)
	}
}

// TestWaitOnThrottleStartsEveryRunOnce: with WaitOnThrottle (the
// dispatching function) throttled starts back off and try again: every
// run starts, each once.
func TestWaitOnThrottleStartsEveryRunOnce(t *testing.T) {
	d, fake := newDispatcher(t, sfn.Config{Concurrency: 4, WaitOnThrottle: true})
	fake.ThrottleNext(6)
	all := refs(20)
	if taken := dispatch(t, d, all...); len(taken) != len(all) {
		t.Fatalf("taken %d of %d", len(taken), len(all))
	}
	if n := len(fake.Started()); n != len(all) {
		t.Errorf("%d executions, want %d", n, len(all))
	}
	if n := len(fake.Calls()); n != len(all)+6 {
		t.Errorf("%d StartExecution calls, want %d starts and 6 throttled", n, len(all))
	}
}

// TestBudgetAndMaxBoundABatch: Max starts only the first runs; a Budget
// that runs out leaves the rest untaken, with an error.
func TestBudgetAndMaxBoundABatch(t *testing.T) {
	d, _ := newDispatcher(t, sfn.Config{Max: 3})
	if taken := dispatch(t, d, refs(10)...); !slices.Equal(taken, refs(3)) {
		t.Errorf("Max 3: taken %v, want the first 3", taken)
	}
	slow, fake := newDispatcher(t, sfn.Config{Concurrency: 1, Rate: 20, Budget: 120 * time.Millisecond})
	taken, err := slow.Dispatch(context.Background(), refs(50))
	if err == nil || len(taken) == 0 || len(taken) >= 50 {
		t.Fatalf("rate 20/s for 120 ms: taken %d, err %v; want some, not all, and an error", len(taken), err)
	}
	if n := len(fake.Started()); n != len(taken) {
		t.Errorf("%d executions started, %d reported taken", n, len(taken))
	}
}

func TestRunning(t *testing.T) {
	fake := sfntest.New(t)
	x := sfn.NewExecutions(newClient(fake).DescribeExecution, arn)
	d := sfn.New(newClient(fake).StartExecution, sfn.Config{StateMachineARN: arn})
	running := func(r webhook.Ref) bool {
		t.Helper()
		ok, err := x.Running(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if running(ref) {
		t.Error("a run never started is running")
	}
	if _, err := d.Dispatch(context.Background(), []webhook.Ref{ref}); err != nil {
		t.Fatal(err)
	}
	if !running(ref) {
		t.Error("a started run is not running")
	}
	for _, status := range []string{"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"} {
		fake.End(sfn.ExecutionName(ref), status)
		if running(ref) {
			t.Errorf("an execution %s is running", status)
		}
	}
	if got, want := sfn.ExecutionARN(arn, ref), "arn:aws:states:eu-west-1:123456789012:execution:hookstep-delivery:msg_2QabcDEF-ep_2Qxyz"; got != want {
		t.Errorf("ExecutionARN = %s, want %s", got, want)
	}
}
