package stack

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	tasks "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/internal/webhook"
)

// The deliver function's outcomes (internal/delivery.Outcome), which the
// Choice state switches on, and its actions (internal/lambdafn.Action*).
// They are the contract between the function and the state machine; the
// infra module does not link the delivery engine just to read strings.
const (
	outcomeDelivered = "delivered"
	outcomeRetry     = "retry"
	outcomeStop      = "stop"
	outcomeAgain     = "again"
	outcomeHandOff   = "handoff"
	outcomeThrottled = "throttled"
	actionFail       = "fail"
	actionReconcile  = "reconcile"
	actionHandOff    = "handoff"
)

// TransientLambdaErrors are the errors the Deliver task retries: Lambda
// itself failed or throttled before running the function, so no POST
// happened and trying again cannot duplicate a delivery (RELIABILITY.md).
// Everything else — Lambda.Unknown, Lambda.ClientExecutionTimeoutException,
// Lambda.SdkClientException, Lambda.AWSLambdaException, the function's own
// errors — is left out on purpose: the function may have run, and the
// POST with it; those go to the reconcile path instead (Catch).
var TransientLambdaErrors = []string{
	"Lambda.ServiceException",
	"Lambda.TooManyRequestsException",
}

// State names of the delivery state machine. Every attempt is the Task
// DeliverState, followed by the Choice OutcomeState; after a failed
// attempt n comes the Wait WaitStatePrefix+n, which waits Schedule[n-1],
// and then DeliverState again. An attempt that fails without a result
// goes to PauseState and ReconcileState, which find out where the run
// stands; a run that cannot go on is handed back to the sweeper
// (HandOffState, then HandedOffState). An attempt the endpoint's
// throttleRate holds back (outcome throttled: nothing was sent or
// recorded) waits in ThrottleState until the token it reserved comes
// back, and is made by DeliverReservedState, which passes the
// reservation on.
const (
	DeliverState         = "Deliver"
	ThrottleState        = "Throttle"
	DeliverReservedState = "DeliverReserved"
	OutcomeState         = "Outcome"
	WaitStatePrefix      = "Wait"
	WaitUntilState       = "WaitUntil"
	PauseState           = "Pause"
	ReconcileState       = "Reconcile"
	HandOffState         = "HandOff"
	MarkFailedState      = "MarkFailed"
	DoneState            = "Done"
	ExhaustedState       = "Exhausted"
	HandedOffState       = "HandedOff"
	UnknownState         = "UnknownOutcome"
	StrandedState        = "Stranded"
)

// ResultPath is where each Task puts the deliver function's result, so
// the execution input (the delivery's ids) flows on to the next Task.
// ErrorPath is where a caught error goes.
const (
	ResultPath = "$.result"
	ErrorPath  = "$.error"
)

// Timing of the paths that handle errors. PauseFor is the wait before a
// failed attempt is reconciled: time for the store to come back, and a
// bound on how often a run whose attempts keep failing goes round (the
// deliver function hands the run back after delivery.ReconcileFor, 15
// minutes, so at most about 30 rounds). The Reconcile and HandOff tasks
// retry any error, starting after storeRetryInterval and doubling, so a
// store outage of about 15 minutes is ridden out; beyond that the
// reconcile hands the run off, and a hand-off that still fails ends the
// execution at Stranded, where the sweeper finds the run overdue and
// re-drives it.
const (
	PauseFor           = 30 * time.Second
	storeRetryInterval = 30 * time.Second
	storeRetries       = 5
)

// addStateMachine creates the delivery state machine from the schedule
// (addDispatch and addPermissions let api and sweeper start executions).
func (h *hookstep) addStateMachine() {
	logs := awslogs.NewLogGroup(h.stack, jsii.String("DeliveryLogs"), &awslogs.LogGroupProps{
		Retention:     h.props.LogRetention,
		RemovalPolicy: h.props.RemovalPolicy,
	})
	sm := sfn.NewStateMachine(h.stack, jsii.String("Delivery"), &sfn.StateMachineProps{
		Comment:          jsii.String(fmt.Sprintf("hookstep delivery: %d attempts, waits %s", h.props.Schedule.MaxAttempts(), h.props.Schedule)),
		DefinitionBody:   sfn.DefinitionBody_FromChainable(deliveryDefinition(h.stack, h.res.deliver, h.props.Schedule)),
		StateMachineType: sfn.StateMachineType_STANDARD,
		Logs: &sfn.LogOptions{
			Destination: logs,
			// Every attempt is already recorded in the table, and a
			// Standard execution keeps its full history for 90 days;
			// the log adds what those miss, the failures, without
			// paying for a line per state transition.
			Level:                sfn.LogLevel_ERROR,
			IncludeExecutionData: jsii.Bool(true), // ids and outcomes only: no payloads, no secrets
		},
	})
	h.res.stateMachine = sm
}

// deliveryDefinition generates the state machine from the schedule: one
// Deliver Task and one Choice, and a Wait of the scheduled length after
// each failed attempt, chosen by the attempt's number, so that a run
// re-driven with attempts already made goes on where it was.
//
//	Deliver → Outcome ─ delivered/stop        → Done
//	                  ─ retry, final           → MarkFailed → Exhausted
//	                  ─ retry, resumeAt (from Reconcile) → WaitUntil → Deliver
//	                  ─ retry, attempt k < N   → Wait<k> (Schedule[k-1]) → Deliver
//	                  ─ again                  → Deliver
//	                  ─ throttled              → Throttle (until resumeAt) → DeliverReserved → Outcome
//	                  ─ handoff                → HandOff → HandedOff
//	Deliver fails (Catch) → Pause → Reconcile → Outcome
//	Reconcile or MarkFailed fails beyond its retries → HandOff / Pause
//	HandOff fails beyond its retries → Stranded
//
// Exhausted, Done and HandedOff succeed: the delivery's own status says
// how the run ended, and a failed execution (UnknownOutcome, Stranded)
// is one that needs an operator.
func deliveryDefinition(scope constructs.Construct, deliver awslambda.IFunction, schedule webhook.Schedule) sfn.IChainable {
	done := sfn.NewSucceed(scope, jsii.String(DoneState), &sfn.SucceedProps{
		Comment: jsii.String("delivered, or nothing more to do for this run"),
	})
	exhausted := sfn.NewSucceed(scope, jsii.String(ExhaustedState), &sfn.SucceedProps{
		Comment: jsii.String("every attempt of the retry schedule failed: the delivery is marked failed"),
	})
	handedOff := sfn.NewSucceed(scope, jsii.String(HandedOffState), &sfn.SucceedProps{
		Comment: jsii.String("the run went back to the sweeper, which dispatches it as a new run"),
	})
	unknown := sfn.NewFail(scope, jsii.String(UnknownState), &sfn.FailProps{
		Error: jsii.String("hookstep.UnknownOutcome"),
		Cause: jsii.String("the deliver function returned an outcome this state machine does not handle"),
	})
	stranded := sfn.NewFail(scope, jsii.String(StrandedState), &sfn.FailProps{
		Error: jsii.String("hookstep.Stranded"),
		Cause: jsii.String("the run could not be handed back to the sweeper; the sweeper re-drives it once it is overdue"),
	})

	attempt := deliverTask(scope, DeliverState, deliver, "")
	// A throttled attempt waits for its reserved token, as long as it
	// takes (a Wait costs one state transition, not a poll), then is
	// made with it: DeliverReserved is Deliver with the reservation.
	reserved := deliverTask(scope, DeliverReservedState, deliver, "", withReservation)
	throttleWait := sfn.NewWait(scope, jsii.String(ThrottleState), &sfn.WaitProps{
		Comment: jsii.String("the endpoint's throttleRate holds the attempt back: wait for the token it reserved"),
		Time:    sfn.WaitTime_TimestampPath(jsii.String(ResultPath + ".resumeAt")),
	})
	throttleWait.Next(reserved)
	reconcile := deliverTask(scope, ReconcileState, deliver, actionReconcile)
	handOff := deliverTask(scope, HandOffState, deliver, actionHandOff)
	markFailed := deliverTask(scope, MarkFailedState, deliver, actionFail)
	pause := sfn.NewWait(scope, jsii.String(PauseState), &sfn.WaitProps{
		Comment: jsii.String("an attempt failed without a result: wait, then find out where the run stands"),
		Time:    sfn.WaitTime_Duration(seconds(PauseFor)),
	})

	// A retry that Reconcile found recorded resumes at its due time, not
	// a whole step of the schedule after the reconcile.
	waitUntil := sfn.NewWait(scope, jsii.String(WaitUntilState), &sfn.WaitProps{
		Comment: jsii.String("wait until the recorded attempt's retry is due"),
		Time:    sfn.WaitTime_TimestampPath(jsii.String(ResultPath + ".resumeAt")),
	})
	waitUntil.Next(attempt)
	outcome := sfn.NewChoice(scope, jsii.String(OutcomeState), nil).
		When(outcomeIs(outcomeDelivered), done, nil).
		When(outcomeIs(outcomeStop), done, nil).
		When(outcomeIs(outcomeThrottled), throttleWait, nil).
		When(sfn.Condition_And(outcomeIs(outcomeRetry), sfn.Condition_BooleanEquals(jsii.String(ResultPath+".final"), jsii.Bool(true))), markFailed, nil).
		When(sfn.Condition_And(outcomeIs(outcomeRetry), sfn.Condition_IsPresent(jsii.String(ResultPath+".resumeAt"))), waitUntil, nil)
	for k := 1; k < schedule.MaxAttempts(); k++ {
		wait := sfn.NewWait(scope, jsii.String(fmt.Sprintf("%s%d", WaitStatePrefix, k)), &sfn.WaitProps{
			Comment: jsii.String(fmt.Sprintf("wait %s after attempt %d", schedule[k-1], k)),
			Time:    sfn.WaitTime_Duration(seconds(schedule[k-1])),
		})
		wait.Next(attempt)
		outcome.When(sfn.Condition_And(outcomeIs(outcomeRetry),
			sfn.Condition_NumberEquals(jsii.String(ResultPath+".attempt"), jsii.Number(float64(k)))), wait, nil)
	}
	outcome.
		When(outcomeIs(outcomeRetry), markFailed, nil). // beyond the schedule
		When(outcomeIs(outcomeAgain), attempt, nil).
		When(outcomeIs(outcomeHandOff), handOff, nil).
		Otherwise(unknown)

	// An attempt's own error may come after its POST: never retried
	// blindly, it is reconciled.
	for _, task := range []tasks.LambdaInvoke{attempt, reserved} {
		task.AddCatch(pause, &sfn.CatchProps{Errors: jsii.Strings("States.ALL"), ResultPath: jsii.String(ErrorPath)})
		task.Next(outcome)
	}
	pause.Next(reconcile)
	// Reconcile and HandOff only read and write the store: retrying them
	// sends nothing twice.
	for _, task := range []tasks.LambdaInvoke{reconcile, handOff} {
		task.AddRetry(&sfn.RetryProps{
			Errors:         jsii.Strings("States.ALL"),
			Interval:       seconds(storeRetryInterval),
			BackoffRate:    jsii.Number(2),
			MaxAttempts:    jsii.Number(storeRetries),
			MaxDelay:       seconds(5 * time.Minute),
			JitterStrategy: sfn.JitterType_FULL,
		})
	}
	reconcile.AddCatch(handOff, &sfn.CatchProps{Errors: jsii.Strings("States.ALL"), ResultPath: jsii.String(ErrorPath)})
	reconcile.Next(outcome)
	handOff.AddCatch(stranded, &sfn.CatchProps{Errors: jsii.Strings("States.ALL"), ResultPath: jsii.String(ErrorPath)})
	handOff.Next(handedOff)
	markFailed.AddCatch(pause, &sfn.CatchProps{Errors: jsii.Strings("States.ALL"), ResultPath: jsii.String(ErrorPath)})
	markFailed.Next(exhausted)
	return attempt
}

// deliverTask invokes the deliver function with the delivery's ids (and
// an action, for the steps other than an attempt). The function's own
// payload is the result (payloadResponseOnly), stored at ResultPath so
// that the ids stay. Every Task first retries TransientLambdaErrors:
// Lambda failed or throttled before the function ran.
func deliverTask(scope constructs.Construct, id string, fn awslambda.IFunction, action string, opts ...taskOption) tasks.LambdaInvoke {
	payload := map[string]any{
		"appId":      sfn.JsonPath_StringAt(jsii.String("$.appId")),
		"msgId":      sfn.JsonPath_StringAt(jsii.String("$.msgId")),
		"endpointId": sfn.JsonPath_StringAt(jsii.String("$.endpointId")),
		"run":        sfn.JsonPath_NumberAt(jsii.String("$.run")),
	}
	if action != "" {
		payload["action"] = action
	}
	for _, o := range opts {
		o(payload)
	}
	if action == actionReconcile {
		// ReconcileFor counts from the execution's start at the latest.
		payload["startedAt"] = sfn.JsonPath_StringAt(jsii.String("$$.Execution.StartTime"))
	}
	task := tasks.NewLambdaInvoke(scope, jsii.String(id), &tasks.LambdaInvokeProps{
		LambdaFunction:           fn,
		Payload:                  sfn.TaskInput_FromObject(&payload),
		PayloadResponseOnly:      jsii.Bool(true),
		ResultPath:               jsii.String(ResultPath),
		RetryOnServiceExceptions: jsii.Bool(false), // its list includes ClientExecutionTimeoutException; ours is below
	})
	task.AddRetry(&sfn.RetryProps{
		Errors:         jsii.Strings(TransientLambdaErrors...),
		Interval:       seconds(2 * time.Second),
		BackoffRate:    jsii.Number(2),
		MaxAttempts:    jsii.Number(6),
		MaxDelay:       seconds(time.Minute),
		JitterStrategy: sfn.JitterType_FULL,
	})
	return task
}

// taskOption adds to a deliver Task's payload.
type taskOption func(payload map[string]any)

// withReservation passes the throttle token the last attempt reserved
// (its result's resumeAt) as reservedAt (lambdafn.DeliverInput).
func withReservation(payload map[string]any) {
	payload["reservedAt"] = sfn.JsonPath_StringAt(jsii.String(ResultPath + ".resumeAt"))
}

func outcomeIs(outcome string) sfn.Condition {
	return sfn.Condition_StringEquals(jsii.String(ResultPath+".outcome"), jsii.String(outcome))
}
