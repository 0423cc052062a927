package delivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// limiter is a Limiter that answers scripted times and records its calls.
type limiter struct {
	at    []time.Duration // after now, in order; the last one repeats
	err   error
	calls []int // the rates asked for
}

func (l *limiter) Reserve(_ context.Context, _ webhook.Ref, rate int, now time.Time) (time.Time, error) {
	l.calls = append(l.calls, rate)
	if l.err != nil {
		return time.Time{}, l.err
	}
	return now.Add(l.at[min(len(l.calls), len(l.at))-1]), nil
}

// throttledRun is a run to an endpoint with throttleRate rate (nil: none)
// and a Service with lim.
func throttledRun(t *testing.T, rate *int, lim *limiter) (*fixture, webhook.Ref) {
	t.Helper()
	f := newFixture(t)
	f.svc.Throttle = lim
	ep := f.endpoint(t, func(e *webhook.Endpoint) { e.ThrottleRate = rate })
	msg := f.publish(t, "v1.end_user.created")
	return f, webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
}

func TestAThrottledAttemptWaitsAndIsNotAnAttempt(t *testing.T) {
	ctx := context.Background()
	rate := 5
	lim := &limiter{at: []time.Duration{1500 * time.Millisecond}}
	f, ref := throttledRun(t, &rate, lim)
	now := f.clock.Now()

	res, err := f.svc.Attempt(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	resume := now.Add(2 * time.Second) // 1.5 s, rounded up to the second
	if res.Outcome != delivery.Throttled || res.ResumeAt == nil || !res.ResumeAt.Equal(resume) || res.WaitSec != 2 || res.Attempt != 0 {
		t.Errorf("attempt of a throttled run: got %+v (resumeAt %v), want throttled, attempt 0, resumeAt +2s, waitSeconds 2", res, res.ResumeAt)
	}
	if len(f.post.requests) != 0 {
		t.Errorf("%d requests sent, want none while throttled", len(f.post.requests))
	}
	if d := f.delivery(t, ref.MsgID, ref.EndpointID); d.Attempts != 0 || d.Status != webhook.StatusPending {
		t.Errorf("the delivery after a throttled attempt: %d attempts, %s; want 0, pending", d.Attempts, d.Status)
	}
	if page, _ := f.store.ListAttempts(ctx, webhook.AttemptFilter{AppID: f.app.ID, MsgID: ref.MsgID}); len(page.Items) != 0 {
		t.Errorf("%d attempts recorded, want none", len(page.Items))
	}
	if len(lim.calls) != 1 || lim.calls[0] != rate {
		t.Errorf("limiter asked %v, want once at rate %d", lim.calls, rate)
	}

	// With the reservation, at its time, the attempt is made without
	// asking the limiter again.
	f.clock.Set(resume)
	res, err = f.svc.AttemptReserved(ctx, ref, *res.ResumeAt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != delivery.Delivered || res.Attempt != 1 || len(f.post.requests) != 1 || len(lim.calls) != 1 {
		t.Errorf("the reserved attempt: got %+v, %d requests, limiter asked %d times; want delivered, attempt 1, 1 request, 1 ask",
			res, len(f.post.requests), len(lim.calls))
	}
}

func TestAReservationAskedForEarlyIsKept(t *testing.T) {
	rate := 1
	lim := &limiter{at: []time.Duration{0}}
	f, ref := throttledRun(t, &rate, lim)
	reserved := f.clock.Now().Add(10 * time.Second)
	res, err := f.svc.AttemptReserved(context.Background(), ref, reserved)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != delivery.Throttled || !res.ResumeAt.Equal(reserved) || len(lim.calls) != 0 || len(f.post.requests) != 0 {
		t.Errorf("a reserved attempt 10 s early: got %+v, limiter asked %d times, %d requests; want throttled until the reservation, no ask, nothing sent",
			res, len(lim.calls), len(f.post.requests))
	}
}

func TestUnthrottledEndpointsNeverAskTheLimiter(t *testing.T) {
	zero := 0
	for name, rate := range map[string]*int{"unset": nil, "zero": &zero} {
		t.Run(name, func(t *testing.T) {
			lim := &limiter{err: errors.New("must not be asked")}
			f, ref := throttledRun(t, rate, lim)
			res, err := f.svc.Attempt(context.Background(), ref)
			if err != nil || res.Outcome != delivery.Delivered || len(lim.calls) != 0 {
				t.Errorf("got %+v, %v, limiter asked %d times; want delivered without asking", res, err, len(lim.calls))
			}
		})
	}
}

func TestAThrottledAttemptWithAFreeTokenSendsAtOnce(t *testing.T) {
	rate := 3
	lim := &limiter{at: []time.Duration{0}}
	f, ref := throttledRun(t, &rate, lim)
	next, err := f.svc.AttemptNext(context.Background(), ref, nil)
	if err != nil || !next.IsZero() || len(f.post.requests) != 1 {
		t.Errorf("AttemptNext with a token: got %v, %v, %d requests; want a delivery", next, err, len(f.post.requests))
	}
}

func TestAttemptNextSaysUntilWhenItIsThrottled(t *testing.T) {
	rate := 3
	lim := &limiter{at: []time.Duration{400 * time.Millisecond}}
	f, ref := throttledRun(t, &rate, lim)
	_, err := f.svc.AttemptNext(context.Background(), ref, nil)
	var th *delivery.ThrottledError
	if !errors.As(err, &th) || !th.Until.Equal(f.clock.Now().Add(400*time.Millisecond)) {
		t.Fatalf("AttemptNext throttled: got %v, want a ThrottledError until +400ms", err)
	}
	if len(f.post.requests) != 0 {
		t.Errorf("%d requests, want none", len(f.post.requests))
	}
}

func TestALimiterFailureIsAnError(t *testing.T) {
	rate := 3
	lim := &limiter{err: errors.New("table unreachable")}
	f, ref := throttledRun(t, &rate, lim)
	if _, err := f.svc.Attempt(context.Background(), ref); err == nil || len(f.post.requests) != 0 {
		t.Errorf("Attempt with the limiter down: got %v, %d requests; want an error and nothing sent", err, len(f.post.requests))
	}
}
