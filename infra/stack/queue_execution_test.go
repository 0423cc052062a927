package stack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// queueSchedule is the deliver function's retry schedule in the queue
// tests: as many attempts as webhook.DefaultSchedule, whose Wait states
// the definition has; its immediate retry (the queue's invocation makes
// it); then a wait longer than the second within which the function makes
// an attempt asked for early, so that the run's execution enters at its
// wait; then none. The rig shortens the definition's waits to
// milliseconds, so the function's due times are what hold the attempts
// back; these keep the test at a few seconds.
func queueSchedule(t *testing.T) webhook.Schedule {
	if webhook.DefaultSchedule[0] != 0 {
		t.Fatalf("the default schedule %v starts with a wait: the queue makes no immediate retry", webhook.DefaultSchedule)
	}
	s := make(webhook.Schedule, len(webhook.DefaultSchedule))
	// Long enough that the execution's first Task, which starts a Step
	// Functions emulator (a node process, seconds on a loaded machine),
	// comes more than the second before the due time that counts as due.
	s[1] = 6 * time.Second
	return s
}

// TestQueuedRunEntersTheStateMachineAtItsWait: in queue mode the deliver
// function, handed a run's SQS record, makes attempt 1 and the immediate
// retry and, both failed, starts the run's one execution of the
// synthesized state machine (for the default schedule). That execution's
// first Task sends nothing: the retry is not due, so it answers retry
// with resumeAt — the due time attempt 2 recorded — and the state machine
// waits at WaitUntil, then makes attempt 3 and goes on through the
// schedule's Wait states from there: delivered at attempt 3, or, always
// failing, failed by the fail action after the schedule's 9 attempts.
func TestQueuedRunEntersTheStateMachineAtItsWait(t *testing.T) {
	r := newRig(t)
	starts := sfntest.New(t)
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:hookstep"
	// No record fails here, so the function never calls SQS (it would to
	// back a failed record off); if it did, the call stays on this
	// machine and is refused.
	nowhere := "http://" + awstest.FreeAddr(t)
	deliver := r.deliver("HOOKSTEP_HTTP_TIMEOUT=5s", "HOOKSTEP_DISPATCH=queue", "HOOKSTEP_STATE_MACHINE_ARN="+arn,
		"HOOKSTEP_DISPATCH_QUEUE_URL="+nowhere+"/000000000000/hookstep-deliveries", "AWS_ENDPOINT_URL_SQS="+nowhere,
		"AWS_ENDPOINT_URL_SFN="+starts.URL, "HOOKSTEP_RETRY_SCHEDULE="+queueSchedule(t).String())
	maxAttempts := webhook.DefaultSchedule.MaxAttempts()
	exhausted := []string{stack.DeliverState, stack.OutcomeState, stack.WaitUntilState}
	for k := 3; k < maxAttempts; k++ {
		exhausted = append(exhausted, stack.DeliverState, stack.OutcomeState, fmt.Sprintf("%s%d", stack.WaitStatePrefix, k))
	}
	exhausted = append(exhausted, stack.DeliverState, stack.OutcomeState, stack.MarkFailedState, stack.ExhaustedState)
	tests := []struct {
		name     string
		answer   func(n int) int // status for the n-th request
		states   []string        // the execution's
		attempts int
		final    webhook.Status
		last     string // the action of the last Task
	}{
		{"fails twice then succeeds", func(n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}, []string{stack.DeliverState, stack.OutcomeState, stack.WaitUntilState, stack.DeliverState, stack.OutcomeState, stack.DoneState},
			3, webhook.StatusSuccess, ""},
		{"always fails", func(int) int { return http.StatusServiceUnavailable }, exhausted, maxAttempts, webhook.StatusFail, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.answer, nil)
			ref := r.delivery(rcv.URL)
			callsBefore := len(starts.Calls())
			if failed := handOver(t, deliver, ref); len(failed) != 0 {
				t.Fatalf("queued run: failed records %v, want none", failed)
			}
			queued := r.status(ref)
			if n := len(rcv.seen()); n != 2 || queued.Attempts != 2 || queued.Status != webhook.StatusSending {
				t.Fatalf("after the queue's invocation: %d POSTs, delivery %v after %d attempts; want 2 POSTs, sending after 2",
					n, queued.Status, queued.Attempts)
			}
			calls := starts.Calls()[callsBefore:]
			var input webhook.Ref
			if len(calls) != 1 || json.Unmarshal([]byte(calls[0].Input), &input) != nil || input != ref ||
				calls[0].Name != sfn.ExecutionName(ref) || calls[0].StateMachineArn != arn {
				t.Fatalf("StartExecution calls %+v, want one of %s named %s with input %+v", calls, arn, sfn.ExecutionName(ref), ref)
			}

			steps := newStepRecorder(t, deliver, func() int { return len(rcv.seen()) })
			res := r.execute(input, steps.fn, nil)
			if res.Status != "SUCCEEDED" || !slices.Equal(res.States, tt.states) {
				t.Fatalf("execution: got %s %s (%s) through %v, want it to succeed through %v", res.Status, res.Error, res.Cause, res.States, tt.states)
			}
			first := steps.all()[0]
			if first.Outcome != "retry" || first.Attempt != 2 || first.Final || first.ResumeAt == nil ||
				!first.ResumeAt.Equal(queued.NextAttemptAt) || first.posts != 2 {
				t.Errorf("first Task: %+v after %d POSTs; want retry of attempt 2 with resumeAt %v and no POST of its own",
					first, first.posts, queued.NextAttemptAt)
			}
			if last := steps.all()[len(steps.all())-1]; last.action != tt.last {
				t.Errorf("last Task's action %q, want %q", last.action, tt.last)
			}
			if ids := rcv.seen(); len(ids) != tt.attempts || slices.ContainsFunc(ids, func(id string) bool { return id != ref.MsgID }) {
				t.Errorf("receiver saw webhook-ids %v, want %s %d times", ids, ref.MsgID, tt.attempts)
			}
			if n := len(r.attempts(ref)); n != tt.attempts {
				t.Errorf("attempts recorded: got %d, want %d", n, tt.attempts)
			}
			if d := r.status(ref); d.Status != tt.final || d.Attempts != tt.attempts {
				t.Errorf("delivery: %v after %d attempts, want %v after %d", d.Status, d.Attempts, tt.final, tt.attempts)
			}
			if n := len(starts.Calls()) - callsBefore; n != 1 {
				t.Errorf("%d StartExecution calls, want the queue's one", n)
			}
			r.checkOwned(ref)
		})
	}
}

// handOver invokes fn with the SQS event Lambda's event source mapping
// sends for one record of the run (the sample deliver-sqs.json's first,
// with the run as its body), and returns the records it reports failed.
func handOver(t *testing.T, fn *awstest.Function, ref webhook.Ref) []string {
	t.Helper()
	var ev struct {
		Records []map[string]any `json:"Records"`
	}
	readSample(t, "deliver-sqs.json", &ev)
	body, _ := json.Marshal(ref)
	ev.Records = ev.Records[:1]
	ev.Records[0]["body"] = string(body)
	var res struct {
		BatchItemFailures []struct {
			ItemIdentifier string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	fn.InvokeInto(t, ev, &res)
	var failed []string
	for _, f := range res.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// taskStep is one Task of an execution: the deliver function's result,
// the action it was asked for, and the POSTs the receiver had seen when
// the Task ended.
type taskStep struct {
	Outcome  string     `json:"outcome"`
	Attempt  int        `json:"attempt"`
	Final    bool       `json:"final"`
	ResumeAt *time.Time `json:"resumeAt"`
	action   string
	posts    int
}

// stepRecorder stands between the rig's interceptor and the deliver
// function and records each Task.
type stepRecorder struct {
	fn    *awstest.Function // what the rig invokes
	mu    sync.Mutex
	steps []taskStep
}

func newStepRecorder(t *testing.T, deliver *awstest.Function, posts func() int) *stepRecorder {
	s := &stepRecorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		payload, _ := io.ReadAll(req.Body)
		var in struct{ Action string }
		json.Unmarshal(payload, &in)
		res, err := http.Post(deliver.URL, "application/json", bytes.NewReader(payload))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		step := taskStep{action: in.Action, posts: posts()}
		json.Unmarshal(body, &step)
		s.mu.Lock()
		s.steps = append(s.steps, step)
		s.mu.Unlock()
		w.WriteHeader(res.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	s.fn = &awstest.Function{Name: deliver.Name, URL: srv.URL}
	return s
}

// all returns the Tasks recorded so far.
func (s *stepRecorder) all() []taskStep {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.steps)
}
