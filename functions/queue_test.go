package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// The queue mode (HOOKSTEP_DISPATCH=queue) end to end, through the real
// bootstraps under the runtime emulator: the api function sends each run
// to an SQS queue (fauxqs); the harness's event source mapping
// (awstest.Poll) hands its records to the deliver function, which makes
// the first attempt and the schedule's immediate retry and starts a Step
// Functions execution (sfntest) only for a run that needs a later retry;
// those executions are played by a second instance of the deliver
// function (player). DynamoDB is dynalite.

// queueSchedule is the functions' retry schedule here: the default
// schedule's immediate retry, then a wait longer than the second within
// which the deliver function makes an attempt asked for early, so that an
// execution started for the run enters at its wait (its first step answers
// retry with resumeAt and sends nothing), then short waits.
const queueSchedule = "0s,3s,1s,1s"

// queueWorld is what the queue tests share: dynalite, fauxqs, the
// Secrets Manager fake and the three bootstraps.
type queueWorld struct {
	dbURL   string
	sqs     *awstest.SQS
	secrets string
	bins    map[string]string // bootstrap by function name
	rigs    atomic.Int32
}

func newQueueWorld(t *testing.T) *queueWorld {
	w := &queueWorld{dbURL: awstest.Dynalite(t), sqs: awstest.NewSQS(t), secrets: fakeSecrets(t), bins: map[string]string{}}
	for _, name := range []string{"api", "deliver", "sweeper"} {
		w.bins[name] = awstest.Build(t, name)
	}
	return w
}

// queueOptions configure a queueRig.
type queueOptions struct {
	visibility time.Duration // the delivery queue's visibility timeout
	maxReceive int           // receives before a record goes to the dead-letter queue
	// poll starts the event source mapping; without it the test hands
	// the records over itself (queueRig.handOver).
	poll bool
	// deliverEnv is added to the environment of the deliver instance the
	// queue invokes.
	deliverEnv []string
}

// queueRig is the functions in queue mode, with a table, a delivery
// queue and its dead-letter queue, and a Step Functions fake of their
// own.
type queueRig struct {
	root    string
	store   *dynamo.Store
	db      *counter // the deliver function's DynamoDB
	states  *sfntest.Server
	invokes *awstest.Lambda
	queue   *awstest.Queue
	dlq     *awstest.Queue
	api     *awstest.Function
	sweeper *awstest.Function
	poller  *awstest.Poller // nil without opts.poll
	steps   *player         // plays the executions; hands records over without a poller
}

func (w *queueWorld) rig(t *testing.T, opts queueOptions) *queueRig {
	n := w.rigs.Add(1)
	table := fmt.Sprintf("hookstep-%d", n)
	r := &queueRig{root: awstest.Root(t), store: newTable(t, w.dbURL, table), states: sfntest.New(t), invokes: awstest.NewLambda(t)}
	r.dlq = w.sqs.CreateQueue(t, fmt.Sprintf("hookstep-dead-letters-%d", n), 30*time.Second, nil, 0)
	r.queue = w.sqs.CreateQueue(t, fmt.Sprintf("hookstep-deliveries-%d", n), opts.visibility, r.dlq, opts.maxReceive)
	env := append(functionEnv(w.dbURL, r.states.URL, r.invokes.URL, w.secrets),
		"HOOKSTEP_TABLE="+table, "HOOKSTEP_DISPATCH=queue", "HOOKSTEP_RETRY_SCHEDULE="+queueSchedule,
		"AWS_ENDPOINT_URL_SQS="+w.sqs.URL, "HOOKSTEP_DISPATCH_QUEUE_URL="+r.queue.URL, "HOOKSTEP_DEAD_LETTER_QUEUE_URL="+r.dlq.URL)
	r.api = awstest.Run(t, w.bins["api"], env)
	r.sweeper = awstest.Run(t, w.bins["sweeper"], env)
	handTo(t, r.invokes, r.sweeper)
	var dbURL string
	r.db, dbURL = newCounter(t, w.dbURL)
	deliverEnv := append(env, "AWS_ENDPOINT_URL_DYNAMODB="+dbURL)
	r.steps = playExecutions(t, r.states, awstest.Run(t, w.bins["deliver"], deliverEnv))
	if opts.poll {
		fn := awstest.Run(t, w.bins["deliver"], slices.Concat(deliverEnv, opts.deliverEnv))
		r.poller = awstest.Poll(t, r.queue, fn, awstest.PollOptions{})
	}
	return r
}

// publish stores an app with one endpoint at url and sends a message to
// it through the api function; it returns the message's run.
func (r *queueRig) publish(t *testing.T, url string) webhook.Ref {
	t.Helper()
	app := storeApp(t, r.store)
	ep := storeEndpoint(t, r.store, app.ID, url)
	return webhook.Ref{AppID: app.ID, MsgID: createMessage(t, r.api, r.root, app.ID, 1), EndpointID: ep.ID}
}

// handOver invokes the deliver function with an SQS event, as the event
// source mapping would, and returns the records it reports failed.
func (r *queueRig) handOver(t *testing.T, ev events.SQSEvent) []string {
	t.Helper()
	body, err := r.steps.invoke(ev)
	var res events.SQSEventResponse
	if err == nil {
		err = json.Unmarshal(body, &res)
	}
	if err != nil {
		t.Fatalf("deliver, handed %d records: %v", len(ev.Records), err)
	}
	var failed []string
	for _, f := range res.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// receive takes the run's record from the queue, as the event source
// mapping would.
func (r *queueRig) receive(t *testing.T, ref webhook.Ref) events.SQSEvent {
	t.Helper()
	ev := r.queue.Receive(t, 10, 5*time.Second)
	want, _ := json.Marshal(ref)
	if len(ev.Records) != 1 || ev.Records[0].Body != string(want) {
		t.Fatalf("queue holds %+v, want one record of %s", ev.Records, want)
	}
	return ev
}

// waitFinal waits until the run's delivery is final and returns it.
func (r *queueRig) waitFinal(t *testing.T, ref webhook.Ref) *webhook.Delivery {
	t.Helper()
	var d *webhook.Delivery
	waitFor(t, 30*time.Second, "the delivery to end", func() bool {
		var err error
		if d, err = r.store.GetDelivery(context.Background(), ref.AppID, ref.MsgID, ref.EndpointID); err != nil {
			t.Fatal(err)
		}
		return d.Status.Final()
	})
	return d
}

// attempts returns the attempts recorded for the run's message, by status.
func (r *queueRig) attempts(t *testing.T, ref webhook.Ref) (all []webhook.Attempt, byStatus map[webhook.Status]int) {
	t.Helper()
	page, err := r.store.ListAttempts(context.Background(), webhook.AttemptFilter{AppID: ref.AppID, MsgID: ref.MsgID})
	if err != nil {
		t.Fatal(err)
	}
	byStatus = map[webhook.Status]int{}
	for _, a := range page.Items {
		byStatus[a.Status]++
	}
	return page.Items, byStatus
}

// startsOf returns the StartExecution calls made for the run's message.
func (r *queueRig) startsOf(ref webhook.Ref) []sfntest.StartExecution {
	var out []sfntest.StartExecution
	for _, c := range r.states.Calls() {
		var in webhook.Ref
		if json.Unmarshal([]byte(c.Input), &in) == nil && in.MsgID == ref.MsgID {
			out = append(out, c)
		}
	}
	return out
}

// checkStart checks that a StartExecution call is the one for ref: the
// state machine, the run's execution name, the run as its input.
func checkStart(t *testing.T, c sfntest.StartExecution, ref webhook.Ref) {
	t.Helper()
	var in webhook.Ref
	if err := json.Unmarshal([]byte(c.Input), &in); err != nil || in != ref || c.Name != sfn.ExecutionName(ref) || c.StateMachineArn != smARN {
		t.Errorf("StartExecution %+v: want %s named %s with input %+v", c, smARN, sfn.ExecutionName(ref), ref)
	}
}

// waitFor waits until cond holds, and fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkPosts checks that the receiver got n requests, each with the
// message's id as webhook-id.
func checkPosts(t *testing.T, rcv *receiver, ref webhook.Ref, n int) {
	t.Helper()
	ids := rcv.ids()
	if len(ids) != n || slices.ContainsFunc(ids, func(id string) bool { return id != ref.MsgID }) {
		t.Errorf("receiver got webhook-ids %v, want %s %d times", ids, ref.MsgID, n)
	}
}

// TestSvixSDKSuiteInQueueMode runs the Svix SDK suite (as
// TestSvixSDKSuiteThroughTheAPIFunction does) against the api function in
// queue mode: every delivery goes api → queue → event source mapping →
// deliver function. They all succeed at their first attempt, so none
// needs an execution.
func TestSvixSDKSuiteInQueueMode(t *testing.T) {
	r := newQueueWorld(t).rig(t, queueOptions{visibility: 30 * time.Second, maxReceive: 5, poll: true})
	bridge := newAPIBridge(t, r.api)
	runSDKSuite(t, bridge.URL)
	r.poller.WaitIdle(t, 10*time.Second)
	requests, invocations := bridge.requests(), r.poller.Invocations()
	t.Logf("the suite made %d API requests through the api function; the queue invoked the deliver function %d times", requests, invocations)
	// Six runs, sent at three moments at least: the suite waits for the
	// first two messages' four deliveries before it resends one, and for
	// the resend before the message after the secret's rotation.
	if requests < 20 || invocations < 3 {
		t.Errorf("%d API requests and %d deliver invocations from the queue; want at least 20 and 3", requests, invocations)
	}
	if calls := r.states.Calls(); len(calls) != 0 {
		t.Errorf("StartExecution calls %+v, want none: every delivery succeeded at its first attempt, from the queue", calls)
	}
	// The suite's background tasks (the operational webhooks test starts
	// a recover, TestSvixSDKMessagesAndStats the usage stats) run in the
	// sweeper, a hand-off each; no delivery is handed off.
	tasks, err := r.store.ListTasks(context.Background(), webhook.TaskFilter{ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	if n := r.invokes.Invokes("hookstep-sweeper"); n != len(tasks.Items) || r.dlq.Depth(t) != 0 {
		t.Errorf("%d hand-offs to the sweeper, %d dead letters; want one per background task (%d) and none", n, r.dlq.Depth(t), len(tasks.Items))
	}
}

// TestQueueModeStartsAnExecutionOnlyForALaterRetry: a run delivered at its
// first attempt, or at the immediate retry (made in the same invocation),
// starts no execution and is sent once per attempt; a run that fails
// twice starts exactly one execution, named for the run, which enters at
// its wait (retry with resumeAt, no POST) and delivers at attempt 3.
func TestQueueModeStartsAnExecutionOnlyForALaterRetry(t *testing.T) {
	r := newQueueWorld(t).rig(t, queueOptions{visibility: 30 * time.Second, maxReceive: 5, poll: true})
	tests := []struct {
		name  string
		fails int // the receiver answers 500 to the first fails requests, then 200
	}{
		{"delivered at the first attempt", 0},
		{"delivered at the immediate retry", 1},
		{"delivered at attempt 3, after the run's execution waited", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := answering(t, func(_ *http.Request, n int) int {
				if n <= tt.fails {
					return http.StatusInternalServerError
				}
				return http.StatusOK
			})
			ref := r.publish(t, rcv.URL)
			d := r.waitFinal(t, ref)
			r.poller.WaitIdle(t, 10*time.Second)
			if d.Status != webhook.StatusSuccess || d.Attempts != tt.fails+1 {
				t.Errorf("delivery %v after %d attempts, want success after %d", d.Status, d.Attempts, tt.fails+1)
			}
			checkPosts(t, rcv, ref, tt.fails+1)
			if _, got := r.attempts(t, ref); got[webhook.StatusFail] != tt.fails || got[webhook.StatusSuccess] != 1 {
				t.Errorf("attempts recorded by status: %v, want %d failed and 1 success", got, tt.fails)
			}
			starts := r.startsOf(ref)
			if tt.fails < 2 {
				if len(starts) != 0 {
					t.Errorf("StartExecution calls %+v, want none", starts)
				}
				return
			}
			if len(starts) != 1 {
				t.Fatalf("StartExecution calls %+v, want one", starts)
			}
			checkStart(t, starts[0], ref)
			name := sfn.ExecutionName(ref)
			waitFor(t, 10*time.Second, "the execution to end", func() bool { return r.states.Status()[name] == "SUCCEEDED" })
			steps := r.steps.stepsOf(name)
			if len(steps) != 2 || steps[0].Outcome != "retry" || steps[0].Attempt != 2 || steps[0].ResumeAt == nil || steps[0].Final ||
				steps[1].Outcome != "delivered" || steps[1].Attempt != 3 {
				t.Errorf("the execution's steps: %+v; want retry of attempt 2 with resumeAt (its wait), then delivered at attempt 3", steps)
			}
		})
	}
}

// TestQueueModeRedeliveredRecords hands a run's record to the deliver
// function twice, as SQS does (at-least-once delivery; a record whose
// invocation failed). What the first hand-over recorded is not done
// again; what it did not record is.
//
// An attempt is unrecorded when its POST reached the receiver but its
// result was not written to the table (here DynamoDB refuses the write
// after the POST; a function killed mid-POST is the other way, see
// TestQueueModeRecordThatTimesOutIsDeadLetteredAndRequeued): the run's
// attempt count has not moved, so the next hand-over makes the same
// attempt again — the receiver sees the webhook-id twice — and the
// attempt log holds only the POSTs whose results were written.
func TestQueueModeRedeliveredRecords(t *testing.T) {
	r := newQueueWorld(t).rig(t, queueOptions{visibility: 30 * time.Second, maxReceive: 5})

	t.Run("recorded attempts are not sent again", func(t *testing.T) {
		rcv := answering(t, func(_ *http.Request, n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		ref := r.publish(t, rcv.URL)
		ev := r.receive(t, ref)
		if failed := r.handOver(t, ev); len(failed) != 0 {
			t.Fatalf("first hand-over: failed records %v, want none", failed)
		}
		checkPosts(t, rcv, ref, 2)
		// Again, before the execution's retry is due (3 s): no POST; the
		// execution is asked for again under the same name and input,
		// which starts nothing new.
		if failed := r.handOver(t, ev); len(failed) != 0 {
			t.Fatalf("second hand-over: failed records %v, want none", failed)
		}
		checkPosts(t, rcv, ref, 2)
		starts := r.startsOf(ref)
		if len(starts) != 2 || starts[0] != starts[1] {
			t.Fatalf("StartExecution calls %+v, want the same one twice", starts)
		}
		checkStart(t, starts[0], ref)
		d := r.waitFinal(t, ref)
		if d.Status != webhook.StatusSuccess || d.Attempts != 3 {
			t.Errorf("delivery %v after %d attempts, want success after 3", d.Status, d.Attempts)
		}
		checkPosts(t, rcv, ref, 3)
		if all, _ := r.attempts(t, ref); len(all) != 3 {
			t.Errorf("%d attempts recorded, want 3", len(all))
		}
		waitFor(t, 10*time.Second, "the execution to end", func() bool { return r.states.Status()[sfn.ExecutionName(ref)] == "SUCCEEDED" })
		if n := len(r.steps.stepsOf(sfn.ExecutionName(ref))); n != 2 {
			t.Errorf("the execution made %d steps, want 2 (played once)", n)
		}
	})

	t.Run("an unrecorded attempt is made again", func(t *testing.T) {
		// The first POST is answered 202, and DynamoDB then refuses the
		// attempt's write; the second is answered 200.
		rcv := answering(t, func(_ *http.Request, n int) int {
			if n == 1 {
				r.db.refuse.Store(true)
				return http.StatusAccepted
			}
			return http.StatusOK
		})
		ref := r.publish(t, rcv.URL)
		ev := r.receive(t, ref)
		if failed := r.handOver(t, ev); len(failed) != 1 || failed[0] != ev.Records[0].MessageId {
			t.Fatalf("first hand-over: failed records %v, want the run's %s", failed, ev.Records[0].MessageId)
		}
		r.db.refuse.Store(false)
		if all, _ := r.attempts(t, ref); len(all) != 0 {
			t.Fatalf("attempts recorded after the refused write: %+v, want none", all)
		}
		if failed := r.handOver(t, ev); len(failed) != 0 {
			t.Fatalf("second hand-over: failed records %v, want none", failed)
		}
		checkPosts(t, rcv, ref, 2)
		all, _ := r.attempts(t, ref)
		if len(all) != 1 || all[0].ResponseStatusCode != http.StatusOK || all[0].Status != webhook.StatusSuccess {
			t.Errorf("attempts recorded: %+v, want the second POST's (200) alone", all)
		}
		d := r.waitFinal(t, ref)
		if d.Status != webhook.StatusSuccess || d.Attempts != 1 {
			t.Errorf("delivery %v after %d attempts, want success after 1", d.Status, d.Attempts)
		}
		if starts := r.startsOf(ref); len(starts) != 0 {
			t.Errorf("StartExecution calls %+v, want none", starts)
		}
	})
}

// TestQueueModeRecordThatTimesOutIsDeadLetteredAndRequeued: the deliver
// function's deadline cuts a POST (the receiver holds the request past
// the function's 2 s timeout; the attempt is abandoned a moment before
// it), so the attempt is unrecorded (see TestQueueModeRedeliveredRecords)
// and the record reported failed; with a maxReceiveCount of 1 the record
// goes to the dead-letter queue at its next receive. The sweeper's scheduled run moves it back, and the
// deliver function makes the attempt again: two POSTs with the same
// webhook-id, one attempt recorded (the second POST's), no execution.
func TestQueueModeRecordThatTimesOutIsDeadLetteredAndRequeued(t *testing.T) {
	r := newQueueWorld(t).rig(t, queueOptions{visibility: 2 * time.Second, maxReceive: 1, poll: true,
		deliverEnv: []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=2", "HOOKSTEP_HTTP_TIMEOUT=10s"}})
	rcv := answering(t, func(req *http.Request, n int) int {
		if n == 1 {
			select {
			case <-req.Context().Done(): // the function was killed
			case <-time.After(10 * time.Second):
			}
			return http.StatusAccepted
		}
		return http.StatusOK
	})
	ref := r.publish(t, rcv.URL)
	waitFor(t, 20*time.Second, "the record to reach the dead-letter queue", func() bool {
		return r.dlq.Depth(t) == 1 && r.queue.Depth(t) == 0
	})
	checkPosts(t, rcv, ref, 1)
	if all, _ := r.attempts(t, ref); len(all) != 0 {
		t.Fatalf("attempts recorded after the function was killed: %+v, want none", all)
	}

	var scheduled json.RawMessage = sample(t, r.root, "sweeper-scheduled-event.json")
	var report struct{ Requeued int }
	r.sweeper.InvokeInto(t, scheduled, &report)
	if report.Requeued != 1 {
		t.Fatalf("sweep: %+v, want the dead letter requeued", report)
	}
	d := r.waitFinal(t, ref)
	r.poller.WaitIdle(t, 10*time.Second)
	if d.Status != webhook.StatusSuccess || d.Attempts != 1 {
		t.Errorf("delivery %v after %d attempts, want success after 1", d.Status, d.Attempts)
	}
	checkPosts(t, rcv, ref, 2)
	if all, _ := r.attempts(t, ref); len(all) != 1 || all[0].ResponseStatusCode != http.StatusOK {
		t.Errorf("attempts recorded: %+v, want the second POST's (200) alone", all)
	}
	if n := r.dlq.Depth(t); n != 0 {
		t.Errorf("%d dead letters left, want none", n)
	}
	if starts := r.startsOf(ref); len(starts) != 0 {
		t.Errorf("StartExecution calls %+v, want none", starts)
	}
}
