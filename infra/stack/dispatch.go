package stack

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// addDispatch wires how a delivery reaches its attempts; every function
// is told the mode (HOOKSTEP_DISPATCH, see addFunctions).
//
// In stepfunctions mode the api stores a message's deliveries, starts
// the first 25 executions itself (within 2 s, stopping at a throttle)
// and hands the rest to the sweeper with an asynchronous invocation
// (HOOKSTEP_DISPATCH_FUNCTION); the sweeper starts those, at most
// HOOKSTEP_DISPATCH_RATE a second per instance, and re-drives whatever
// is left on its schedule.
//
// In queue mode the api sends new deliveries to the delivery queue
// (HOOKSTEP_DISPATCH_QUEUE_URL) and hands the sweeper what it could not
// send; the deliver function consumes the queue and starts an execution
// (HOOKSTEP_STATE_MACHINE_ARN) only for a delivery whose first attempts
// failed; the sweeper sends undispatched deliveries to the queue, drains
// the dead-letter queue (HOOKSTEP_DEAD_LETTER_QUEUE_URL) back into it,
// and starts the executions of runs it re-drives.
//
// The permissions that go with each are granted in addPermissions.
func (h *hookstep) addDispatch() {
	r := h.res
	set := func(fn awslambda.Function, key string, value *string) {
		fn.AddEnvironment(jsii.String(key), value, nil)
	}
	set(r.api, "HOOKSTEP_DISPATCH_FUNCTION", r.sweeper.FunctionArn())
	set(r.sweeper, "HOOKSTEP_STATE_MACHINE_ARN", r.stateMachine.StateMachineArn())
	// One instance's share of the account-wide rate, so that every
	// reserved instance starting executions at once stays within it.
	// The function reads a whole number; rounding down keeps the shares
	// from adding up to more. Without a reservation the number of
	// instances is unknown: each is told the whole rate.
	rate := h.props.DispatchRate / max(*h.props.SweeperConcurrency, 1)
	set(r.sweeper, "HOOKSTEP_DISPATCH_RATE", jsii.String(strconv.Itoa(rate)))

	if h.props.Dispatch != DispatchQueue {
		set(r.api, "HOOKSTEP_STATE_MACHINE_ARN", r.stateMachine.StateMachineArn())
		return
	}
	queueURL := r.queue.QueueUrl()
	set(r.api, "HOOKSTEP_DISPATCH_QUEUE_URL", queueURL)
	// The ARN built from the state machine's name, not a reference to
	// it: see addQueue.
	set(r.deliver, "HOOKSTEP_STATE_MACHINE_ARN", r.stateMachineARN)
	set(r.deliver, "HOOKSTEP_DISPATCH_QUEUE_URL", queueURL)
	set(r.sweeper, "HOOKSTEP_DISPATCH_QUEUE_URL", queueURL)
	set(r.sweeper, "HOOKSTEP_DEAD_LETTER_QUEUE_URL", r.deadLetterQueue.QueueUrl())
}
