package stack

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"
)

// addDispatch wires how a delivery reaches its execution. The api stores
// a message's deliveries, starts the first 25 executions itself (within
// 2 s, stopping at a throttle) and hands the rest to the sweeper with an
// asynchronous invocation (HOOKSTEP_DISPATCH_FUNCTION); the sweeper
// starts those, at most HOOKSTEP_DISPATCH_RATE a second per instance, and
// re-drives whatever is left on its schedule. Both know the state
// machine; their permissions are granted in addPermissions.
func (h *hookstep) addDispatch() {
	r := h.res
	for _, fn := range []awslambda.Function{r.api, r.sweeper} {
		fn.AddEnvironment(jsii.String("HOOKSTEP_STATE_MACHINE_ARN"), r.stateMachine.StateMachineArn(), nil)
	}
	r.api.AddEnvironment(jsii.String("HOOKSTEP_DISPATCH_FUNCTION"), r.sweeper.FunctionArn(), nil)
	// One instance's share of the account-wide rate, so that every
	// reserved instance starting executions at once stays within it.
	// The function reads a whole number; rounding down keeps the shares
	// from adding up to more. Without a reservation the number of
	// instances is unknown: each is told the whole rate.
	rate := h.props.DispatchRate / max(*h.props.SweeperConcurrency, 1)
	r.sweeper.AddEnvironment(jsii.String("HOOKSTEP_DISPATCH_RATE"), jsii.String(strconv.Itoa(rate)), nil)
}
