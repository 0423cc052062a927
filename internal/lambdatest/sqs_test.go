package lambdatest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookstep/hookstep/internal/lambdatest"
)

// The stand-in's behaviour the poller and the queue mode rely on, through
// the same SDK the functions use (which checks every MD5 fauxqs returns).
func TestFauxqs(t *testing.T) {
	start := time.Now()
	s := lambdatest.NewSQS(t)
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

func send(t *testing.T, s *lambdatest.SQS, q *lambdatest.Queue, body string) string {
	t.Helper()
	out, err := s.Client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.MessageId)
}

func receive(t *testing.T, s *lambdatest.SQS, q *lambdatest.Queue, max, waitSeconds int32) []types.Message {
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
