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
// Choice states switch on, and the action that marks a run failed
// (internal/lambdafn.ActionFail). They are the contract between the
// function and the state machine; the infra module does not link the
// delivery engine just to read three strings.
const (
	outcomeDelivered = "delivered"
	outcomeRetry     = "retry"
	outcomeStop      = "stop"
	actionFail       = "fail"
)

// TransientLambdaErrors are the errors a Task retries: Lambda itself
// failed or throttled before running the function, so no POST happened
// and trying again cannot duplicate a delivery. Lambda.Unknown,
// Lambda.ClientExecutionTimeoutException and States.ALL are left out on
// purpose: the function may have run, and the POST with it.
var TransientLambdaErrors = []string{
	"Lambda.ServiceException",
	"Lambda.AWSLambdaException",
	"Lambda.SdkClientException",
	"Lambda.TooManyRequestsException",
}

// State names of the delivery state machine. Attempt n (from 1) is the
// Task DeliverStatePrefix+n, followed by the Choice OutcomeStatePrefix+n;
// after a failed attempt n comes the Wait WaitStatePrefix+n, which waits
// Schedule[n-1].
const (
	DeliverStatePrefix = "Deliver"
	OutcomeStatePrefix = "Outcome"
	WaitStatePrefix    = "Wait"
	DoneState          = "Done"
	MarkFailedState    = "MarkFailed"
	ExhaustedState     = "Exhausted"
	UnknownState       = "UnknownOutcome"
)

// ResultPath is where each Task puts the deliver function's result, so
// the execution input (the delivery's ids) flows on to the next Task.
const ResultPath = "$.result"

// addStateMachine creates the delivery state machine from the schedule
// and lets api and sweeper start executions.
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
	for _, fn := range []awslambda.Function{h.res.api, h.res.sweeper} {
		fn.AddEnvironment(jsii.String("HOOKSTEP_STATE_MACHINE_ARN"), sm.StateMachineArn(), nil)
		sm.GrantStartExecution(fn)
	}
	h.res.stateMachine = sm
}

// deliveryDefinition generates the state machine from the schedule: one
// Deliver Task and one Choice per attempt, and between attempts a Wait of
// the scheduled length.
//
//	Deliver1 → Outcome1 ─ delivered/stop → Done
//	                    ─ retry, final   → MarkFailed → Exhausted
//	                    ─ retry          → Wait1 (Schedule[0]) → Deliver2 → ...
//	DeliverN → OutcomeN ─ delivered/stop → Done
//	                    ─ retry          → MarkFailed → Exhausted
//
// A retry the function calls final (it counted the schedule exhausted)
// ends the run even before the last attempt, so the execution's status
// always matches the delivery's. Any other outcome fails the execution
// at UnknownOutcome.
func deliveryDefinition(scope constructs.Construct, deliver awslambda.IFunction, schedule webhook.Schedule) sfn.IChainable {
	done := sfn.NewSucceed(scope, jsii.String(DoneState), &sfn.SucceedProps{
		Comment: jsii.String("delivered, or nothing more to do for this run"),
	})
	unknown := sfn.NewFail(scope, jsii.String(UnknownState), &sfn.FailProps{
		Error: jsii.String("hookstep.UnknownOutcome"),
		Cause: jsii.String("the deliver function returned an outcome this state machine does not handle"),
	})
	exhausted := sfn.NewFail(scope, jsii.String(ExhaustedState), &sfn.FailProps{
		Error: jsii.String("hookstep.RetriesExhausted"),
		Cause: jsii.String("every attempt of the retry schedule failed"),
	})
	markFailed := deliverTask(scope, MarkFailedState, deliver, actionFail)
	markFailed.Next(exhausted)

	attempts := schedule.MaxAttempts()
	deliveries := make([]tasks.LambdaInvoke, attempts)
	for i := range deliveries {
		deliveries[i] = deliverTask(scope, fmt.Sprintf("%s%d", DeliverStatePrefix, i+1), deliver, "")
	}
	for i, task := range deliveries {
		n := i + 1
		choice := sfn.NewChoice(scope, jsii.String(fmt.Sprintf("%s%d", OutcomeStatePrefix, n)), nil).
			When(outcomeIs(outcomeDelivered), done, nil).
			When(outcomeIs(outcomeStop), done, nil)
		if n == attempts {
			choice.When(outcomeIs(outcomeRetry), markFailed, nil)
		} else {
			wait := sfn.NewWait(scope, jsii.String(fmt.Sprintf("%s%d", WaitStatePrefix, n)), &sfn.WaitProps{
				Comment: jsii.String(fmt.Sprintf("wait %s before attempt %d", schedule[i], n+1)),
				Time:    sfn.WaitTime_Duration(seconds(schedule[i])),
			})
			choice.
				When(sfn.Condition_And(outcomeIs(outcomeRetry), sfn.Condition_BooleanEquals(jsii.String(ResultPath+".final"), jsii.Bool(true))), markFailed, nil).
				When(outcomeIs(outcomeRetry), wait.Next(deliveries[n]), nil)
		}
		choice.Otherwise(unknown)
		task.Next(choice)
	}
	return deliveries[0]
}

// deliverTask invokes the deliver function with the delivery's ids (and
// an action, for MarkFailed). The function's own payload is the result
// (payloadResponseOnly), stored at ResultPath so that the ids stay.
// Retries cover only TransientLambdaErrors.
func deliverTask(scope constructs.Construct, id string, fn awslambda.IFunction, action string) tasks.LambdaInvoke {
	payload := map[string]any{
		"appId":      sfn.JsonPath_StringAt(jsii.String("$.appId")),
		"msgId":      sfn.JsonPath_StringAt(jsii.String("$.msgId")),
		"endpointId": sfn.JsonPath_StringAt(jsii.String("$.endpointId")),
		"run":        sfn.JsonPath_NumberAt(jsii.String("$.run")),
	}
	if action != "" {
		payload["action"] = action
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

func outcomeIs(outcome string) sfn.Condition {
	return sfn.Condition_StringEquals(jsii.String(ResultPath+".outcome"), jsii.String(outcome))
}
