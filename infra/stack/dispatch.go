package stack

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// addDispatch wires how a delivery reaches its execution. The api no
// longer starts executions: it stores the deliveries and hands them to
// the sweeper with an asynchronous invocation (HOOKSTEP_DISPATCH_FUNCTION),
// and the sweeper starts them, at most HOOKSTEP_DISPATCH_RATE a second
// per instance, and re-drives whatever is left on its schedule. So only
// the sweeper knows the state machine; its permissions are granted in
// addPermissions.
func (h *hookstep) addDispatch() {
	r := h.res
	r.api.AddEnvironment(jsii.String("HOOKSTEP_DISPATCH_FUNCTION"), r.sweeper.FunctionArn(), nil)
	// addStateMachine still gives the api the state machine's ARN, from
	// when the api started executions; the api has no use (and no
	// permission) for it, so the variable is taken out of the template.
	// This can go once addStateMachine names only the sweeper.
	r.api.Node().DefaultChild().(awslambda.CfnFunction).
		AddPropertyDeletionOverride(jsii.String("Environment.Variables.HOOKSTEP_STATE_MACHINE_ARN"))

	r.sweeper.AddEnvironment(jsii.String("HOOKSTEP_STATE_MACHINE_ARN"), r.stateMachine.StateMachineArn(), nil)
	// One instance's share of the account-wide rate, so that every
	// reserved instance starting executions at once stays within it.
	// The function reads a whole number; rounding down keeps the shares
	// from adding up to more. Without a reservation the number of
	// instances is unknown: each is told the whole rate.
	rate := h.props.DispatchRate / max(*h.props.SweeperConcurrency, 1)
	r.sweeper.AddEnvironment(jsii.String("HOOKSTEP_DISPATCH_RATE"), jsii.String(strconv.Itoa(rate)), nil)
}
