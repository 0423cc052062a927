// Package stack defines hookstep's AWS deployment as one CDK stack: the
// DynamoDB table, the three Lambda functions, the delivery state machine
// generated from the retry schedule, the API Gateway API (REST or HTTP)
// in front of the api function, the sweep every minute, the admin token
// secret and the alarms; and in queue dispatch mode the SQS queue that
// carries first attempts to the deliver function.
//
// Everything that decides behaviour lives in the root module's internal
// packages; this package only places it on AWS. The table layout comes
// from internal/dynamo and the Wait states from internal/webhook's
// Schedule, so neither is restated here.
package stack

import (
	"debug/elf"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Props configures the stack. The zero value of every field but
// StackProps means "use the default", so callers set only what they
// change.
type Props struct {
	awscdk.StackProps

	// Dispatch is how a new delivery reaches its first attempt. Default
	// DispatchStepFunctions: every delivery is an execution from the
	// start. DispatchQueue sends first attempts through an SQS queue to
	// the deliver function and starts an execution only for a delivery
	// that needs a retry.
	Dispatch Dispatch

	// QueueConcurrency is, in queue mode, the most deliver instances the
	// queue's event source mapping runs at once (its maximum
	// concurrency): 2 to 1,000, and at most DeliverConcurrency when that
	// is reserved. Default DefaultQueueConcurrency.
	QueueConcurrency int

	// QueueBatchSize is, in queue mode, how many messages one deliver
	// invocation gets from the queue: 1 to 10 (the most SQS allows
	// without a batching window, which would delay first attempts).
	// Default 10.
	QueueBatchSize int

	// API is the kind of API Gateway API in front of the api function.
	// Default APIRest, the one LocalStack Community has; APIHTTP costs
	// less per request.
	API APIKind

	// RetentionDays is how long a message's payload is kept when the
	// message names no retention of its own; TTL deletes it after. 1 to
	// 90 days. Default 30.
	RetentionDays int

	// Schedule is the retry schedule the state machine's Wait states
	// encode and the deliver function is told. Every wait must be a
	// whole number of seconds. Default webhook.DefaultSchedule.
	Schedule webhook.Schedule

	// HTTPTimeout is one delivery attempt's HTTP budget. The deliver
	// function's timeout is derived from it. Default 15 s.
	HTTPTimeout time.Duration

	// DisableAfter is how long an endpoint may fail before the sweeper
	// disables it. Default 7 days.
	DisableAfter time.Duration

	// SweepRate is how often the sweeper runs to disable failing
	// endpoints and re-drive what was not dispatched; a whole number of
	// minutes. Default 1 minute: the sweeper is the dispatcher, and a
	// delivery whose hand-off was lost waits for the next run.
	SweepRate time.Duration

	// APIConcurrency, DeliverConcurrency and SweeperConcurrency are the
	// functions' reserved concurrency: each function may run that many
	// instances at once, and the account keeps them for it. Nil means
	// the default (see DefaultAPIConcurrency and the others); 0 reserves
	// nothing, leaving the function on the account's unreserved pool,
	// which is what an account whose quota is below 100 needs: Lambda
	// refuses any reservation that leaves the account fewer than 100
	// unreserved. An unreserved sweeper is told the whole DispatchRate,
	// so that several instances at once can exceed it (Step Functions
	// then throttles them).
	APIConcurrency     *int
	DeliverConcurrency *int
	SweeperConcurrency *int

	// DispatchRate is how many StartExecution calls per second hookstep
	// may make in its account and region, all sweeper instances
	// together. Each instance is told its share (HOOKSTEP_DISPATCH_RATE,
	// a whole number): DispatchRate divided by SweeperConcurrency (1 if
	// unreserved), rounded down. Default 100.
	DispatchRate int

	// WarmThroughput pre-warms the table for a known peak. Zero values
	// leave it as DynamoDB sets it (on-demand only, no warm throughput
	// in the template).
	WarmThroughput WarmThroughput

	// Architecture is the instruction set of the built functions (`make
	// build ARCH=...`) and so of the Lambda functions. Default ARM64
	// (Graviton, the cheaper per GB-second).
	Architecture Architecture

	// LogRetention applies to every log group of the stack. Default one
	// month.
	LogRetention awslogs.RetentionDays

	// RemovalPolicy applies to the resources that hold data: the table,
	// the admin token secret and the log groups. Default RETAIN, so that
	// destroying the stack never deletes webhook history.
	RemovalPolicy awscdk.RemovalPolicy

	// ThrottleRate and ThrottleBurst bound the API stage's steady request
	// rate (per second) and burst (with an HTTP API, its default route
	// settings). Defaults 100 and 200.
	ThrottleRate  float64
	ThrottleBurst float64

	// DomainName and CertificateARN, set together, serve the API on a
	// custom domain with a regional ACM certificate. The DNS record is
	// left to the caller: point it at the CustomDomainTarget output.
	DomainName     string
	CertificateARN string

	// AlarmTopicARN, when set, is the SNS topic every alarm notifies.
	AlarmTopicARN string

	// PortalFrameAncestors are the origins (scheme://host[:port]) whose
	// pages may frame the customers' webhooks portal: the platform's own
	// dashboard. The api gets them as HOOKSTEP_PORTAL_FRAME_ANCESTORS.
	// Empty: the portal opens in its own tab or window only.
	PortalFrameAncestors []string
	// PortalName is what the portal calls itself to customers
	// (HOOKSTEP_PORTAL_NAME). Default "Webhooks".
	PortalName string

	// APIGatewayLogRoleExists says the account's API Gateway CloudWatch
	// role is already configured in this region. A REST API needs that
	// account-wide role to write access logs; by default the stack sets
	// it, which would overwrite a role another stack manages. An HTTP
	// API does not use it.
	APIGatewayLogRoleExists bool

	// AllowPrivateTargets lets endpoints use loopback and private
	// addresses, and AllowHTTP plain-http URLs. Both are off in a real
	// deployment (the SSRF guard and https only); LocalStack's e2e run
	// turns them on because its receivers are on the developer's machine.
	AllowPrivateTargets bool
	AllowHTTP           bool

	// AssetDir holds the built functions, one directory per function
	// with its bootstrap binary (`make build`). Default "../build",
	// relative to infra/ where the CDK CLI runs the app.
	AssetDir string
}

// WarmThroughput is the read and write units per second the table can
// serve at once (DynamoDB's warm throughput). A new on-demand table
// starts at MinWarmReadUnits and MinWarmWriteUnits and DynamoDB raises
// them as traffic grows; setting them higher prepares the partitions for
// a peak ahead of time. DynamoDB only ever raises warm throughput:
// lowering a deployed value fails the stack update.
type WarmThroughput struct {
	ReadUnitsPerSecond  int
	WriteUnitsPerSecond int
}

// The warm throughput a new on-demand table starts with: asking for less
// buys nothing.
const (
	MinWarmReadUnits  = 12000
	MinWarmWriteUnits = 4000
)

// Dispatch is a way of dispatching deliveries, as the CDK context key
// dispatch spells it.
type Dispatch string

// The dispatch modes.
const (
	// DispatchStepFunctions starts an execution for every delivery; the
	// api and the sweeper start them.
	DispatchStepFunctions Dispatch = "stepfunctions"

	// DispatchQueue sends new deliveries to an SQS queue that the deliver
	// function consumes; the deliver function starts an execution only
	// when a first attempt fails.
	DispatchQueue Dispatch = "queue"
)

// APIKind is a kind of API Gateway API, as the CDK context key api
// spells it.
type APIKind string

// The API kinds.
const (
	// APIRest is an API Gateway REST API (v1), with the stage in the path.
	APIRest APIKind = "rest"

	// APIHTTP is an API Gateway HTTP API (v2) with a $default stage and
	// route: no stage in the path, and a lower price per request.
	APIHTTP APIKind = "http"
)

// Architecture is a Lambda instruction set, as the CDK context key
// architecture spells it.
type Architecture string

// The architectures Lambda runs.
const (
	ARM64  Architecture = "arm64"
	X86_64 Architecture = "x86_64"
)

// Defaults of Props, exported so the app and the tests can name them.
const (
	DefaultHTTPTimeout   = 15 * time.Second
	DefaultDisableAfter  = 7 * 24 * time.Hour
	DefaultSweepRate     = time.Minute
	DefaultThrottleRate  = 100
	DefaultThrottleBurst = 200
	DefaultAssetDir      = "../build"

	// DefaultAPIConcurrency keeps 100 instances for the api, so that a
	// storm of deliveries to hanging endpoints (each holding a deliver
	// instance for up to 40 s) cannot take the account's concurrency
	// from the API. The stage admits 100 requests a second and bursts of
	// 200 (DefaultThrottleRate, DefaultThrottleBurst); at the api's
	// usual tens of milliseconds, and even at half a second each, that
	// is at most 100 at once.
	DefaultAPIConcurrency = 100

	// DefaultDeliverConcurrency caps deliver at 300 instances, so that
	// retries against slow endpoints cannot starve the account's other
	// functions. At DefaultDispatchRate new deliveries a second, a
	// first attempt of about a second takes 100 instances; the rest is
	// headroom for retries and slow receivers. Beyond it, attempts wait
	// in the state machine's retry of Lambda.TooManyRequestsException.
	DefaultDeliverConcurrency = 300

	// DefaultSweeperConcurrency runs up to 5 sweeper instances: the
	// minute's sweep and the api's hand-offs of new deliveries
	// (asynchronous invocations). A hand-off that finds no free
	// instance waits in Lambda's retry queue (1 s, growing to 5 min),
	// so there are enough for a burst; each instance then starts
	// DispatchRate/5 executions a second (20 by default), so one
	// message fanned out to 50 endpoints is dispatched in 2.5 s.
	DefaultSweeperConcurrency = 5

	// DefaultDispatchRate is 100 StartExecution calls a second: below
	// the smallest regions' refill of 150 a second (300 in us-east-1,
	// us-west-2 and eu-west-1), leaving the rest to the account's other
	// users; and 100 new executions of about four state transitions each
	// stay well within those regions' 800 transitions a second.
	DefaultDispatchRate = 100

	// DefaultArchitecture is Graviton: the build's default (make build).
	DefaultArchitecture = ARM64

	// DefaultDispatch is today's dispatch: an execution per delivery.
	DefaultDispatch = DispatchStepFunctions

	// DefaultAPI is the REST API, which LocalStack Community also has, so
	// that one stack deploys to both.
	DefaultAPI = APIRest

	// DefaultQueueConcurrency lets the queue run up to 100 deliver
	// instances at once: a third of DefaultDeliverConcurrency, so that a
	// burst of first attempts leaves 200 instances to the executions'
	// retries, which the queue would otherwise throttle. With batches of
	// 10 attempted together, 100 instances make about 1,000 first
	// attempts a second at a second each: ten times the stepfunctions
	// mode's DefaultDispatchRate, and as many as the API's default
	// throttle admits with a fan-out of ten.
	DefaultQueueConcurrency = 100

	// DefaultQueueBatchSize is the most messages a batch may hold
	// without a batching window.
	DefaultQueueBatchSize = 10

	// DefaultRetentionDays keeps payloads a month, like the log groups.
	DefaultRetentionDays = 30
)

// Bounds of the queue and retention props: the event source mapping's
// maximum concurrency (SQS needs at least 2), an SQS batch without a
// batching window, and the retention hookstep offers.
const (
	minQueueConcurrency = 2
	maxQueueConcurrency = 1000
	maxQueueBatchSize   = 10
	maxRetentionDays    = 90
)

// maxSweepRate is the longest SweepRate: the sweeper re-drives what a lost
// hand-off left, and the dispatch backlog alarm looks at two sweeps in a
// row, which CloudWatch allows over at most 7 days.
const maxSweepRate = 24 * time.Hour

// UnreservedMinimum is the concurrency Lambda keeps unreserved in every
// account: reservations may take the account's quota minus this.
const UnreservedMinimum = 100

// Functions names the three Lambda functions; each is built to
// <AssetDir>/<name>/bootstrap.
var Functions = []string{"api", "deliver", "sweeper"}

// New adds hookstep's stack to scope. It reports bad props and missing
// function builds as an error instead of a synthesis failure deep in CDK.
func New(scope constructs.Construct, id string, props *Props) (awscdk.Stack, error) {
	p, err := props.withDefaults()
	if err != nil {
		return nil, err
	}
	for _, name := range Functions {
		if err := checkAsset(p.AssetDir, name, p.Architecture); err != nil {
			return nil, err
		}
	}

	st := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	h := &hookstep{stack: st, props: p}
	if err := h.addTable(); err != nil {
		return nil, err
	}
	h.addSecret()
	h.addFunctions()
	h.addStateMachine()
	if err := h.addQueue(); err != nil {
		return nil, err
	}
	h.addDispatch()
	h.addPermissions()
	h.addAPI()
	h.addSweep()
	h.addAlarms()
	h.addOutputs()
	return st, nil
}

// hookstep carries the constructs the parts of the stack wire together.
type hookstep struct {
	stack awscdk.Stack
	props Props
	res   resources
}

// withDefaults fills in the defaults and checks what CDK would only
// reject late, or not at all.
func (p *Props) withDefaults() (Props, error) {
	var out Props
	if p != nil {
		out = *p
	}
	out.Schedule = append(webhook.Schedule(nil), out.Schedule...)
	if len(out.Schedule) == 0 {
		out.Schedule = append(out.Schedule, webhook.DefaultSchedule...)
	}
	if out.HTTPTimeout == 0 {
		out.HTTPTimeout = DefaultHTTPTimeout
	}
	if out.DisableAfter == 0 {
		out.DisableAfter = DefaultDisableAfter
	}
	if out.SweepRate == 0 {
		out.SweepRate = DefaultSweepRate
	}
	if out.LogRetention == "" {
		out.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}
	if out.RemovalPolicy == "" {
		out.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	if out.ThrottleRate == 0 {
		out.ThrottleRate = DefaultThrottleRate
	}
	if out.ThrottleBurst == 0 {
		out.ThrottleBurst = DefaultThrottleBurst
	}
	if out.AssetDir == "" {
		out.AssetDir = DefaultAssetDir
	}
	for _, c := range []struct {
		dst **int
		def int
	}{
		{&out.APIConcurrency, DefaultAPIConcurrency},
		{&out.DeliverConcurrency, DefaultDeliverConcurrency},
		{&out.SweeperConcurrency, DefaultSweeperConcurrency},
	} {
		if *c.dst == nil {
			*c.dst = new(c.def)
		}
	}
	if out.DispatchRate == 0 {
		out.DispatchRate = DefaultDispatchRate
	}
	if out.Architecture == "" {
		out.Architecture = DefaultArchitecture
	}
	if out.Dispatch == "" {
		out.Dispatch = DefaultDispatch
	}
	if out.QueueConcurrency == 0 {
		out.QueueConcurrency = DefaultQueueConcurrency
	}
	if out.QueueBatchSize == 0 {
		out.QueueBatchSize = DefaultQueueBatchSize
	}
	if out.API == "" {
		out.API = DefaultAPI
	}
	if out.RetentionDays == 0 {
		out.RetentionDays = DefaultRetentionDays
	}

	var errs []error
	for i, d := range out.Schedule {
		if d < 0 || d%time.Second != 0 {
			errs = append(errs, fmt.Errorf("schedule[%d] = %s: a Wait state needs whole, non-negative seconds", i, d))
		}
	}
	if n := deliverBudgets(out.Dispatch); out.HTTPTimeout < time.Second || deliverTimeout(out.HTTPTimeout, out.Dispatch) > maxLambdaTimeout {
		errs = append(errs, fmt.Errorf("HTTPTimeout %s: want 1s..%s so the deliver function's timeout (%dx + %s) fits Lambda's %s",
			out.HTTPTimeout, (maxLambdaTimeout-deliverOverhead)/time.Duration(n), n, deliverOverhead, maxLambdaTimeout))
	}
	if out.DisableAfter < 0 {
		errs = append(errs, fmt.Errorf("DisableAfter %s is negative", out.DisableAfter))
	}
	if out.SweepRate < time.Minute || out.SweepRate%time.Minute != 0 {
		errs = append(errs, fmt.Errorf("SweepRate %s: an EventBridge rate needs whole minutes, at least 1", out.SweepRate))
	} else if out.SweepRate > maxSweepRate {
		errs = append(errs, fmt.Errorf("SweepRate %s: at most %s, or lost hand-offs wait too long and the backlog alarm cannot look back over two sweeps", out.SweepRate, maxSweepRate))
	}
	for _, c := range []struct {
		name string
		n    int
	}{
		{"APIConcurrency", *out.APIConcurrency}, {"DeliverConcurrency", *out.DeliverConcurrency}, {"SweeperConcurrency", *out.SweeperConcurrency},
	} {
		if c.n < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative (0 reserves nothing)", c.name, c.n))
		}
	}
	if out.DispatchRate < 0 {
		errs = append(errs, fmt.Errorf("DispatchRate %d is negative", out.DispatchRate))
	} else if *out.SweeperConcurrency > 0 && out.DispatchRate < *out.SweeperConcurrency {
		errs = append(errs, fmt.Errorf("DispatchRate %d is less than SweeperConcurrency %d: an instance would get no start a second", out.DispatchRate, *out.SweeperConcurrency))
	}
	if w := out.WarmThroughput; w.ReadUnitsPerSecond != 0 && w.ReadUnitsPerSecond < MinWarmReadUnits {
		errs = append(errs, fmt.Errorf("WarmThroughput.ReadUnitsPerSecond %d: a new on-demand table already starts at %d", w.ReadUnitsPerSecond, MinWarmReadUnits))
	}
	if w := out.WarmThroughput; w.WriteUnitsPerSecond != 0 && w.WriteUnitsPerSecond < MinWarmWriteUnits {
		errs = append(errs, fmt.Errorf("WarmThroughput.WriteUnitsPerSecond %d: a new on-demand table already starts at %d", w.WriteUnitsPerSecond, MinWarmWriteUnits))
	}
	if out.Architecture != ARM64 && out.Architecture != X86_64 {
		errs = append(errs, fmt.Errorf("Architecture %q: want %s or %s", out.Architecture, ARM64, X86_64))
	}
	switch out.Dispatch {
	case DispatchStepFunctions:
	case DispatchQueue:
		if c := out.QueueConcurrency; c < minQueueConcurrency || c > maxQueueConcurrency {
			errs = append(errs, fmt.Errorf("QueueConcurrency %d: want %d..%d (the event source mapping's maximum concurrency)", c, minQueueConcurrency, maxQueueConcurrency))
		} else if d := *out.DeliverConcurrency; d > 0 && c > d {
			errs = append(errs, fmt.Errorf("QueueConcurrency %d is more than DeliverConcurrency %d: the queue would throttle its own function and the retries", c, d))
		}
		if b := out.QueueBatchSize; b < 1 || b > maxQueueBatchSize {
			errs = append(errs, fmt.Errorf("QueueBatchSize %d: want 1..%d (SQS without a batching window)", b, maxQueueBatchSize))
		}
	default:
		errs = append(errs, fmt.Errorf("Dispatch %q: want %s or %s", out.Dispatch, DispatchStepFunctions, DispatchQueue))
	}
	if out.API != APIRest && out.API != APIHTTP {
		errs = append(errs, fmt.Errorf("API %q: want %s or %s", out.API, APIRest, APIHTTP))
	}
	if out.RetentionDays < 1 || out.RetentionDays > maxRetentionDays {
		errs = append(errs, fmt.Errorf("RetentionDays %d: want 1..%d", out.RetentionDays, maxRetentionDays))
	}
	for _, o := range out.PortalFrameAncestors {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, fmt.Errorf("PortalFrameAncestors: %w", err))
		}
	}
	if (out.DomainName == "") != (out.CertificateARN == "") {
		errs = append(errs, errors.New("DomainName and CertificateARN go together: set both or neither"))
	}
	if err := errors.Join(errs...); err != nil {
		return Props{}, fmt.Errorf("stack props: %w", err)
	}
	return out, nil
}

// checkAsset reports a function that has not been built, or was built
// for another architecture than the stack declares (Lambda would only
// fail at the first invocation), naming the fix. A bootstrap that is not
// an ELF binary (StubBuild's) is not checked further.
func checkAsset(dir, name string, arch Architecture) error {
	path := filepath.Join(dir, name, "bootstrap")
	if !fileExists(path) {
		return fmt.Errorf("stack: %s not found: run `make build` first", path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	want := map[Architecture]elf.Machine{ARM64: elf.EM_AARCH64, X86_64: elf.EM_X86_64}[arch]
	if f.Machine != want {
		return fmt.Errorf("stack: %s is built for %s, the stack declares %s: build with the same ARCH (make build ARCH=...)", path, f.Machine, arch)
	}
	return nil
}

// seconds converts a Go duration to a CDK one.
func seconds(d time.Duration) awscdk.Duration {
	return awscdk.Duration_Seconds(jsii.Number(d.Seconds()))
}

// checkOrigin accepts an origin as CSP's frame-ancestors takes it:
// https://host[:port] (http only for localhost, for trying it out).
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		!(u.Scheme == "https" || u.Scheme == "http" && u.Hostname() == "localhost") {
		return fmt.Errorf("%q is not an origin (https://host[:port])", o)
	}
	return nil
}
