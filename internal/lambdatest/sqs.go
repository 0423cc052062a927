package lambdatest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	proc := Start(t, nil, node, "--disable-warning=ExperimentalWarning", filepath.Join(infra, "sqslocal", "serve.mjs"), port)
	WaitListening(t, addr, proc)
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
		t.Fatalf("lambdatest: queue %s: visibility timeout %v: want whole seconds", name, visibilityTimeout)
	}
	attrs := map[string]string{"VisibilityTimeout": strconv.Itoa(int(visibilityTimeout / time.Second))}
	if dlq != nil {
		if maxReceive < 1 {
			t.Fatalf("lambdatest: queue %s: maxReceive %d: want at least 1", name, maxReceive)
		}
		policy, _ := json.Marshal(map[string]any{"deadLetterTargetArn": dlq.ARN, "maxReceiveCount": maxReceive})
		attrs["RedrivePolicy"] = string(policy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.Client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("lambdatest: create queue %s: %v", name, err)
	}
	q := &Queue{Name: name, URL: aws.ToString(out.QueueUrl), sqs: s}
	a, err := s.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("lambdatest: queue %s: arn: %v", name, err)
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
		t.Fatalf("lambdatest: queue %s: depth: %v", q.Name, err)
	}
	total := 0
	for _, name := range counts {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			t.Fatalf("lambdatest: queue %s: %s %q: %v", q.Name, name, out.Attributes[string(name)], err)
		}
		total += n
	}
	return total
}
