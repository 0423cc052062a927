// Package sfn is the Dispatcher of the AWS path: one Step Functions
// Standard execution per delivery run. The execution's input carries ids
// only (never payloads or secrets); its Wait states encode the retry
// schedule around the deliver function (see infra/).
//
// Execution names are deterministic — "{msgId}-{endpointId}" for the
// original fan-out and "{msgId}-{endpointId}-r{run}" for resend and recover
// runs — so a retried or re-driven StartExecution can never start a second
// execution for the same run: Step Functions answers ExecutionAlreadyExists
// (names stay reserved for 90 days), which counts as started.
package sfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/hookstep/hookstep/internal/webhook"
)

// StartExecutionFunc is the part of the Step Functions API the Dispatcher
// uses: pass the method value (*sfn.Client).StartExecution. It is a func,
// not an interface the client implements, because the api binary links
// html/template, whose reflection (MethodByName) makes the linker keep
// every exported method of a type converted to an interface: as an
// interface value, the *sfn.Client kept all 38 Step Functions operations
// and their serializers, 1.2 MB of the stripped api binary.
type StartExecutionFunc func(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)

// Dispatcher starts one execution of a state machine per delivery run.
type Dispatcher struct {
	startExecution  StartExecutionFunc
	stateMachineARN string
}

var _ webhook.Dispatcher = (*Dispatcher)(nil)

// New returns a Dispatcher that starts executions of the given state
// machine.
func New(startExecution StartExecutionFunc, stateMachineARN string) *Dispatcher {
	return &Dispatcher{startExecution: startExecution, stateMachineARN: stateMachineARN}
}

// ExecutionName is the deterministic name of a run's execution.
func ExecutionName(ref webhook.Ref) string {
	name := ref.MsgID + "-" + ref.EndpointID
	if ref.Run > 0 {
		name += "-r" + strconv.Itoa(ref.Run)
	}
	return name
}

// Dispatch starts the run's execution. An execution that already exists
// under the run's name counts as started.
func (d *Dispatcher) Dispatch(ctx context.Context, ref webhook.Ref) error {
	input, err := json.Marshal(ref)
	if err != nil {
		return fmt.Errorf("sfn: encode input: %w", err)
	}
	name := ExecutionName(ref)
	_, err = d.startExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(d.stateMachineARN),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	var exists *types.ExecutionAlreadyExists
	if errors.As(err, &exists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sfn: start execution %s: %w", name, err)
	}
	return nil
}
