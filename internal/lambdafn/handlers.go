package lambdafn

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/sweeper"
	"github.com/hookstep/hookstep/internal/webhook"
)

// DeliverInput is the deliver function's event: the execution input (ids
// only) and, for the state machine's last step, Action "fail".
type DeliverInput struct {
	webhook.Ref
	Action string `json:"action,omitempty"`
}

// ActionFail marks the run failed: the last step of the state machine,
// after the final retry.
const ActionFail = "fail"

// Deliver returns the deliver function's handler. An error (the store is
// unreachable) fails the Task; the state machine does not retry it blindly,
// since the POST may already have happened.
func Deliver(svc *delivery.Service) func(context.Context, DeliverInput) (delivery.Result, error) {
	return func(ctx context.Context, in DeliverInput) (delivery.Result, error) {
		if in.AppID == "" || in.MsgID == "" || in.EndpointID == "" || in.Run < 0 {
			return delivery.Result{}, fmt.Errorf("deliver: input needs appId, msgId, endpointId and run >= 0, got %+v", in.Ref)
		}
		switch in.Action {
		case "":
			return svc.Attempt(ctx, in.Ref)
		case ActionFail:
			if err := svc.Fail(ctx, in.Ref); err != nil {
				return delivery.Result{}, err
			}
			return delivery.Result{Outcome: delivery.Stop, Final: true}, nil
		}
		return delivery.Result{}, fmt.Errorf("deliver: unknown action %q", in.Action)
	}
}

// Sweep returns the sweeper function's handler, run by an EventBridge
// schedule. Each run does a bounded amount of work; the next run resumes.
func Sweep(sw *sweeper.Sweeper) func(context.Context, events.EventBridgeEvent) (sweeper.Report, error) {
	return func(ctx context.Context, _ events.EventBridgeEvent) (sweeper.Report, error) {
		return sw.Sweep(ctx)
	}
}
