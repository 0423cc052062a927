package awstest_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookstep/hookstep/internal/awstest"
)

// The stand-in's behaviour the poller and the queue mode rely on, through
// the same SDK the functions use (which checks every MD5 fauxqs returns).
func TestFauxqs(t *testing.T) {
	start := time.Now()
	s := awstest.NewSQS(t)
	t.Logf("fauxqs listening after %v", time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	t.Run("send a batch of 10 and receive it", func(t *testing.T) {
		q := s.CreateQueue(t, "batch", 30*time.Second, nil, 0)
		var entries []types.SendMessageBatchRequestEntry
		for i := range 10 {
			entries = append(entries, types.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(fmt.Sprintf(`{"n":%d}`, i)),
				MessageAttributes: map[string]types.MessageAttributeValue{
					"kind": {DataType: aws.String("String"), StringValue: aws.String("test")},
					"n":    {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(i))},
				},
			})
		}
		out, err := s.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Successful) != 10 || len(out.Failed) != 0 {
			t.Fatalf("got %d sent, %d failed; want 10, 0", len(out.Successful), len(out.Failed))
		}
		if got := q.Depth(t); got != 10 {
			t.Errorf("depth after send: got %d, want 10", got)
		}
		got := receive(t, s, q, 10, 0)
		if len(got) != 10 {
			t.Fatalf("received %d, want 10", len(got))
		}
		for _, m := range got {
			if aws.ToString(m.MessageAttributes["kind"].StringValue) != "test" {
				t.Errorf("message %s: attributes %v, want kind=test", aws.ToString(m.MessageId), m.MessageAttributes)
			}
		}
		if got := q.Depth(t); got != 10 {
			t.Errorf("depth with all in flight: got %d, want 10", got)
		}
		if again := receive(t, s, q, 10, 0); len(again) != 0 {
			t.Errorf("received %d in flight messages again, want 0", len(again))
		}
	})

	t.Run("change message visibility", func(t *testing.T) {
		q := s.CreateQueue(t, "visibility", 30*time.Second, nil, 0)
		send(t, s, q, "hello")
		first := receive(t, s, q, 1, 0)
		if len(first) != 1 {
			t.Fatalf("received %d, want 1", len(first))
		}
		// Made visible at once, it is received again, counted twice.
		if _, err := s.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.URL), ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatal(err)
		}
		second := receive(t, s, q, 1, 0)
		if len(second) != 1 || aws.ToString(second[0].MessageId) != aws.ToString(first[0].MessageId) {
			t.Fatalf("after visibility 0: received %v, want %s again", ids(second), aws.ToString(first[0].MessageId))
		}
		if got := second[0].Attributes["ApproximateReceiveCount"]; got != "2" {
			t.Errorf("ApproximateReceiveCount: got %q, want 2", got)
		}
		// Shortened to 1 s, it reappears after 1 s and not before.
		if _, err := s.Client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(q.URL), ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 1,
		}); err != nil {
			t.Fatal(err)
		}
		changed := time.Now()
		if early := receive(t, s, q, 1, 0); len(early) != 0 {
			t.Fatalf("received %v while invisible, want nothing", ids(early))
		}
		third := receive(t, s, q, 1, 3)
		if len(third) != 1 {
			t.Fatalf("received %d within 3 s of a 1 s visibility, want 1", len(third))
		}
		if waited := time.Since(changed); waited < 900*time.Millisecond {
			t.Errorf("reappeared after %v, want about 1 s", waited)
		}
		if got := third[0].Attributes["ApproximateReceiveCount"]; got != "3" {
			t.Errorf("ApproximateReceiveCount: got %q, want 3", got)
		}
	})

	t.Run("redrive policy", func(t *testing.T) {
		dlq := s.CreateQueue(t, "redrive-dlq", 30*time.Second, nil, 0)
		q := s.CreateQueue(t, "redrive", 0, dlq, 2)
		attrs, err := s.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(q.URL), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
		})
		if err != nil {
			t.Fatal(err)
		}
		var policy struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &policy); err != nil || policy.DeadLetterTargetArn != dlq.ARN {
			t.Errorf("RedrivePolicy %q (%v): want deadLetterTargetArn %s", attrs.Attributes["RedrivePolicy"], err, dlq.ARN)
		}
		id := send(t, s, q, "poison")
		// A visibility timeout of 0: never deleted, each receive sees it again.
		for n := 1; n <= 2; n++ {
			got := receive(t, s, q, 1, 0)
			if len(got) != 1 {
				t.Fatalf("receive %d: got %d messages, want 1", n, len(got))
			}
			if c := got[0].Attributes["ApproximateReceiveCount"]; c != strconv.Itoa(n) {
				t.Errorf("receive %d: ApproximateReceiveCount %q", n, c)
			}
		}
		if got := receive(t, s, q, 1, 0); len(got) != 0 {
			t.Fatalf("third receive: got %v, want nothing (moved to the DLQ)", ids(got))
		}
		if d, dd := q.Depth(t), dlq.Depth(t); d != 0 || dd != 1 {
			t.Fatalf("depths: queue %d, DLQ %d; want 0, 1", d, dd)
		}
		moved := receive(t, s, dlq, 1, 0)
		if len(moved) != 1 || aws.ToString(moved[0].MessageId) != id || aws.ToString(moved[0].Body) != "poison" {
			t.Fatalf("DLQ holds %v, want %s (poison)", ids(moved), id)
		}
		t.Logf("in the DLQ, ApproximateReceiveCount is %s", moved[0].Attributes["ApproximateReceiveCount"])
	})

	// Why Poll's long polls are short: after Stop, a message sent within
	// the wait is received for nobody and stays in flight.
	t.Run("an abandoned long poll still takes a message", func(t *testing.T) {
		q := s.CreateQueue(t, "abandoned", 30*time.Second, nil, 0)
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := s.Client.ReceiveMessage(pollCtx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 5})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("receive: got %v, want the context's deadline", err)
		}
		send(t, s, q, "lost")
		if got := receive(t, s, q, 1, 0); len(got) != 0 {
			t.Fatalf("received %v: fauxqs no longer completes an abandoned receive, and Poll could wait 20 s like Lambda", ids(got))
		}
		if got := q.Depth(t); got != 1 {
			t.Errorf("depth: got %d, want 1 (in flight)", got)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		q := s.CreateQueue(t, "roundtrip", 30*time.Second, nil, 0)
		const n = 20
		start := time.Now()
		for range n {
			send(t, s, q, "x")
			m := receive(t, s, q, 1, 0)
			if len(m) != 1 {
				t.Fatalf("received %d, want 1", len(m))
			}
			if _, err := s.Client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: m[0].ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("send + receive + delete: %v each", (time.Since(start) / n).Round(10*time.Microsecond))
	})
}

// fakeFunction stands in for a deliver function under the emulator: it
// decodes each event from JSON, as the function would, records it, and
// answers with respond.
type fakeFunction struct {
	respond func(events.SQSEvent) ([]byte, error)
	delay   time.Duration

	mu          sync.Mutex
	events      []events.SQSEvent
	inFlight    int
	maxInFlight int
}

func (f *fakeFunction) Call(event any) ([]byte, error) {
	b, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	var e events.SQSEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.events = append(f.events, e)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	time.Sleep(f.delay)
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	if f.respond == nil {
		return []byte("null"), nil
	}
	return f.respond(e)
}

func (f *fakeFunction) calls() []events.SQSEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

// receipts returns each body's ApproximateReceiveCounts, in the order the
// function saw them.
func (f *fakeFunction) receipts() map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string][]string{}
	for _, e := range f.events {
		for _, r := range e.Records {
			seen[r.Body] = append(seen[r.Body], r.Attributes["ApproximateReceiveCount"])
		}
	}
	return seen
}

// failFirst reports the records whose body starts with prefix as failed
// on their first receive.
func failFirst(prefix string) func(events.SQSEvent) ([]byte, error) {
	return func(e events.SQSEvent) ([]byte, error) {
		var res events.SQSEventResponse
		for _, r := range e.Records {
			if strings.HasPrefix(r.Body, prefix) && r.Attributes["ApproximateReceiveCount"] == "1" {
				res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return json.Marshal(res)
	}
}

func TestPoll(t *testing.T) {
	s := awstest.NewSQS(t)

	t.Run("the event is Lambda's", func(t *testing.T) {
		t.Parallel()
		q := s.CreateQueue(t, "event", 30*time.Second, nil, 0)
		fn := &fakeFunction{}
		p := awstest.Poll(t, q, fn, awstest.PollOptions{})
		sentAt := time.Now()
		_, err := s.Client.SendMessage(context.Background(), &sqs.SendMessageInput{
			QueueUrl: aws.String(q.URL), MessageBody: aws.String(`{"msg":"hi"}`),
			MessageAttributes: map[string]types.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("test")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		p.WaitIdle(t, 10*time.Second)
		calls := fn.calls()
		if len(calls) != 1 || len(calls[0].Records) != 1 {
			t.Fatalf("got events %+v, want one record", calls)
		}
		r := calls[0].Records[0]
		sum := md5.Sum([]byte(r.Body))
		for _, c := range []struct{ field, got, want string }{
			{"body", r.Body, `{"msg":"hi"}`},
			{"md5OfBody", r.Md5OfBody, hex.EncodeToString(sum[:])},
			{"eventSource", r.EventSource, "aws:sqs"},
			{"eventSourceARN", r.EventSourceARN, "arn:aws:sqs:us-east-1:000000000000:event"},
			{"awsRegion", r.AWSRegion, "us-east-1"},
			{"attributes.ApproximateReceiveCount", r.Attributes["ApproximateReceiveCount"], "1"},
			{"messageAttributes.kind.dataType", r.MessageAttributes["kind"].DataType, "String"},
			{"messageAttributes.kind.stringValue", aws.ToString(r.MessageAttributes["kind"].StringValue), "test"},
		} {
			if c.got != c.want {
				t.Errorf("%s: got %q, want %q", c.field, c.got, c.want)
			}
		}
		if r.MessageId == "" || r.ReceiptHandle == "" || r.Md5OfMessageAttributes == "" || r.Attributes["SenderId"] == "" {
			t.Errorf("messageId %q, receiptHandle %q, md5OfMessageAttributes %q, SenderId %q: want all set",
				r.MessageId, r.ReceiptHandle, r.Md5OfMessageAttributes, r.Attributes["SenderId"])
		}
		for _, name := range []string{"SentTimestamp", "ApproximateFirstReceiveTimestamp"} {
			ms, err := strconv.ParseInt(r.Attributes[name], 10, 64)
			if at := time.UnixMilli(ms); err != nil || at.Before(sentAt.Add(-time.Second)) || at.After(time.Now()) {
				t.Errorf("%s: %q, want milliseconds since the epoch around %v", name, r.Attributes[name], sentAt)
			}
		}
	})

	t.Run("failed records reappear after the visibility timeout, the others are deleted", func(t *testing.T) {
		t.Parallel()
		q := s.CreateQueue(t, "partial", time.Second, nil, 0)
		fn := &fakeFunction{respond: failFirst("fail")}
		p := awstest.Poll(t, q, fn, awstest.PollOptions{})
		sendBatch(t, s, q, "ok-1", "fail-2", "ok-3", "fail-4")
		p.WaitIdle(t, 10*time.Second)
		want := map[string][]string{"ok-1": {"1"}, "fail-2": {"1", "2"}, "ok-3": {"1"}, "fail-4": {"1", "2"}}
		if got := fn.receipts(); !equalReceipts(got, want) {
			t.Errorf("receive counts seen by the function: got %v, want %v", got, want)
		}
	})

	t.Run("a record failing maxReceive times ends in the DLQ", func(t *testing.T) {
		t.Parallel()
		dlq := s.CreateQueue(t, "poison-dlq", 30*time.Second, nil, 0)
		q := s.CreateQueue(t, "poison", time.Second, dlq, 2)
		fn := &fakeFunction{respond: func(e events.SQSEvent) ([]byte, error) {
			var res events.SQSEventResponse
			for _, r := range e.Records {
				if r.Body == "poison" {
					res.BatchItemFailures = append(res.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
			}
			return json.Marshal(res)
		}}
		p := awstest.Poll(t, q, fn, awstest.PollOptions{})
		sendBatch(t, s, q, "poison", "fine")
		p.WaitIdle(t, 10*time.Second)
		want := map[string][]string{"poison": {"1", "2"}, "fine": {"1"}}
		if got := fn.receipts(); !equalReceipts(got, want) {
			t.Errorf("receive counts seen by the function: got %v, want %v", got, want)
		}
		if got := dlq.Depth(t); got != 1 {
			t.Errorf("DLQ depth: got %d, want 1", got)
		}
	})

	// Results that fail or settle the whole first batch. The function
	// answers the first invocation with result (or err) and later ones
	// with null.
	for _, c := range []struct {
		name    string
		result  string
		err     error
		retried bool
	}{
		{name: "function error", err: errors.New("invoke deliver: 200 {\"errorType\":\"Boom\"}"), retried: true},
		{name: "invalid JSON", result: `not json`, retried: true},
		{name: "empty itemIdentifier", result: `{"batchItemFailures":[{"itemIdentifier":""}]}`, retried: true},
		{name: "wrong key", result: `{"batchItemFailures":[{"id":"x"}]}`, retried: true},
		{name: "unknown itemIdentifier", result: `{"batchItemFailures":[{"itemIdentifier":"not-in-batch"}]}`, retried: true},
		{name: "null", result: `null`},
		{name: "empty result", result: ``},
		{name: "empty object", result: `{}`},
		{name: "null failures", result: `{"batchItemFailures":null}`},
		{name: "no failures", result: `{"batchItemFailures":[]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q := s.CreateQueue(t, "whole-"+strings.ReplaceAll(c.name, " ", "-"), time.Second, nil, 0)
			var mu sync.Mutex
			first := true
			fn := &fakeFunction{respond: func(events.SQSEvent) ([]byte, error) {
				mu.Lock()
				defer mu.Unlock()
				if first {
					first = false
					return []byte(c.result), c.err
				}
				return []byte("null"), nil
			}}
			sendBatch(t, s, q, "a", "b", "c")
			// Sent before polling starts, so that all three make one batch.
			p := awstest.Poll(t, q, fn, awstest.PollOptions{})
			p.WaitIdle(t, 10*time.Second)
			want := map[string][]string{"a": {"1"}, "b": {"1"}, "c": {"1"}}
			if c.retried {
				want = map[string][]string{"a": {"1", "2"}, "b": {"1", "2"}, "c": {"1", "2"}}
			}
			if got := fn.receipts(); !equalReceipts(got, want) {
				t.Errorf("receive counts seen by the function: got %v, want %v", got, want)
			}
		})
	}

	t.Run("batch size and instances", func(t *testing.T) {
		t.Parallel()
		q := s.CreateQueue(t, "instances", 30*time.Second, nil, 0)
		a, b := &fakeFunction{delay: 100 * time.Millisecond}, &fakeFunction{delay: 100 * time.Millisecond}
		p := awstest.Poll(t, q, a, awstest.PollOptions{BatchSize: 2, Instances: []awstest.Invoker{b}})
		sendBatch(t, s, q, "1", "2", "3", "4", "5", "6", "7", "8")
		p.WaitIdle(t, 10*time.Second)
		if got := len(a.receipts()) + len(b.receipts()); got != 8 {
			t.Errorf("records handled: got %d, want 8", got)
		}
		for name, f := range map[string]*fakeFunction{"a": a, "b": b} {
			if f.maxInFlight > 1 {
				t.Errorf("instance %s ran %d invocations at once, want 1", name, f.maxInFlight)
			}
			for _, e := range f.calls() {
				if len(e.Records) > 2 {
					t.Errorf("instance %s got a batch of %d, want at most 2", name, len(e.Records))
				}
			}
		}
		na, nb := len(a.calls()), len(b.calls())
		if na == 0 || nb == 0 {
			t.Errorf("invocations: a %d, b %d; want both invoked", na, nb)
		}
		if got := p.Invocations(); got != na+nb {
			t.Errorf("Invocations: got %d, want %d", got, na+nb)
		}
	})
}

func equalReceipts(got, want map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			return false
		}
	}
	return true
}

func send(t *testing.T, s *awstest.SQS, q *awstest.Queue, body string) string {
	t.Helper()
	out, err := s.Client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.MessageId)
}

func sendBatch(t *testing.T, s *awstest.SQS, q *awstest.Queue, bodies ...string) {
	t.Helper()
	var entries []types.SendMessageBatchRequestEntry
	for i, b := range bodies {
		entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)})
	}
	out, err := s.Client.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Failed) != 0 {
		t.Fatalf("send batch: %d failed", len(out.Failed))
	}
}

func receive(t *testing.T, s *awstest.SQS, q *awstest.Queue, max, waitSeconds int32) []types.Message {
	t.Helper()
	out, err := s.Client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.URL), MaxNumberOfMessages: max, WaitTimeSeconds: waitSeconds,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func ids(msgs []types.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, aws.ToString(m.MessageId))
	}
	return out
}
