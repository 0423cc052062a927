package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sqs"
	"github.com/hookstep/hookstep/internal/sweeper"
	"github.com/hookstep/hookstep/internal/webhook"
)

// DeliverInput is the deliver function's event: the execution input (ids
// only) and, for the state machine's steps other than an attempt, an
// Action.
type DeliverInput struct {
	webhook.Ref
	Action string `json:"action,omitempty"`
	// StartedAt is when the execution started ($$.Execution.StartTime),
	// for the reconcile action.
	StartedAt time.Time `json:"startedAt,omitzero"`
	// ReservedAt is the throttle token a Throttled attempt reserved for
	// the run (its resumeAt), passed back by the state machine's
	// DeliverReserved step after its Throttle wait: the attempt uses it
	// instead of asking for another (delivery.Service.AttemptReserved).
	ReservedAt time.Time `json:"reservedAt,omitzero"`
}

// The actions of the deliver function besides an attempt (no action).
const (
	// ActionFail marks the run failed: the state machine's last step,
	// after the final retry.
	ActionFail = "fail"
	// ActionReconcile says where the run stands after an attempt that
	// ended without a result (delivery.Service.Reconcile).
	ActionReconcile = "reconcile"
	// ActionHandOff hands the run back to the sweeper, which dispatches
	// it as a new run (delivery.Service.HandBack).
	ActionHandOff = "handoff"
)

// Deliver returns the deliver function's handler. An error (the store is
// unreachable) fails the Task, and the state machine's Catch reconciles
// the run: the POST may already have happened, so it is not blindly
// retried. metrics receives the CloudWatch metrics the handler publishes
// (stdout in Lambda: Embedded Metric Format).
func Deliver(svc *delivery.Service, metrics io.Writer) func(context.Context, DeliverInput) (delivery.Result, error) {
	return func(ctx context.Context, in DeliverInput) (delivery.Result, error) {
		if in.AppID == "" || in.MsgID == "" || in.EndpointID == "" || in.Run < 0 {
			return delivery.Result{}, fmt.Errorf("deliver: input needs appId, msgId, endpointId and run >= 0, got %+v", in.Ref)
		}
		switch in.Action {
		case "":
			if !in.ReservedAt.IsZero() {
				return svc.AttemptReserved(ctx, in.Ref, in.ReservedAt)
			}
			return svc.Attempt(ctx, in.Ref)
		case ActionReconcile:
			return svc.Reconcile(ctx, in.Ref, in.StartedAt)
		case ActionFail:
			if err := svc.Fail(ctx, in.Ref); err != nil {
				return delivery.Result{}, err
			}
			return delivery.Result{Outcome: delivery.Stop, Final: true}, nil
		case ActionHandOff:
			next, err := svc.HandBack(ctx, in.Ref)
			if err != nil {
				return delivery.Result{}, err
			}
			if next != (webhook.Ref{}) {
				emitMetrics(metrics, svc.Clock.Now(), map[string]float64{MetricHandOffs: 1})
			}
			return delivery.Result{Outcome: delivery.Stop, Final: true}, nil
		}
		return delivery.Result{}, fmt.Errorf("deliver: unknown action %q", in.Action)
	}
}

// LaterFunc makes a queue record that failed come back after a backoff
// (sqs.Backoff.Later).
type LaterFunc func(ctx context.Context, receiptHandle string, receiveCount int) error

// ThrottledFunc sends a run whose first attempt the endpoint's throttle
// held back to the queue again, delayed until its reservation and
// carrying it (sqs.Throttled.Until).
type ThrottledFunc func(ctx context.Context, ref webhook.Ref, reservedAt, now time.Time) error

// DeliverEvents returns the deliver function's handler for both of its
// event sources: an SQS event (queue mode's first attempts, DeliverQueued)
// or a state machine step (DeliverInput, Deliver). later and throttled
// may be nil (stepfunctions mode, which has no queue).
func DeliverEvents(svc *delivery.Service, later LaterFunc, throttled ThrottledFunc, metrics io.Writer) func(context.Context, json.RawMessage) (any, error) {
	step := Deliver(svc, metrics)
	queued := DeliverQueued(svc, later, throttled)
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Records json.RawMessage `json:"Records"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("deliver: event is not a JSON object: %w", err)
		}
		if probe.Records != nil {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("deliver: bad SQS event: %w", err)
			}
			return queued(ctx, ev)
		}
		var in DeliverInput
		if err := json.Unmarshal(raw, &in); err != nil {
			return nil, fmt.Errorf("deliver: bad step input: %w", err)
		}
		return step(ctx, in)
	}
}

// DeliverQueued returns the handler of the delivery queue's records
// (queue mode): each names one run, whose first attempt it makes with
// delivery.Service.AttemptQueued, the batch's records concurrently. A
// record it could not handle (the store or Step Functions failed) is
// reported in the partial batch response, so the event source mapping
// leaves it in the queue, and comes back after a backoff (later) or the
// queue's visibility timeout; a record received too often goes to the
// dead-letter queue, which the sweeper drains back. A record that names
// no run is dropped with an error in the log: no retry can mend it. A run
// whose first attempt the endpoint's throttle holds back is sent to the
// queue again, delayed until its reservation (throttled), and its record
// is done; one that comes back with its reservation makes the attempt
// with it.
func DeliverQueued(svc *delivery.Service, later LaterFunc, throttled ThrottledFunc) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		// The attempts end a moment before the function does, so that
		// the records they could not finish are still reported and
		// backed off.
		actx := ctx
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			actx, cancel = context.WithDeadline(ctx, d.Add(-min(reportMargin, time.Until(d)/4)))
			defer cancel()
		}
		failed := make([]bool, len(ev.Records))
		var wg sync.WaitGroup
		for i, rec := range ev.Records {
			wg.Go(func() {
				ref, reservedAt, err := sqs.DecodeReserved(rec.Body)
				if err != nil {
					svc.Logger.Error("queue record dropped", "message_id", rec.MessageId, "err", err)
					return
				}
				res, err := svc.AttemptQueuedReserved(actx, ref, reservedAt)
				if err == nil && res.Outcome == delivery.Throttled {
					if throttled == nil {
						err = errors.New("deliver: a throttled run and no queue to wait in")
					} else {
						err = throttled(actx, ref, res.NextAttemptAt, svc.Clock.Now()) // the reservation itself; the queue rounds its delay up
					}
				}
				if err != nil {
					failed[i] = true
					count, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
					svc.Logger.Warn("queued run not handled; the queue hands it over again",
						"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "run", ref.Run, "receive_count", count, "err", err)
					if later != nil {
						if err := later(ctx, rec.ReceiptHandle, count); err != nil {
							svc.Logger.Warn("backoff not set; the record comes back after the visibility timeout", "err", err)
						}
					}
				}
			})
		}
		wg.Wait()
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for i, f := range failed {
			if f {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
			}
		}
		return resp, nil
	}
}

// reportMargin is the time DeliverQueued keeps, before the function's
// deadline, to report and back off the records whose attempts it cut (a
// quarter of the time left, if that is less).
const reportMargin = 2 * time.Second

// SweeperEvent is the sweeper function's event: EventBridge's scheduled
// event (a sweep), or, sent by the api function with an asynchronous
// invoke, runs to dispatch now or a background task to run (see HandOff).
type SweeperEvent struct {
	Dispatch []webhook.Ref `json:"dispatch,omitempty"`
	// Task is a background task to run now (a recover), by its id.
	Task string `json:"task,omitempty"`
	// Source and DetailType are EventBridge's: "aws.events", "Scheduled
	// Event" for a sweep; "aws.states", "Step Functions Execution Status
	// Change" for an execution that ended without succeeding (Detail).
	Source     string           `json:"source,omitempty"`
	DetailType string           `json:"detail-type,omitempty"`
	Detail     *ExecutionDetail `json:"detail,omitempty"`
}

// ExecutionDetail is the detail of Step Functions' "Execution Status
// Change" event that the sweeper needs: the stack's rule sends it the
// executions of the delivery state machine that FAILED, were ABORTED or
// TIMED_OUT, with their input, the run.
type ExecutionDetail struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Input  string `json:"input"`
}

// The EventBridge event of an execution's status change.
const (
	SourceStepFunctions       = "aws.states"
	DetailTypeExecutionStatus = "Step Functions Execution Status Change"
)

// SweeperResult is what the sweeper function returns (for its logs and
// tests): a sweep's report, or how many of the runs it was handed it
// dispatched.
type SweeperResult struct {
	sweeper.Report
	Dispatched int `json:"dispatched,omitempty"`
	Resumed    int `json:"resumed,omitempty"` // background tasks a sweep resumed
	Taken      int `json:"taken,omitempty"`   // runs of ended executions taken back
}

// sweepMargin is the time a sweep leaves before the function's deadline:
// no new pass starts within it, so the last one can end.
const sweepMargin = 20 * time.Second

// staleTask is how long a running background task may go without
// progress before a sweep resumes it: longer than one sweeper invocation
// (2 minutes), so that a task is not resumed while it runs. A task
// resumed twice is safe (delivery.Service.RunTask), only wasteful.
const staleTask = 3 * time.Minute

// Sweep returns the sweeper function's handler. A scheduled event runs
// passes of the sweep while there is work and time (the next run resumes),
// publishes the backlog it leaves as the CloudWatch metric
// DispatchBacklog, and resumes background tasks that stopped making
// progress. Runs handed over by the api function are dispatched, within
// the function's rate; those it cannot start are left undispatched, for
// the next sweep. A background task handed over runs until it is done or
// the function's time is nearly up; it stays running at its last page,
// for a later sweep.
func Sweep(sw *sweeper.Sweeper, svc *delivery.Service, metrics io.Writer) func(context.Context, SweeperEvent) (SweeperResult, error) {
	return func(ctx context.Context, ev SweeperEvent) (SweeperResult, error) {
		deadline := time.Now().Add(5 * time.Minute)
		if d, ok := ctx.Deadline(); ok {
			deadline = d.Add(-sweepMargin)
		}
		switch {
		case len(ev.Dispatch) > 0:
			taken, err := svc.Dispatch(ctx, ev.Dispatch)
			if err != nil {
				svc.Logger.Warn("dispatch incomplete; the sweeper will re-drive the rest",
					"runs", len(ev.Dispatch), "dispatched", len(taken), "err", err)
			}
			return SweeperResult{Dispatched: len(taken)}, nil
		case ev.Source == SourceStepFunctions && ev.DetailType == DetailTypeExecutionStatus:
			return executionEnded(ctx, sw, ev.Detail)
		case ev.Task != "":
			tctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			if err := svc.RunTask(tctx, ev.Task); err != nil && !webhook.IsNotFound(err) {
				svc.Logger.Warn("task stopped; a sweep resumes it", "task_id", ev.Task, "err", err)
			}
			return SweeperResult{}, nil
		}
		rep, err := sw.SweepFor(ctx, deadline)
		emitMetrics(metrics, sw.Clock.Now(), map[string]float64{MetricDispatchBacklog: float64(rep.Backlog)})
		if err != nil {
			return SweeperResult{Report: rep}, err
		}
		tctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		resumed, err := svc.ResumeTasks(tctx, sw.Clock.Now().Add(-staleTask))
		return SweeperResult{Report: rep, Resumed: resumed}, err
	}
}

// executionEnded takes back the run of an execution that ended without
// succeeding (sweeper.Sweeper.Ended). An event that names no run is an
// error: EventBridge retries it, then keeps it in the rule's dead-letter
// queue, where an operator sees it.
func executionEnded(ctx context.Context, sw *sweeper.Sweeper, detail *ExecutionDetail) (SweeperResult, error) {
	if detail == nil {
		return SweeperResult{}, fmt.Errorf("sweeper: execution status change without a detail")
	}
	ref, err := sqs.DecodeRun(detail.Input)
	if err != nil {
		return SweeperResult{}, fmt.Errorf("sweeper: execution %s (%s): %w", detail.Name, detail.Status, err)
	}
	taken, err := sw.Ended(ctx, ref)
	if err != nil || !taken {
		return SweeperResult{}, err
	}
	return SweeperResult{Taken: 1}, nil
}

// The CloudWatch metrics the functions publish, in namespace
// MetricNamespace, without dimensions; the stack's alarms watch them.
const (
	MetricNamespace = "Hookstep"
	// MetricDispatchBacklog: runs a sweep left waiting for a dispatch or
	// a re-drive (a lower bound when the sweep ran out of time).
	MetricDispatchBacklog = "DispatchBacklog"
	// MetricHandOffs: runs the state machine handed back to the sweeper
	// after reconciling for delivery.ReconcileFor.
	MetricHandOffs = "HandOffs"
)

// emitMetrics writes metrics as one line of CloudWatch Embedded Metric
// Format: in Lambda, stdout goes to CloudWatch Logs, which extracts the
// metrics (no PutMetricData call, no permission). A write error is
// ignored: a metric is not worth failing the function for.
func emitMetrics(w io.Writer, now time.Time, values map[string]float64) {
	if w == nil {
		return
	}
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	var defs []metric
	line := map[string]any{}
	for name, v := range values {
		defs = append(defs, metric{Name: name, Unit: "Count"})
		line[name] = v
	}
	line["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace": MetricNamespace, "Dimensions": [][]string{{}}, "Metrics": defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	w.Write(append(b, '\n'))
}
