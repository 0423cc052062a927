// Package sqs is the Dispatcher of the AWS path's queue mode: a delivery
// run's first attempt goes through an SQS queue, whose event source
// mapping invokes the deliver function (lambdafn.DeliverQueued), and only
// a run that needs a retry gets a Step Functions execution. A message is
// one run's ids (webhook.Ref as JSON: never a payload or a secret).
//
// SQS keeps a message until the deliver function has handled it (the
// event source mapping deletes what the function did not report failed),
// and after maxReceiveCount failed receives moves it to a dead-letter
// queue, which the sweeper drains back into the queue (Requeue): a run
// sent here is owned by the queue until its first attempt is recorded.
package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookstep/hookstep/internal/webhook"
)

// The parts of the SQS API the package uses: pass the method values of an
// *sqs.Client (funcs rather than an interface, for the api binary's size:
// see sfn.StartExecutionFunc).
type (
	SendMessageBatchFunc   func(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessageFunc     func(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatchFunc func(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
)

// maxBatch is SQS's limit of entries per batch call.
const maxBatch = 10

// Config tunes a Dispatcher.
type Config struct {
	QueueURL string
	// Concurrency bounds the SendMessageBatch calls in flight. Default 8.
	Concurrency int
	// Max bounds the runs one Dispatch sends (0: all); Budget the time it
	// spends (0: until its context ends). What is left is the caller's
	// to hand on.
	Max    int
	Budget time.Duration
}

// Dispatcher sends each run to the delivery queue.
type Dispatcher struct {
	send SendMessageBatchFunc
	cfg  Config
}

var _ webhook.Dispatcher = (*Dispatcher)(nil)

// New returns a Dispatcher to the configured queue.
func New(send SendMessageBatchFunc, cfg Config) *Dispatcher {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	return &Dispatcher{send: send, cfg: cfg}
}

// Dispatch sends the runs in batches of ten, Concurrency batches at a
// time, within Max and Budget, and returns those SQS accepted, in the
// order of refs. The others are left to the caller; err says why.
func (d *Dispatcher) Dispatch(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	if d.cfg.Max > 0 && len(refs) > d.cfg.Max {
		refs = refs[:d.cfg.Max]
	}
	stopCtx := ctx
	if d.cfg.Budget > 0 {
		var cancel context.CancelFunc
		stopCtx, cancel = context.WithTimeout(ctx, d.cfg.Budget)
		defer cancel()
	}
	sent := make([]bool, len(refs))
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, d.cfg.Concurrency)
	var wg sync.WaitGroup
	for start := 0; start < len(refs); start += maxBatch {
		select {
		case sem <- struct{}{}:
		case <-stopCtx.Done():
		}
		if stopCtx.Err() != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("sqs: %d runs not sent: %w", len(refs)-start, stopCtx.Err()))
			mu.Unlock()
			break
		}
		end := min(start+maxBatch, len(refs))
		wg.Go(func() {
			defer func() { <-sem }()
			// A call in flight is not cut short by the budget: it may
			// have been accepted already.
			ok, err := d.sendBatch(ctx, refs[start:end])
			mu.Lock()
			defer mu.Unlock()
			for i, s := range ok {
				sent[start+i] = s
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	var out []webhook.Ref
	for i, ok := range sent {
		if ok {
			out = append(out, refs[i])
		}
	}
	return out, errors.Join(errs...)
}

// sendBatch sends up to ten runs in one call and reports which SQS
// accepted (a batch can succeed in part).
func (d *Dispatcher) sendBatch(ctx context.Context, refs []webhook.Ref) ([]bool, error) {
	entries := make([]types.SendMessageBatchRequestEntry, len(refs))
	for i, ref := range refs {
		body, err := json.Marshal(ref)
		if err != nil {
			return nil, fmt.Errorf("sqs: encode run: %w", err)
		}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
	}
	out, err := d.send(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(d.cfg.QueueURL), Entries: entries})
	if err != nil {
		return make([]bool, len(refs)), fmt.Errorf("sqs: send %d runs: %w", len(refs), err)
	}
	ok := make([]bool, len(refs))
	for _, s := range out.Successful {
		if i, err := strconv.Atoi(aws.ToString(s.Id)); err == nil && i >= 0 && i < len(ok) {
			ok[i] = true
		}
	}
	if len(out.Failed) > 0 {
		f := out.Failed[0]
		return ok, fmt.Errorf("sqs: %d of %d runs refused, first: %s %s", len(out.Failed), len(refs), aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return ok, nil
}

// DecodeRun reads a run from its JSON: a queue message's body, which is
// also what an execution of the state machine takes as input.
func DecodeRun(body string) (webhook.Ref, error) {
	ref, _, err := DecodeReserved(body)
	return ref, err
}

// DeadLetters moves what the dead-letter queue holds back into the
// delivery queue, for the sweeper.
type DeadLetters struct {
	receive ReceiveMessageFunc
	del     DeleteMessageBatchFunc
	send    SendMessageBatchFunc
	dlqURL  string
	to      *Dispatcher
}

// NewDeadLetters returns a DeadLetters that moves messages from the
// queue at dlqURL into queueURL.
func NewDeadLetters(receive ReceiveMessageFunc, del DeleteMessageBatchFunc, send SendMessageBatchFunc, dlqURL, queueURL string) *DeadLetters {
	return &DeadLetters{receive: receive, del: del, send: send, dlqURL: dlqURL, to: New(send, Config{QueueURL: queueURL})}
}

// Requeue moves up to max runs from the dead-letter queue to the delivery
// queue, ten at a time, and returns how many it moved. A message is
// deleted from the dead-letter queue only once the delivery queue has it;
// one whose body is not a run is deleted and counted in bad.
func (q *DeadLetters) Requeue(ctx context.Context, max int) (moved, bad int, err error) {
	for moved+bad < max {
		out, err := q.receive(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(q.dlqURL), MaxNumberOfMessages: int32(min(maxBatch, max-moved-bad)),
			VisibilityTimeout: 60, WaitTimeSeconds: 0,
		})
		if err != nil {
			return moved, bad, fmt.Errorf("sqs: receive dead letters: %w", err)
		}
		if len(out.Messages) == 0 {
			return moved, bad, nil
		}
		var refs []webhook.Ref
		var handles, badHandles []string // of refs; of the messages that are not runs
		for _, m := range out.Messages {
			ref, err := DecodeRun(aws.ToString(m.Body))
			if err != nil {
				badHandles = append(badHandles, aws.ToString(m.ReceiptHandle))
				continue
			}
			refs = append(refs, ref)
			handles = append(handles, aws.ToString(m.ReceiptHandle))
		}
		ok, sendErr := q.to.sendBatch(ctx, refs)
		var done []string
		for i, s := range ok {
			if s {
				done = append(done, handles[i])
				moved++
			}
		}
		done = append(done, badHandles...)
		bad += len(badHandles)
		if err := q.deleteAll(ctx, done); err != nil {
			return moved, bad, err
		}
		if sendErr != nil {
			return moved, bad, sendErr
		}
	}
	return moved, bad, nil
}

func (q *DeadLetters) deleteAll(ctx context.Context, handles []string) error {
	if len(handles) == 0 {
		return nil
	}
	entries := make([]types.DeleteMessageBatchRequestEntry, len(handles))
	for i, h := range handles {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)}
	}
	out, err := q.del(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.dlqURL), Entries: entries})
	if err != nil {
		return fmt.Errorf("sqs: delete dead letters: %w", err)
	}
	if len(out.Failed) > 0 {
		// They come back after their visibility timeout and are moved
		// again: a run sent twice is handled once (DeliverQueued).
		return fmt.Errorf("sqs: %d dead letters not deleted: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
	}
	return nil
}

// ChangeMessageVisibilityFunc is (*sqs.Client).ChangeMessageVisibility.
type ChangeMessageVisibilityFunc func(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)

// The backoff of a record the deliver function could not handle (the
// store or Step Functions failed): it comes back after firstBackoff,
// doubling with every receive up to maxBackoff, instead of after the
// queue's visibility timeout, which must outlast the function's timeout
// and is minutes long.
const (
	firstBackoff = 10 * time.Second
	maxBackoff   = 5 * time.Minute
)

// Backoff makes the records of one queue that failed come back sooner
// than the visibility timeout.
type Backoff struct {
	change   ChangeMessageVisibilityFunc
	queueURL string
}

// NewBackoff returns a Backoff for the queue at queueURL.
func NewBackoff(change ChangeMessageVisibilityFunc, queueURL string) *Backoff {
	return &Backoff{change: change, queueURL: queueURL}
}

// Delay is how long a record received receiveCount times waits before it
// is received again.
func Delay(receiveCount int) time.Duration {
	d := firstBackoff
	for i := 1; i < receiveCount && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// Later makes the record with the receipt handle visible again after
// Delay(receiveCount). If this fails, the record comes back after the
// queue's visibility timeout: later, never lost.
func (b *Backoff) Later(ctx context.Context, receiptHandle string, receiveCount int) error {
	_, err := b.change(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(b.queueURL), ReceiptHandle: aws.String(receiptHandle),
		VisibilityTimeout: int32(Delay(receiveCount) / time.Second),
	})
	if err != nil {
		return fmt.Errorf("sqs: change visibility: %w", err)
	}
	return nil
}

// SendMessageFunc is (*sqs.Client).SendMessage.
type SendMessageFunc func(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)

// MaxDelay is the longest SQS delays a message (DelaySeconds).
const MaxDelay = 15 * time.Minute

// reservedRun is the body of a run sent back to the queue to wait for
// the throttle token its first attempt reserved.
type reservedRun struct {
	webhook.Ref
	ReservedAt time.Time `json:"reservedAt"`
}

// DecodeReserved reads a record's run, as DecodeRun, and the throttle
// reservation it carries (zero: none; see Throttled).
func DecodeReserved(body string) (webhook.Ref, time.Time, error) {
	var r reservedRun
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return r.Ref, time.Time{}, fmt.Errorf("not a run: %w", err)
	}
	if r.AppID == "" || r.MsgID == "" || r.EndpointID == "" || r.Run < 0 {
		return r.Ref, time.Time{}, fmt.Errorf("names no run: %s", body)
	}
	return r.Ref, r.ReservedAt, nil
}

// Throttled sends runs whose first attempt the endpoint's throttle held
// back to the queue again, delayed until the token reserved for them
// comes back and carrying the reservation, so that the deliver function
// then makes the attempt with it (delivery.Service.AttemptQueuedReserved)
// rather than reserving another. A reservation beyond MaxDelay comes back
// early, finds it is not due, and is sent again with the rest of the
// wait: one message per 15 minutes of waiting, never a poll.
type Throttled struct {
	send     SendMessageFunc
	queueURL string
}

// NewThrottled returns a Throttled for the queue at queueURL.
func NewThrottled(send SendMessageFunc, queueURL string) *Throttled {
	return &Throttled{send: send, queueURL: queueURL}
}

// Until sends ref back to the queue, delayed from now until reservedAt
// (rounded up to the second, at most MaxDelay).
func (q *Throttled) Until(ctx context.Context, ref webhook.Ref, reservedAt, now time.Time) error {
	body, err := json.Marshal(reservedRun{Ref: ref, ReservedAt: reservedAt})
	if err != nil {
		return fmt.Errorf("sqs: encode run: %w", err)
	}
	delay := min(MaxDelay, max(0, reservedAt.Sub(now)+time.Second-1)) / time.Second
	_, err = q.send(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(q.queueURL), MessageBody: aws.String(string(body)), DelaySeconds: int32(delay),
	})
	if err != nil {
		return fmt.Errorf("sqs: send throttled run %s/%s: %w", ref.MsgID, ref.EndpointID, err)
	}
	return nil
}
