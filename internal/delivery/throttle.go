package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Throttling: an endpoint with throttleRate N receives at most N requests
// in any one-second window, in bursts of at most N, whatever the backlog
// (internal/throttle has the algorithm: N tokens, each back one second
// after its use). Before an attempt to a throttled endpoint, the attempt
// asks the Limiter for a token. With one, it sends at once. Without, the
// Limiter reserves the next token that comes back for this run, and the
// attempt is not made: nothing is sent or recorded, the run's attempts
// and status are untouched, and the result is Throttled with the
// reservation's time. The caller waits until then and attempts again with
// the reservation, which sends without asking the Limiter again — each
// attempt of a throttled endpoint costs one reservation, however long
// the backlog:
//
//   - local mode: AttemptNext fails with a *ThrottledError; the queue
//     keeps the delivery, without a worker, until the reservation, and
//     the local limiter (localqueue.Throttle) remembers the reservation
//     by run, so the next AttemptNext sends.
//   - Step Functions: the state machine's Throttle Wait waits until
//     Result.ResumeAt (rounded up to the second: a Wait's resolution),
//     and its DeliverReserved Task passes it back (AttemptReserved).
//   - queue mode: DeliverQueued sends the record again, delayed until
//     the reservation and carrying it (sqs.Run.ReservedAt).
//
// An endpoint whose throttleRate is unset, or 0, never asks the Limiter:
// it costs nothing. A change of throttleRate applies from the next
// attempt; reservations already made stand (setting it to 0 lets every
// later attempt go at once; those waiting still wait for their tokens).
// A run that ends while it waits (the endpoint was disabled, the message
// expired) leaves its token unused: the endpoint gets one request fewer
// in that second. Retries are attempts like any other: each takes a
// token. The app's throttleRate (Svix's per-app rate limit) is stored
// only; it is not enforced.
//
// The window is the limiter's: it grants N tokens in any second, and
// the requests leave when their attempts run, a few milliseconds later
// in local mode, the latency of a Wait and a Lambda invocation on AWS;
// that lateness varies, so a receiver may see the edge of one second's
// burst a little closer to the next one's than a second.
//
// What it costs on AWS, for throttled endpoints only:
//   - DynamoDB: one conditional UpdateItem of the endpoint's token log
//     (dynamo.Throttle, one write unit) per attempt asked for, plus a
//     refused write and a retry each time another deliver function
//     wrote the log first. The item takes ~1,000 writes a second (a
//     partition's limit), refused ones included: a throttleRate above a
//     few hundred is bounded by that item rather than by the rate.
//   - Lambda: an attempt held back is a deliver invocation that sends
//     nothing (tens of milliseconds), and its reserved attempt another:
//     in a backlog, about two invocations per delivery instead of one.
//   - Step Functions: the Throttle Wait and DeliverReserved add three
//     state transitions per held-back attempt; the wait itself is free
//     and may be as long as the backlog needs (an execution lives up to
//     a year).
//   - SQS (queue mode): a held-back first attempt sends one delayed
//     message, and one more per 15 minutes of waiting (SQS's longest
//     delay); the deliver role needs sqs:SendMessage on the queue.

// Limiter hands out the tokens of throttled endpoints.
type Limiter interface {
	// Reserve takes a token of ref's endpoint, whose throttleRate is
	// rate (> 0), for an attempt of ref at now, and returns when the
	// attempt may be made: now (or earlier) to make it at once, later
	// when no token is free — the token that comes back then is
	// reserved for ref. An error means the limiter could not be asked;
	// nothing was reserved.
	Reserve(ctx context.Context, ref webhook.Ref, rate int, now time.Time) (time.Time, error)
}

// ThrottledError is AttemptNext's error for an attempt the endpoint's
// throttle held back: it was not made, and may be made at Until.
type ThrottledError struct {
	Ref   webhook.Ref
	Until time.Time
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("delivery: %s to %s throttled until %s", e.Ref.MsgID, e.Ref.EndpointID, e.Until.Format(time.RFC3339Nano))
}

// ThrottledUntil says until when the attempt waits (the local queue reads
// it without importing this package).
func (e *ThrottledError) ThrottledUntil() time.Time { return e.Until }

// AttemptReserved is Attempt for a run whose attempt was Throttled, with
// the reservation the Throttled result gave (its ResumeAt): it attempts
// without asking the Limiter again. Called a moment before the
// reservation (a Wait's clock and this function's can disagree by up to
// notDue), it waits for it; called earlier, it answers Throttled again
// with the same reservation.
func (s *Service) AttemptReserved(ctx context.Context, ref webhook.Ref, reservedAt time.Time) (Result, error) {
	if err := s.awaitReservation(ctx, reservedAt); err != nil {
		return Result{}, err
	}
	return s.attempt(ctx, ref, nil, true, reservedAt)
}

// awaitReservation waits until reservedAt if it is no more than notDue
// away.
func (s *Service) awaitReservation(ctx context.Context, reservedAt time.Time) error {
	wait := reservedAt.Sub(s.Clock.Now())
	if wait <= 0 || wait > notDue {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// throttle asks the Limiter for a token before an attempt to ep, unless
// the run holds a reservation that is due (reserved). held says the
// attempt must wait: res is the Throttled result.
func (s *Service) throttle(ctx context.Context, ref webhook.Ref, d *webhook.Delivery, ep *webhook.Endpoint, reserved time.Time) (res Result, held bool, err error) {
	if s.Throttle == nil || ep.ThrottleRate == nil || *ep.ThrottleRate <= 0 {
		return Result{}, false, nil
	}
	now := s.Clock.Now()
	at := reserved
	if at.IsZero() {
		if at, err = s.Throttle.Reserve(ctx, ref, *ep.ThrottleRate, now); err != nil {
			return Result{}, false, fmt.Errorf("delivery: throttle of endpoint %s: %w", ref.EndpointID, err)
		}
	}
	if !at.After(now) {
		return Result{}, false, nil
	}
	return throttled(d, at, now), true, nil
}

// throttled is the result of an attempt of d held back until at: the
// attempt number is that of the last recorded attempt, and ResumeAt is at
// rounded up to the second, a Step Functions Wait's resolution.
func throttled(d *webhook.Delivery, at, now time.Time) Result {
	resume := at.Truncate(time.Second)
	if resume.Before(at) {
		resume = resume.Add(time.Second)
	}
	wait := resume.Sub(now)
	return Result{Outcome: Throttled, Attempt: d.Attempts, Wait: wait, WaitSec: int64((wait + time.Second - 1) / time.Second),
		NextAttemptAt: at, ResumeAt: &resume}
}
