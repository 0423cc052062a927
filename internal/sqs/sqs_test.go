package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookstep/hookstep/internal/sqs"
	"github.com/hookstep/hookstep/internal/webhook"
)

// queue is an SQS queue in memory: the bodies sent, in order, and how to
// answer a SendMessageBatch.
type queue struct {
	mu     sync.Mutex
	bodies []string
	calls  int
	refuse func(call, entry int) bool // refuse this entry of this call
	fail   error                      // fail every call
	delay  time.Duration
}

func (q *queue) send(ctx context.Context, in *awssqs.SendMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	time.Sleep(q.delay)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if q.fail != nil {
		return nil, q.fail
	}
	if len(in.Entries) > 10 {
		return nil, errors.New("TooManyEntriesInBatchRequest")
	}
	out := &awssqs.SendMessageBatchOutput{}
	for i, e := range in.Entries {
		if q.refuse != nil && q.refuse(q.calls, i) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		q.bodies = append(q.bodies, aws.ToString(e.MessageBody))
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(fmt.Sprint(len(q.bodies)))})
	}
	return out, nil
}

func runs(n int) []webhook.Ref {
	out := make([]webhook.Ref, n)
	for i := range out {
		out[i] = webhook.Ref{AppID: "app_1", MsgID: fmt.Sprintf("msg_%03d", i), EndpointID: "ep_1"}
	}
	return out
}

func TestDispatchSendsEachRunOnceInBatchesOfTen(t *testing.T) {
	q := &queue{}
	d := sqs.New(q.send, sqs.Config{QueueURL: "https://sqs.invalid/q"})
	refs := runs(25)
	taken, err := d.Dispatch(context.Background(), refs)
	if err != nil || !slices.Equal(taken, refs) {
		t.Fatalf("got %d taken, %v; want all 25", len(taken), err)
	}
	if q.calls != 3 || len(q.bodies) != 25 {
		t.Errorf("%d calls for %d bodies, want 3 for 25", q.calls, len(q.bodies))
	}
	var got []webhook.Ref
	for _, b := range q.bodies {
		ref, err := sqs.DecodeRun(b)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ref)
	}
	slices.SortFunc(got, func(a, b webhook.Ref) int { return cmpString(a.MsgID, b.MsgID) })
	if !slices.Equal(got, refs) {
		t.Errorf("bodies decode to %v, want the runs", got)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestDispatchReportsWhatSQSRefused: entries a batch refuses, and whole
// batches that fail, are not taken; the error says so.
func TestDispatchReportsWhatSQSRefused(t *testing.T) {
	q := &queue{refuse: func(call, entry int) bool { return entry == 3 }}
	d := sqs.New(q.send, sqs.Config{QueueURL: "q", Concurrency: 1})
	refs := runs(20)
	taken, err := d.Dispatch(context.Background(), refs)
	if err == nil || len(taken) != 18 || slices.Contains(taken, refs[3]) || slices.Contains(taken, refs[13]) {
		t.Errorf("got %d taken, %v; want 18, without the refused 4th of each batch, and an error", len(taken), err)
	}
	q = &queue{fail: errors.New("AccessDenied")}
	if taken, err := sqs.New(q.send, sqs.Config{QueueURL: "q"}).Dispatch(context.Background(), refs); err == nil || len(taken) != 0 {
		t.Errorf("a failing queue: %d taken, %v; want none and an error", len(taken), err)
	}
}

// TestDispatchWithinMaxAndBudget: Max sends only the first runs; a budget
// that runs out leaves the rest, with an error.
func TestDispatchWithinMaxAndBudget(t *testing.T) {
	q := &queue{}
	if taken, err := sqs.New(q.send, sqs.Config{QueueURL: "q", Max: 15}).Dispatch(context.Background(), runs(40)); err != nil || len(taken) != 15 {
		t.Errorf("Max 15: %d taken, %v", len(taken), err)
	}
	q = &queue{delay: 30 * time.Millisecond}
	taken, err := sqs.New(q.send, sqs.Config{QueueURL: "q", Concurrency: 1, Budget: 50 * time.Millisecond}).Dispatch(context.Background(), runs(100))
	if err == nil || len(taken) == 0 || len(taken) == 100 || len(taken)%10 != 0 {
		t.Errorf("a 50 ms budget at 30 ms a batch: %d taken, %v; want some whole batches and an error", len(taken), err)
	}
	if len(q.bodies) != len(taken) {
		t.Errorf("%d sent, %d reported taken", len(q.bodies), len(taken))
	}
}

func TestDecodeRunRefusesWhatIsNotARun(t *testing.T) {
	for _, body := range []string{"", "{}", `{"appId":"a","msgId":"m"}`, `{"appId":"a","msgId":"m","endpointId":"e","run":-1}`, "not json"} {
		if _, err := sqs.DecodeRun(body); err == nil {
			t.Errorf("DecodeRun(%q): got no error", body)
		}
	}
}

// deadLetters is a dead-letter queue in memory.
type deadLetters struct {
	msgs    []types.Message
	deleted []string
}

func (d *deadLetters) receive(_ context.Context, in *awssqs.ReceiveMessageInput, _ ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	n := min(int(in.MaxNumberOfMessages), len(d.msgs))
	out := &awssqs.ReceiveMessageOutput{Messages: d.msgs[:n]}
	d.msgs = d.msgs[n:]
	return out, nil
}

func (d *deadLetters) del(_ context.Context, in *awssqs.DeleteMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error) {
	for _, e := range in.Entries {
		d.deleted = append(d.deleted, aws.ToString(e.ReceiptHandle))
	}
	return &awssqs.DeleteMessageBatchOutput{}, nil
}

// TestRequeueMovesDeadLettersBack: runs in the dead-letter queue are sent
// to the delivery queue and deleted from the dead-letter queue once sent;
// a message that is not a run is deleted and counted; one the delivery
// queue refused stays.
func TestRequeueMovesDeadLettersBack(t *testing.T) {
	dl := &deadLetters{}
	for i, r := range runs(12) {
		body := fmt.Sprintf(`{"appId":%q,"msgId":%q,"endpointId":%q,"run":0}`, r.AppID, r.MsgID, r.EndpointID)
		if i == 5 {
			body = "garbage"
		}
		dl.msgs = append(dl.msgs, types.Message{Body: aws.String(body), ReceiptHandle: aws.String(fmt.Sprint("h", i))})
	}
	q := &queue{refuse: func(call, entry int) bool { return call == 2 && entry == 0 }}
	moved, bad, err := sqs.NewDeadLetters(dl.receive, dl.del, q.send, "dlq", "q").Requeue(context.Background(), 100)
	if moved != 10 || bad != 1 || err == nil {
		t.Errorf("got %d moved, %d bad, %v; want 10, 1 and the refusal", moved, bad, err)
	}
	if len(q.bodies) != 10 || len(dl.deleted) != 11 || slices.Contains(dl.deleted, "h10") {
		t.Errorf("%d sent, deleted %v; want 10 sent, the refused h10 kept", len(q.bodies), dl.deleted)
	}
}

func TestThrottledSendsTheRunBackDelayed(t *testing.T) {
	ref := webhook.Ref{AppID: "app_1", MsgID: "msg_1", EndpointID: "ep_1", Run: 2}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		reservedAt time.Time
		delay      int32
	}{
		{"in 1.2 s: rounded up", now.Add(1200 * time.Millisecond), 2},
		{"in 20 min: SQS's longest delay, then again", now.Add(20 * time.Minute), 900},
		{"past", now.Add(-time.Second), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *awssqs.SendMessageInput
			send := func(_ context.Context, in *awssqs.SendMessageInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
				got = in
				return &awssqs.SendMessageOutput{}, nil
			}
			if err := sqs.NewThrottled(send, "https://q.invalid/q").Until(context.Background(), ref, tt.reservedAt, now); err != nil {
				t.Fatal(err)
			}
			if got.DelaySeconds != tt.delay || *got.QueueUrl != "https://q.invalid/q" {
				t.Errorf("sent %+v, want DelaySeconds %d to the queue", got, tt.delay)
			}
			gotRef, at, err := sqs.DecodeReserved(*got.MessageBody)
			if err != nil || gotRef != ref || !at.Equal(tt.reservedAt) {
				t.Errorf("body %s decodes to %v %v %v, want the run and its reservation", *got.MessageBody, gotRef, at, err)
			}
		})
	}
	// A run as the api sends it carries no reservation.
	if _, at, err := sqs.DecodeReserved(`{"appId":"a","msgId":"m","endpointId":"e","run":0}`); err != nil || !at.IsZero() {
		t.Errorf("a plain run: reservation %v, %v; want none", at, err)
	}
}
