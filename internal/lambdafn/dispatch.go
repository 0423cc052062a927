package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// InvokeFunc is the part of the Lambda API HandOff uses: pass the method
// value (*lambda.Client).Invoke (a func rather than an interface, for the
// api binary's size: see sfn.StartExecutionFunc).
type InvokeFunc func(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)

// HandOff is a Dispatcher that hands runs to the sweeper function with an
// asynchronous invoke (SweeperEvent.Dispatch): Lambda queues the event,
// retries it, and the sweeper starts the executions within its rate. It
// takes none of the runs itself: they stay undispatched until the sweeper
// has started them and marked them, so one that is lost in between is
// re-driven by the next sweep.
type HandOff struct {
	invoke   InvokeFunc
	function string // the sweeper function's name or ARN
}

var _ webhook.Dispatcher = (*HandOff)(nil)

// NewHandOff returns a HandOff to the function.
func NewHandOff(invoke InvokeFunc, function string) *HandOff {
	return &HandOff{invoke: invoke, function: function}
}

// handOffChunk bounds the runs of one invoke: about 120 bytes each, well
// under the 256 KB an asynchronous invoke's payload may have.
const handOffChunk = 1000

// Dispatch invokes the sweeper function once per chunk of runs. It
// returns no runs (they are not taken until the sweeper starts them) and
// an error if an invoke failed.
func (h *HandOff) Dispatch(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	var errs []error
	for start := 0; start < len(refs); start += handOffChunk {
		payload, err := json.Marshal(SweeperEvent{Dispatch: refs[start:min(start+handOffChunk, len(refs))]})
		if err != nil {
			return nil, fmt.Errorf("hand off: %w", err)
		}
		_, err = h.invoke(ctx, &lambda.InvokeInput{
			FunctionName:   aws.String(h.function),
			InvocationType: types.InvocationTypeEvent,
			Payload:        payload,
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("hand off %d runs to %s: %w", len(refs[start:min(start+handOffChunk, len(refs))]), h.function, err))
		}
	}
	return nil, errors.Join(errs...)
}

// Task hands a stored background task to the sweeper function by its id
// (SweeperEvent.Task), for delivery.Service.HandTask: a recover runs
// there, off the request, and a sweep resumes it if that invoke is lost.
func (h *HandOff) Task(ctx context.Context, taskID string) error {
	payload, err := json.Marshal(SweeperEvent{Task: taskID})
	if err != nil {
		return fmt.Errorf("hand off task: %w", err)
	}
	_, err = h.invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(h.function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("hand off task %s to %s: %w", taskID, h.function, err)
	}
	return nil
}

// firstThen is a Dispatcher that gives runs to first, and those first did
// not take to then: the api function starts a message's first runs itself
// (sfn.Dispatcher, or sqs.Dispatcher, with a bound and a budget) and hands
// the rest, and any it could not start, to the sweeper (HandOff). It is
// a delivery.Early: both of first's kinds of dispatch are durable on
// their own, so a new message's runs go to first before the message is
// stored, and the rest to then after.
type firstThen struct {
	first, then webhook.Dispatcher
}

var _ delivery.Early = firstThen{}

// FirstThen returns the api function's dispatcher: first, then then
// (see firstThen). For the bench, which measures the api's writes.
func FirstThen(first, then webhook.Dispatcher) webhook.Dispatcher {
	return firstThen{first: first, then: then}
}

// First implements delivery.Early.
func (d firstThen) First(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	return d.first.Dispatch(ctx, refs)
}

// Then implements delivery.Early.
func (d firstThen) Then(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	return d.then.Dispatch(ctx, refs)
}

func (d firstThen) Dispatch(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	taken, err := d.first.Dispatch(ctx, refs)
	if len(taken) == len(refs) {
		return taken, nil // whatever err said, every run started
	}
	started := make(map[webhook.Ref]bool, len(taken))
	for _, r := range taken {
		started[r] = true
	}
	rest := make([]webhook.Ref, 0, len(refs)-len(taken))
	for _, r := range refs {
		if !started[r] {
			rest = append(rest, r)
		}
	}
	more, herr := d.then.Dispatch(ctx, rest)
	if herr != nil {
		return append(taken, more...), errors.Join(err, herr)
	}
	return append(taken, more...), nil
}
