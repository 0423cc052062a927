package awstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQS is an in-memory SQS API on 127.0.0.1: fauxqs (infra/node_modules),
// which speaks the JSON protocol of current aws-sdk-go-v2, started by
// infra/sqslocal/serve.mjs under the pinned Node 22 (fauxqs's own CLI
// would listen on every interface).
type SQS struct {
	// URL is the endpoint, for a client's BaseEndpoint or a function's
	// AWS_ENDPOINT_URL_SQS.
	URL string
	// Client is a client of it: region us-east-1, static credentials.
	Client *sqs.Client
}

// NewSQS starts fauxqs, waits until it listens, and stops it when the test
// ends. Without Node 22 or fauxqs in infra/node_modules the test fails or
// skips as RequireTool says.
func NewSQS(t testing.TB) *SQS {
	t.Helper()
	infra := filepath.Join(Root(t), "infra")
	node := RequireTool(t, "Node 22", filepath.Join(infra, "node_modules", ".bin", "node"))
	RequireTool(t, "fauxqs", filepath.Join(infra, "node_modules", "fauxqs", "package.json"))
	addr := FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	// fauxqs imports node:sqlite (for its optional persistence), which
	// Node 22 announces on stderr as experimental on every start.
	Start(t, nil, addr, node, "--disable-warning=ExperimentalWarning", filepath.Join(infra, "sqslocal", "serve.mjs"), port)
	s := &SQS{URL: "http://" + addr}
	s.Client = sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	return s
}

// Queue is a standard queue of an SQS.
type Queue struct {
	Name string
	URL  string // for QueueUrl; calls still go to SQS.URL
	ARN  string // for a redrive policy and the events' eventSourceARN

	sqs *SQS
}

// CreateQueue creates the queue name with a visibility timeout (whole
// seconds, as SQS counts it). When dlq is not nil, its redrive policy sends
// a message to dlq once it has been received maxReceive times without being
// deleted.
func (s *SQS) CreateQueue(t testing.TB, name string, visibilityTimeout time.Duration, dlq *Queue, maxReceive int) *Queue {
	t.Helper()
	if visibilityTimeout < 0 || visibilityTimeout%time.Second != 0 {
		t.Fatalf("awstest: queue %s: visibility timeout %v: want whole seconds", name, visibilityTimeout)
	}
	attrs := map[string]string{"VisibilityTimeout": strconv.Itoa(int(visibilityTimeout / time.Second))}
	if dlq != nil {
		if maxReceive < 1 {
			t.Fatalf("awstest: queue %s: maxReceive %d: want at least 1", name, maxReceive)
		}
		policy, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlq.ARN, "maxReceiveCount": maxReceive})
		attrs["RedrivePolicy"] = string(policy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("awstest: create queue %s: %v", name, err)
	}
	q := &Queue{Name: name, URL: aws.ToString(out.QueueUrl), sqs: s}
	a, err := s.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("awstest: queue %s: arn: %v", name, err)
	}
	q.ARN = a.Attributes[string(types.QueueAttributeNameQueueArn)]
	return q
}

// Depth returns how many messages the queue holds: visible, in flight
// (received, not yet deleted) and delayed. It is 0 only when every message
// sent has been deleted or moved to the dead-letter queue.
func (q *Queue) Depth(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counts := []types.QueueAttributeName{
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	out, err := q.sqs.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL), AttributeNames: counts})
	if err != nil {
		t.Fatalf("awstest: queue %s: depth: %v", q.Name, err)
	}
	total := 0
	for _, name := range counts {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			t.Fatalf("awstest: queue %s: %s %q: %v", q.Name, name, out.Attributes[string(name)], err)
		}
		total += n
	}
	return total
}

// Invoker runs one invocation of a function and returns its result, or a
// function error. *Function is one; tests of the poller use fakes.
type Invoker interface {
	Call(event any) ([]byte, error)
}

var _ Invoker = (*Function)(nil)

// PollOptions are the event source mapping's settings.
type PollOptions struct {
	// BatchSize is the most records per invocation, 1 to 10; 0 means 10,
	// Lambda's default for SQS. (Lambda's larger batches need a batching
	// window, which is not played.)
	BatchSize int
	// Instances are more instances of the function, each polled by its own
	// goroutine, so that 1+len(Instances) batches can be in flight at once.
	Instances []Invoker
}

// Poller is the harness's event source mapping from a queue to a function.
type Poller struct {
	queue       *Queue
	cancel      context.CancelFunc
	done        sync.WaitGroup
	stopOnce    sync.Once
	busy        atomic.Int32
	invocations atomic.Int64
}

// Poll plays Lambda's SQS event source mapping, with ReportBatchItemFailures
// on, from queue to fn (and opts.Instances) until Stop or the end of the
// test. A goroutine per instance, in a loop:
//
//   - long-polls ReceiveMessage for up to opts.BatchSize messages, with every
//     system and message attribute;
//   - invokes the instance with the events.SQSEvent Lambda would build
//     (messageId, receiptHandle, body, attributes, messageAttributes,
//     md5OfBody, md5OfMessageAttributes, eventSource "aws:sqs",
//     eventSourceARN, awsRegion), and waits for its result: one invocation
//     at a time, as one emulator runs them;
//   - reads the result as an events.SQSEventResponse and deletes every
//     record but the batchItemFailures. A function error, a result that is
//     not such JSON, or an itemIdentifier that is empty or not in the batch
//     fails the whole batch, as Lambda's documentation says; null, {} and
//     an empty or null batchItemFailures delete them all.
//
// Records not deleted are left alone: they reappear after the queue's
// visibility timeout with ApproximateReceiveCount one higher, and the
// queue's redrive policy (which fauxqs applies on the receive after the
// maxReceiveCount-th) moves them to the dead-letter queue.
//
// Unlike Lambda, the long poll waits 1 s rather than 20 s: a receive still
// returns as soon as messages arrive, and fauxqs carries on with a receive
// whose client has gone, taking a message that arrives meanwhile out of
// sight for a visibility timeout; after Stop that window stays short.
func Poll(t testing.TB, queue *Queue, fn Invoker, opts PollOptions) *Poller {
	t.Helper()
	batch := opts.BatchSize
	if batch == 0 {
		batch = 10
	}
	if batch < 1 || batch > 10 {
		t.Fatalf("awstest: poll %s: batch size %d: want 1 to 10", queue.Name, opts.BatchSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Poller{queue: queue, cancel: cancel}
	for _, f := range append([]Invoker{fn}, opts.Instances...) {
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			p.run(ctx, t, f, int32(batch))
		}()
	}
	t.Cleanup(p.Stop)
	return p
}

// Stop stops polling and waits for the batches in flight to finish.
func (p *Poller) Stop() {
	p.stopOnce.Do(func() {
		p.cancel()
		p.done.Wait()
	})
}

// Invocations returns how many times the function has been invoked.
func (p *Poller) Invocations() int { return int(p.invocations.Load()) }

// WaitIdle waits until the queue is empty (Depth 0: every message deleted
// or moved to the dead-letter queue) and no batch is in flight, and fails
// the test after timeout. Records that failed count until they succeed or
// reach the dead-letter queue, so allow for their visibility timeouts.
func (p *Poller) WaitIdle(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		depth := p.queue.Depth(t)
		busy := p.busy.Load()
		if depth == 0 && busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("awstest: queue %s not idle after %v: depth %d, %d batches in flight", p.queue.Name, timeout, depth, busy)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Poller) run(ctx context.Context, t testing.TB, fn Invoker, batch int32) {
	client := p.queue.sqs.Client
	for ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, p.queue.receiveInput(batch, 1))
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.Errorf("awstest: poll %s: receive: %v", p.queue.Name, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(out.Messages) == 0 {
			continue
		}
		p.busy.Add(1)
		p.handle(t, fn, out.Messages)
		p.busy.Add(-1)
	}
}

// receiveInput is the receive the event source mapping makes: up to max
// messages, waiting up to wait seconds for the first, with every system
// and message attribute.
func (q *Queue) receiveInput(max, wait int32) *sqs.ReceiveMessageInput {
	return &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(q.URL),
		MaxNumberOfMessages:         max,
		WaitTimeSeconds:             wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	}
}

// Receive receives up to max messages (1 to 10) as the event source
// mapping does, waiting up to wait (whole seconds, at most 20) for the
// first, and returns the event Lambda would build of them, for a test
// that hands records to a function itself. It deletes nothing: a record
// comes back after the visibility timeout unless the test deletes it.
func (q *Queue) Receive(t testing.TB, max int, wait time.Duration) events.SQSEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	out, err := q.sqs.Client.ReceiveMessage(ctx, q.receiveInput(int32(max), int32(wait/time.Second)))
	if err != nil {
		t.Fatalf("awstest: queue %s: receive: %v", q.Name, err)
	}
	return sqsEvent(q.ARN, out.Messages)
}

// handle invokes fn with one batch and deletes what Lambda would delete.
func (p *Poller) handle(t testing.TB, fn Invoker, msgs []types.Message) {
	event := sqsEvent(p.queue.ARN, msgs)
	result, err := fn.Call(event)
	p.invocations.Add(1)
	keep, err := batchFailures(event, result, err)
	if err != nil {
		t.Logf("awstest: poll %s: batch of %d left on the queue: %v", p.queue.Name, len(msgs), err)
		return
	}
	var entries []types.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if !keep[aws.ToString(m.MessageId)] {
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(entries) == 0 {
		return
	}
	// Not the poll's context: a batch the function has handled is
	// settled even when the test is ending.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := p.queue.sqs.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.queue.URL), Entries: entries})
	if err != nil {
		t.Errorf("awstest: poll %s: delete: %v", p.queue.Name, err)
		return
	}
	for _, f := range out.Failed {
		t.Errorf("awstest: poll %s: delete entry %s: %s %s", p.queue.Name, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
	}
}

// sqsEvent builds the event Lambda's SQS poller sends for msgs received
// from the queue arn.
func sqsEvent(arn string, msgs []types.Message) events.SQSEvent {
	region := ""
	if parts := strings.Split(arn, ":"); len(parts) > 3 {
		region = parts[3] // arn:aws:sqs:REGION:ACCOUNT:NAME
	}
	event := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		r := events.SQSMessage{
			MessageId:              aws.ToString(m.MessageId),
			ReceiptHandle:          aws.ToString(m.ReceiptHandle),
			Body:                   aws.ToString(m.Body),
			Md5OfBody:              aws.ToString(m.MD5OfBody),
			Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			Attributes:             map[string]string{},
			MessageAttributes:      map[string]events.SQSMessageAttribute{},
			EventSourceARN:         arn,
			EventSource:            "aws:sqs",
			AWSRegion:              region,
		}
		for k, v := range m.Attributes {
			r.Attributes[k] = v
		}
		for k, v := range m.MessageAttributes {
			// Lambda sends the list fields as [] when empty, never null.
			r.MessageAttributes[k] = events.SQSMessageAttribute{
				DataType:         aws.ToString(v.DataType),
				StringValue:      v.StringValue,
				BinaryValue:      v.BinaryValue,
				StringListValues: append([]string{}, v.StringListValues...),
				BinaryListValues: append([][]byte{}, v.BinaryListValues...),
			}
		}
		event.Records = append(event.Records, r)
	}
	return event
}

// batchFailures returns the message IDs a function's result reports as
// failed, or an error when Lambda would count the whole batch as failed.
func batchFailures(event events.SQSEvent, result []byte, callErr error) (map[string]bool, error) {
	if callErr != nil {
		return nil, callErr
	}
	failed := map[string]bool{}
	if len(strings.TrimSpace(string(result))) == 0 {
		return failed, nil
	}
	var res events.SQSEventResponse
	if err := json.Unmarshal(result, &res); err != nil {
		return nil, fmt.Errorf("result %.200s is not a batch response: %w", result, err)
	}
	inBatch := map[string]bool{}
	for _, r := range event.Records {
		inBatch[r.MessageId] = true
	}
	for _, f := range res.BatchItemFailures {
		if f.ItemIdentifier == "" {
			return nil, errors.New("a batch item failure without an itemIdentifier")
		}
		if !inBatch[f.ItemIdentifier] {
			return nil, fmt.Errorf("batch item failure %q is not a messageId of the batch", f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	return failed, nil
}
