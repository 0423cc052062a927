package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/hookstep/hookstep/internal/api"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/lambdafn"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/sqs"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Mode is a dispatch mode of the AWS deployment (HOOKSTEP_DISPATCH).
type Mode string

// The dispatch modes.
const (
	// ModeStepFunctions starts an execution per delivery.
	ModeStepFunctions Mode = lambdafn.DispatchStepFunctions
	// ModeQueue sends each delivery to SQS; the deliver function makes
	// the first attempt and the immediate retry, and starts an execution
	// only for a delivery that needs a later retry.
	ModeQueue Mode = lambdafn.DispatchQueue
)

// Modes are the dispatch modes, in the order the report shows them.
var Modes = []Mode{ModeStepFunctions, ModeQueue}

const (
	benchTable = "hookstep"
	benchToken = "hsk_bench-token"
	secretARN  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hookstep-admin-token"
	machineARN = "arn:aws:states:us-east-1:123456789012:stateMachine:hookstep-delivery"
	queueURL   = "https://sqs.us-east-1.amazonaws.com/123456789012/hookstep-deliveries"
)

// benchClock is the wall clock moved forward by an offset, so that a
// delivery's retries can be made at once instead of after the schedule's
// hours: the store, the delivery engine and the API share it.
type benchClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *benchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

// advanceTo moves the clock to t, if t is ahead of it.
func (c *benchClock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := time.Until(t) - c.offset; d > 0 {
		c.offset += d
	}
}

// reset puts the clock back on the wall clock.
func (c *benchClock) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = 0
}

// sentRun is a run the in-process API dispatched, and in queue mode the
// SQS message body it was sent as.
type sentRun struct {
	Ref  webhook.Ref
	Body string
}

// recorder stands in for Step Functions and SQS in process: it takes
// every run it is handed and counts the calls.
type recorder struct {
	mu          sync.Mutex
	runs        []sentRun
	sendBatches int // SendMessageBatch calls (queue mode's api)
	retries     int // executions started for retries (queue mode's deliver)
}

var _ webhook.Dispatcher = (*recorder)(nil)

// Dispatch takes the runs as Step Functions would (stepfunctions mode).
func (r *recorder) Dispatch(_ context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ref := range refs {
		r.runs = append(r.runs, sentRun{Ref: ref})
	}
	return refs, nil
}

// sendMessageBatch is SQS's SendMessageBatch for queue mode's real
// dispatcher (internal/sqs): it keeps each message's run and body.
func (r *recorder) sendMessageBatch(_ context.Context, in *awssqs.SendMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sendBatches++
	out := &awssqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		ref, err := sqs.DecodeRun(aws.ToString(e.MessageBody))
		if err != nil {
			return nil, err
		}
		r.runs = append(r.runs, sentRun{Ref: ref, Body: aws.ToString(e.MessageBody)})
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(webhook.NewID("sqs_"))})
	}
	return out, nil
}

// startRetries is queue mode's Retries: the execution deliver starts for
// a run that needs a later retry.
func (r *recorder) startRetries(context.Context, webhook.Ref) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries++
	return nil
}

// counts returns the runs taken so far, the SendMessageBatch calls and
// the retries' executions.
func (r *recorder) counts() (runs, sendBatches, retries int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs), r.sendBatches, r.retries
}

func (r *recorder) since(from int) []sentRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sentRun(nil), r.runs[from:]...)
}

// modeFixture is one dispatch mode's delivery engine and API in process.
type modeFixture struct {
	svc *delivery.Service
	api http.Handler
}

// awsFixture is hookstep's AWS side on this machine: dynalite with the
// table, fakes of Step Functions (StartExecution), SQS (SendMessageBatch,
// ChangeMessageVisibility) and Secrets Manager (GetSecretValue) for the
// functions under the emulator, receivers (healthy, failing, recovering),
// and in process, per dispatch
// mode, the API and the delivery engine on a metered DynamoDB client.
type awsFixture struct {
	dynalite *awstest.Process
	dbURL    string
	capacity *dynamo.CapacityMeter // the table's units, as dynalite reports them
	meter    *indexMeter           // the indexes' units, which it does not
	store    *dynamo.Store
	clock    *benchClock
	rec      *recorder
	modes    map[Mode]*modeFixture
	// ok answers 200, fail 500, recovering 500 to the first two
	// requests per message, then 200.
	ok, fail, recovering *receiver
	fakes                *httptest.Server

	mu    sync.Mutex
	calls map[string]int // requests the fakes answered, by X-Amz-Target
	sent  int            // messages in those SendMessageBatch calls
}

func newAWSFixture(ctx context.Context, opts AWSOptions) (*awsFixture, error) {
	f := &awsFixture{clock: &benchClock{}, rec: &recorder{}, modes: map[Mode]*modeFixture{}, calls: map[string]int{}}
	var err error
	if f.dynalite, f.dbURL, err = awstest.StartDynalite(opts.Dynalite, io.Discard); err != nil {
		return nil, fmt.Errorf("dynalite: %w", err)
	}
	clientOpts := dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench", ""),
	}
	plain := dynamodb.New(clientOpts)
	if err := dynamo.CreateTable(ctx, plain, benchTable); err != nil {
		f.close()
		return nil, err
	}
	f.meter = newIndexMeter(plain, dynamo.TableSchema(benchTable))
	f.meter.now = f.clock.Now
	f.capacity = &dynamo.CapacityMeter{}
	clientOpts.APIOptions = append(clientOpts.APIOptions, f.meter.middleware, f.capacity.Install)
	f.store = dynamo.New(dynamodb.New(clientOpts), benchTable, f.clock)

	for _, r := range []struct {
		recv **receiver
		b    Behaviour
	}{{&f.ok, Healthy}, {&f.fail, Failing}, {&f.recovering, Recovering}} {
		if *r.recv, err = startReceiver(r.b, 1024); err != nil {
			f.close()
			return nil, err
		}
	}
	f.fakes = httptest.NewServer(http.HandlerFunc(f.serveFake))

	logger := slog.New(slog.DiscardHandler)
	snd := sender.New(sender.Config{Timeout: 5 * time.Second, AllowPrivate: true})
	for _, m := range Modes {
		// The api function's dispatcher (lambdafn.FirstThen, a
		// delivery.Early: runs dispatched before the message is stored
		// need no delivery item until their first attempt).
		svc := &delivery.Service{
			Store: f.store, Dispatcher: lambdafn.FirstThen(f.rec, f.rec), Sender: snd,
			Schedule: webhook.DefaultSchedule, Clock: f.clock, Logger: logger,
		}
		if m == ModeQueue {
			// In queue mode on a fake SendMessageBatch; deliver's
			// retries start an execution.
			svc.Dispatcher = lambdafn.FirstThen(sqs.New(f.rec.sendMessageBatch, sqs.Config{QueueURL: queueURL}), f.rec)
			svc.Retries = f.rec.startRetries
		}
		f.modes[m] = &modeFixture{svc: svc, api: api.New(api.Config{
			Store: f.store, Deliveries: svc, Clock: f.clock, TokenHash: authtoken.Hash(benchToken), Logger: logger,
			AllowPrivateTargets: true,
		})}
	}
	return f, nil
}

func (f *awsFixture) close() {
	if f.fakes != nil {
		f.fakes.Close()
	}
	for _, r := range []*receiver{f.ok, f.fail, f.recovering} {
		if r != nil {
			r.close()
		}
	}
	if f.dynalite != nil {
		f.dynalite.Stop()
	}
}

// The requests the fakes answer, by X-Amz-Target.
const (
	targetStartExecution   = "AWSStepFunctions.StartExecution"
	targetSendMessageBatch = "AmazonSQS.SendMessageBatch"
	targetChangeVisibility = "AmazonSQS.ChangeMessageVisibility"
	targetGetSecretValue   = "secretsmanager.GetSecretValue"
)

// serveFake answers Step Functions' StartExecution, SQS's
// SendMessageBatch and ChangeMessageVisibility, and Secrets Manager's
// GetSecretValue, told apart by X-Amz-Target, and counts them.
func (f *awsFixture) serveFake(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	target := r.Header.Get("X-Amz-Target")
	f.mu.Lock()
	f.calls[target]++
	f.mu.Unlock()
	switch target {
	case targetStartExecution:
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		fmt.Fprintf(w, `{"executionArn":"%s:exec","startDate":%d}`, machineARN, time.Now().Unix())
	case targetSendMessageBatch:
		var in struct {
			Entries []struct{ Id, MessageBody string }
		}
		if err := json.Unmarshal(body, &in); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		type ok struct{ Id, MessageId, MD5OfMessageBody string }
		var out struct{ Successful []ok }
		for _, e := range in.Entries {
			sum := md5.Sum([]byte(e.MessageBody)) // the SDK checks it
			out.Successful = append(out.Successful, ok{Id: e.Id, MessageId: webhook.NewID("sqs_"), MD5OfMessageBody: hex.EncodeToString(sum[:])})
		}
		f.mu.Lock()
		f.sent += len(in.Entries)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		json.NewEncoder(w).Encode(out)
	case targetChangeVisibility:
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, "{}")
	case targetGetSecretValue:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{"ARN": secretARN, "Name": "hookstep-admin-token", "SecretString": benchToken})
	default:
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"UnknownOperationException"}`)
	}
}

// callCount is how many requests with the X-Amz-Target the fakes have
// answered.
func (f *awsFixture) callCount(target string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[target]
}

// functionEnv is the environment a function gets under the emulator in a
// dispatch mode, as the stack sets it, with the endpoints pointing at
// this machine.
func (f *awsFixture) functionEnv(name string, mode Mode) []string {
	return []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDBENCH", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_ENDPOINT_URL_DYNAMODB=" + f.dbURL,
		"AWS_ENDPOINT_URL_SFN=" + f.fakes.URL,
		"AWS_ENDPOINT_URL_SQS=" + f.fakes.URL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + f.fakes.URL,
		// The api starts a message's first 25 runs itself (sends its
		// first 1,000 in queue mode): at the fan-outs measured here it
		// hands nothing to the sweeper.
		"AWS_ENDPOINT_URL_LAMBDA=" + f.fakes.URL,
		"HOOKSTEP_DISPATCH=" + string(mode),
		"HOOKSTEP_TABLE=" + benchTable, "HOOKSTEP_STATE_MACHINE_ARN=" + machineARN,
		"HOOKSTEP_DISPATCH_QUEUE_URL=" + queueURL,
		"HOOKSTEP_DISPATCH_FUNCTION=hookstep-sweeper",
		"HOOKSTEP_ADMIN_TOKEN_SECRET_ARN=" + secretARN,
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS=true", "HOOKSTEP_REQUIRE_HTTPS=false", "HOOKSTEP_HTTP_TIMEOUT=5s",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", functionMemoryMB[name]),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60", "AWS_LAMBDA_FUNCTION_NAME=hookstep-" + name,
	}
}

// idempotencyKey is a new Idempotency-Key as the Svix SDKs send with every
// POST: "auto_" and a random UUID.
func idempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return "auto_" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// call sends one API request to a mode's in-process API, a POST with an
// Idempotency-Key, as the SDKs send it.
func (f *awsFixture) call(mode Mode, method, path string, body any, want int, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+benchToken)
	req.Header.Set("Content-Type", "application/json")
	if method == http.MethodPost {
		req.Header.Set("Idempotency-Key", idempotencyKey())
	}
	rec := httptest.NewRecorder()
	f.modes[mode].api.ServeHTTP(rec, req)
	if rec.Code != want {
		return fmt.Errorf("%s %s: %d %s", method, path, rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
	}
	if out != nil {
		return json.Unmarshal(rec.Body.Bytes(), out)
	}
	return nil
}

// app creates an app with one endpoint per URL and returns the app's id.
func (f *awsFixture) app(name string, urls ...string) (string, error) {
	var app struct{ ID string }
	if err := f.call(ModeStepFunctions, "POST", "/api/v1/app", map[string]any{"name": name}, http.StatusCreated, &app); err != nil {
		return "", err
	}
	for _, u := range urls {
		if err := f.call(ModeStepFunctions, "POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": u}, http.StatusCreated, nil); err != nil {
			return "", err
		}
	}
	return app.ID, nil
}

// message posts a message (~1 KiB payload, like the local runs) through
// a mode's API.
func (f *awsFixture) message(mode Mode, appID string, seq int) error {
	return f.call(mode, "POST", "/api/v1/app/"+appID+"/msg?with_content=false", json.RawMessage(messageBody(seq, 1024)), http.StatusAccepted, nil)
}

// messages posts n messages to the app through a mode's API and returns
// the runs they dispatched.
func (f *awsFixture) messages(mode Mode, appID string, n int) ([]sentRun, error) {
	from, _, _ := f.rec.counts()
	for i := range n {
		if err := f.message(mode, appID, i); err != nil {
			return nil, err
		}
	}
	return f.rec.since(from), nil
}

// Units is DynamoDB capacity, and what else one operation sent.
type Units struct {
	ReadUnits       float64 `json:"readUnits"`
	TableWriteUnits float64 `json:"tableWriteUnits"`
	IndexWriteUnits float64 `json:"indexWriteUnits"`
	// StoredBytes is the net change in stored bytes (items and index
	// entries, with DynamoDB's 100 bytes each): RetainedBytes expire
	// with the message (its retention), ShortLivedByteDays are bytes
	// times days of items that expire sooner (idempotency records).
	StoredBytes        float64 `json:"storedBytes"`
	RetainedBytes      float64 `json:"retainedBytes"`
	ShortLivedByteDays float64 `json:"shortLivedByteDays"`
	// Partitions are the index write units by index partition class
	// (partitionClass), for the partition limits.
	Partitions map[string]float64 `json:"indexWriteUnitsByPartition,omitempty"`
	Requests   map[string]int     `json:"requests"`
}

// WriteUnits is table and index write units together.
func (u Units) WriteUnits() float64 { return u.TableWriteUnits + u.IndexWriteUnits }

// scaled is u times k, without the requests.
func (u Units) scaled(k float64) Units {
	return Units{}.plusScaled(u, k)
}

// plusScaled is u plus k times o, without the requests.
func (u Units) plusScaled(o Units, k float64) Units {
	out := Units{
		ReadUnits:          u.ReadUnits + k*o.ReadUnits,
		TableWriteUnits:    u.TableWriteUnits + k*o.TableWriteUnits,
		IndexWriteUnits:    u.IndexWriteUnits + k*o.IndexWriteUnits,
		StoredBytes:        u.StoredBytes + k*o.StoredBytes,
		RetainedBytes:      u.RetainedBytes + k*o.RetainedBytes,
		ShortLivedByteDays: u.ShortLivedByteDays + k*o.ShortLivedByteDays,
		Partitions:         map[string]float64{},
	}
	for p, v := range u.Partitions {
		out.Partitions[p] += v
	}
	for p, v := range o.Partitions {
		out.Partitions[p] += k * v
	}
	return out
}

// measure runs fn and returns the DynamoDB capacity it consumed.
func (f *awsFixture) measure(fn func() error) (Units, error) {
	c0, m0 := f.capacity.Consumed(), f.meter.read()
	if err := fn(); err != nil {
		return Units{}, err
	}
	c1, m1 := f.capacity.Consumed(), f.meter.read()
	u := Units{
		ReadUnits:          c1.ReadUnits - c0.ReadUnits,
		TableWriteUnits:    c1.WriteUnits - c0.WriteUnits,
		IndexWriteUnits:    m1.IndexWriteUnits - m0.IndexWriteUnits,
		StoredBytes:        m1.StoredBytes - m0.StoredBytes,
		RetainedBytes:      m1.RetainedBytes - m0.RetainedBytes,
		ShortLivedByteDays: m1.ShortLivedByteDays - m0.ShortLivedByteDays,
		Partitions:         map[string]float64{},
		Requests:           map[string]int{},
	}
	for p, v := range m1.Partitions {
		if d := v - m0.Partitions[p]; d > 0 {
			u.Partitions[p] = d
		}
	}
	for op, n := range m1.Calls {
		if d := n - m0.Calls[op]; d > 0 {
			u.Requests[op] = d
		}
	}
	return u, nil
}

// sqsRecords is an SQS event of the runs, shaped like
// events/lambda/deliver-sqs.json, as the event source mapping hands it
// to deliver.
func sqsRecords(runs []sentRun) map[string]any {
	recs := make([]map[string]any, len(runs))
	for i, r := range runs {
		recs[i] = map[string]any{
			"messageId": webhook.NewID("sqs_"), "receiptHandle": "AQEBbench" + strconv.Itoa(i), "body": r.Body,
			"attributes": map[string]string{
				"ApproximateReceiveCount": "1", "SentTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
				"SenderId": "AROAEXAMPLE:hookstep-api", "ApproximateFirstReceiveTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
			},
			"messageAttributes": map[string]any{}, "eventSource": "aws:sqs",
			"eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hookstep-deliveries", "awsRegion": "us-east-1",
		}
	}
	return map[string]any{"Records": recs}
}
