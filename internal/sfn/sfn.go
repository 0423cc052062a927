// Package sfn is the Dispatcher of the AWS path: one Step Functions
// Standard execution per delivery run. The execution's input carries ids
// only (never payloads or secrets); its Wait states encode the retry
// schedule around the deliver function (see infra/).
//
// Execution names are deterministic — "{msgId}-{endpointId}" for the
// original fan-out and "{msgId}-{endpointId}-r{run}" for later runs
// (resend, recover, and a run the sweeper re-drove) — so a retried or
// re-driven StartExecution can never start a second execution for the
// same run: Step Functions answers ExecutionAlreadyExists (names stay
// reserved for 90 days), which counts as started.
//
// StartExecution is a token bucket per account and region (1,300 burst and
// 300 a second in us-east-1, us-west-2 and eu-west-1; 800 and 150
// elsewhere). A Dispatcher starts a batch a few at a time, within a rate
// when it has one, and reports the runs it started; what it did not start
// (throttled, failed, out of time) stays undispatched for its caller to
// hand on or for the sweeper to re-drive.
package sfn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/hookstep/hookstep/internal/webhook"
)

// StartExecutionFunc is the part of the Step Functions API the Dispatcher
// uses: pass the method value (*sfn.Client).StartExecution. It is a func,
// not an interface the client implements, because the api binary links
// html/template, whose reflection (MethodByName) makes the linker keep
// every exported method of a type converted to an interface: as an
// interface value, the *sfn.Client kept all 38 Step Functions operations
// and their serializers (make bench reports the binaries' sizes).
type StartExecutionFunc func(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)

// DescribeExecutionFunc is (*sfn.Client).DescribeExecution, for Running.
type DescribeExecutionFunc func(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)

// Config tunes a Dispatcher.
type Config struct {
	// StateMachineARN is the delivery state machine.
	StateMachineARN string
	// Concurrency bounds the StartExecution calls in flight. Default 8.
	Concurrency int
	// Rate bounds StartExecution calls a second (0: no bound): this
	// caller's share of the account's refill rate.
	Rate float64
	// Max bounds the runs one Dispatch starts (0: all): the api function
	// starts a message's first runs itself and hands the rest on.
	Max int
	// Budget bounds the time one Dispatch spends starting runs (0: until
	// its context ends).
	Budget time.Duration
	// WaitOnThrottle makes a throttled start wait and try again, backing
	// off, within the budget; without it the first throttle ends the
	// Dispatch, leaving the rest unstarted (the api function: it hands
	// them to the dispatching function instead of making a client wait).
	WaitOnThrottle bool
}

// Dispatcher starts one execution of a state machine per delivery run.
type Dispatcher struct {
	startExecution StartExecutionFunc
	cfg            Config
	limiter        *rate.Limiter // nil: no rate
}

var _ webhook.Dispatcher = (*Dispatcher)(nil)

// New returns a Dispatcher that starts executions of the configured state
// machine.
func New(startExecution StartExecutionFunc, cfg Config) *Dispatcher {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	d := &Dispatcher{startExecution: startExecution, cfg: cfg}
	if cfg.Rate > 0 {
		d.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate)))
	}
	return d
}

// ExecutionName is the deterministic name of a run's execution.
func ExecutionName(ref webhook.Ref) string {
	name := ref.MsgID + "-" + ref.EndpointID
	if ref.Run > 0 {
		name += "-r" + strconv.Itoa(ref.Run)
	}
	return name
}

// ErrThrottled reports starts that Step Functions throttled: its
// StartExecution token bucket, or its limit of open executions.
var ErrThrottled = errors.New("sfn: start execution throttled")

// Dispatch starts the runs' executions, Concurrency at a time, within Rate
// and Budget, and returns the runs it started (an execution that already
// exists under the run's name counts as started), in the order of refs.
// The others are left to the caller; err says why.
func (d *Dispatcher) Dispatch(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	if d.cfg.Max > 0 && len(refs) > d.cfg.Max {
		refs = refs[:d.cfg.Max]
	}
	// stopCtx ends the batch for the runs not yet started: at the end
	// of the budget, or at the first throttle without WaitOnThrottle.
	// A call in flight is not cut short: it may have started the
	// execution already.
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	if d.cfg.Budget > 0 {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(stopCtx, d.cfg.Budget)
		defer cancel()
	}
	started := make([]bool, len(refs))
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, d.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, ref := range refs {
		select {
		case sem <- struct{}{}:
		case <-stopCtx.Done():
		}
		if stopCtx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			err := d.start(ctx, stopCtx, ref)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				started[i] = true
			case errors.Is(err, ErrThrottled) && !d.cfg.WaitOnThrottle:
				stop()
				errs = append(errs, err)
			default:
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	var out []webhook.Ref
	for i, ok := range started {
		if ok {
			out = append(out, refs[i])
		}
	}
	if n := len(refs) - len(out); n > 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("sfn: %d runs not started: %w", n, context.Cause(stopCtx)))
	}
	return out, summarize(errs)
}

// start starts one run's execution: it waits for the rate, and with
// WaitOnThrottle backs off and tries again after a throttle, until
// stopCtx ends.
func (d *Dispatcher) start(ctx, stopCtx context.Context, ref webhook.Ref) error {
	input, err := json.Marshal(ref)
	if err != nil {
		return fmt.Errorf("sfn: encode input: %w", err)
	}
	name := ExecutionName(ref)
	for try := 0; ; try++ {
		if d.limiter != nil {
			if err := d.limiter.Wait(stopCtx); err != nil {
				return fmt.Errorf("sfn: start execution %s: %w", name, err)
			}
		}
		_, err := d.startExecution(ctx, &sfn.StartExecutionInput{
			StateMachineArn: aws.String(d.cfg.StateMachineARN),
			Name:            aws.String(name),
			Input:           aws.String(string(input)),
		})
		var exists *types.ExecutionAlreadyExists
		switch {
		case err == nil, errors.As(err, &exists):
			return nil
		case !throttled(err):
			return fmt.Errorf("sfn: start execution %s: %w", name, err)
		case !d.cfg.WaitOnThrottle:
			return fmt.Errorf("%w: %s: %w", ErrThrottled, name, err)
		}
		t := time.NewTimer(min(100*time.Millisecond<<min(try, 6), 5*time.Second))
		select {
		case <-stopCtx.Done():
			t.Stop()
			return fmt.Errorf("%w: %s: gave up at the end of the budget", ErrThrottled, name)
		case <-t.C:
		}
	}
}

// throttled reports whether Step Functions refused a start for its quotas:
// the StartExecution bucket, or the limit of open executions.
func throttled(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "ThrottlingException", "ExecutionLimitExceeded", "TooManyRequestsException":
		return true
	}
	return false
}

// summarize keeps errors short: the first, and how many others.
func summarize(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
}

// Executions tells whether a run's execution is still going: the sweeper
// asks before it re-drives a dispatched run that is overdue.
type Executions struct {
	describe        DescribeExecutionFunc
	stateMachineARN string
}

// NewExecutions returns an Executions for the state machine.
func NewExecutions(describe DescribeExecutionFunc, stateMachineARN string) *Executions {
	return &Executions{describe: describe, stateMachineARN: stateMachineARN}
}

// ExecutionARN is the ARN of a run's execution of the state machine:
// "arn:...:stateMachine:<machine>" becomes "arn:...:execution:<machine>:<name>".
func ExecutionARN(stateMachineARN string, ref webhook.Ref) string {
	return strings.Replace(stateMachineARN, ":stateMachine:", ":execution:", 1) + ":" + ExecutionName(ref)
}

// Running reports whether the run's execution exists and has not ended.
// An execution that an operator asked to redrive counts as running.
func (x *Executions) Running(ctx context.Context, ref webhook.Ref) (bool, error) {
	out, err := x.describe(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(ExecutionARN(x.stateMachineARN, ref))})
	var missing *types.ExecutionDoesNotExist
	if errors.As(err, &missing) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sfn: describe execution %s: %w", ExecutionName(ref), err)
	}
	switch out.Status {
	case types.ExecutionStatusRunning, types.ExecutionStatusPendingRedrive:
		return true, nil
	}
	return false, nil
}
