package lambdafn

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sqs"
	"github.com/hookstep/hookstep/internal/sweeper"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Services are what the functions are made of, built once per cold start
// from the configuration and the AWS SDK configuration (endpoints come from
// the SDK's own settings, e.g. AWS_ENDPOINT_URL, so tests and LocalStack
// need no special code).
type Services struct {
	Config   Config
	AWS      aws.Config
	Logger   *slog.Logger
	Metrics  io.Writer // CloudWatch Embedded Metric Format lines: stdout
	Clock    webhook.Clock
	Store    *dynamo.Store
	Delivery *delivery.Service
	Sweeper  *sweeper.Sweeper
	// Operational publishes the operational webhooks through Delivery.
	Operational *operational.Emitter
	// Later delays a queue record the deliver function could not handle
	// (queue mode's deliver function; nil otherwise).
	Later LaterFunc
	// Throttled sends a queue record whose attempt the endpoint's
	// throttle held back to the queue again, delayed (deliver, queue mode).
	Throttled ThrottledFunc
}

// Load reads fn's configuration from getenv and the AWS SDK configuration
// from the environment, and builds the services: the first half of every
// function's main. wire adds the function's own (WireAPI, WireDeliver,
// WireSweeper): each is its own func, not a branch of one, so that a
// function's binary links only the AWS operations its wiring names (a
// switch on the function would keep every branch's clients in every
// binary; make bench reports the sizes).
func Load(getenv func(string) string, fn Function, wire func(*Services)) (*Services, error) {
	cfg, err := LoadConfig(getenv, fn)
	if err != nil {
		return nil, err
	}
	awsCfg, err := AWSConfig(getenv)
	if err != nil {
		return nil, err
	}
	s := NewServices(cfg, awsCfg, os.Stdout)
	wire(s)
	return s, nil
}

// The api function's own dispatch: it starts up to inlineStarts of a
// message's runs itself, inlineConcurrency at a time, for at most
// inlineBudget, without waiting on a throttle; the rest, and any it could
// not start, go to the sweeper (HandOff). A client thus waits for a
// handful of StartExecution calls at most, whatever the fan-out. In queue
// mode it sends up to inlineQueued runs (SendMessageBatch has no
// throttle to speak of: 100 calls of ten in flight, 16 at a time, take
// well under a second) and hands the rest on the same way.
const (
	inlineStarts      = 25
	inlineConcurrency = 16
	inlineBudget      = 2 * time.Second
	inlineQueued      = 1000
)

// The sweeper's dispatch: throttled starts back off and try again for up
// to sweepDispatchBudget per batch; what is left waits for the next sweep.
const (
	sweepConcurrency    = 8
	sweepDispatchBudget = 30 * time.Second
)

// awaitCommit is how long after its id was made a message whose run is
// attempted may still be stored (delivery.Service.AwaitCommit): longer
// than the api function's timeout (28 s), with a KSUID's second.
const awaitCommit = time.Minute

// queueOwns is how long the sweeper leaves a queued run without an
// attempt to the delivery queue (sweeper.Sweeper.QueueOwns): far longer
// than a backlog the event source mapping drains, far shorter than the
// queue's retention (4 days).
const queueOwns = 6 * time.Hour

// NewServices builds what the three functions share: the store, the
// delivery service and the sweeper, without dispatch. The Wire functions
// add each function's own, by dispatch mode:
//
//	           stepfunctions                        queue
//	api        starts executions, hands the rest    sends runs to the queue, hands the rest
//	           of a fan-out to the sweeper          of a fan-out to the sweeper
//	deliver    (the state machine's steps)          also the queue's runs; starts an
//	                                                execution for a run that needs a retry
//	sweeper    starts executions within the rate;   sends runs to the queue; drains the
//	           checks overdue runs' executions      dead-letter queue; checks overdue runs
func NewServices(cfg Config, awsCfg aws.Config, logw io.Writer) *Services {
	logger := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: cfg.LogLevel}))
	clock := webhook.SystemClock{}
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Table, clock)
	svc := &delivery.Service{
		Store:        store,
		Sender:       sender.New(sender.Config{Timeout: cfg.HTTPTimeout, AllowPrivate: cfg.AllowPrivate, RequireHTTPS: cfg.RequireHTTPS}),
		Schedule:     cfg.Schedule,
		ReconcileFor: cfg.ReconcileFor,
		// The api dispatches a message's runs before it stores the
		// message (delivery.Early), for at most its timeout.
		AwaitCommit: awaitCommit,
		Clock:       clock,
		Logger:      logger,
		// Endpoints' throttleRate: a token log item per throttled
		// endpoint, shared by every deliver function.
		Throttle: dynamo.NewThrottle(store),
	}
	ops := operational.New(operational.Config{Store: store, Publisher: svc, Clock: clock, Logger: logger, Retention: cfg.Retention})
	svc.Operational = ops
	sw := &sweeper.Sweeper{
		Store: store, Dispatch: svc.Dispatch, Clock: clock, Logger: logger,
		DisableAfter: cfg.DisableAfter, RedriveAfter: cfg.RedriveAfter, Batch: cfg.SweepBatch,
		Operational: ops,
	}
	return &Services{Config: cfg, AWS: awsCfg, Logger: logger, Metrics: logw, Clock: clock, Store: store, Delivery: svc, Sweeper: sw,
		Operational: ops}
}

// WireAPI gives the api function its dispatch: the first runs of a
// message itself, the rest handed to the sweeper; background tasks
// handed to the sweeper too.
func WireAPI(s *Services) {
	cfg := s.Config
	// No SDK retries: a throttled hand-off is left to the sweeper.
	invoke := lambda.NewFromConfig(s.AWS, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }).Invoke
	handOff := NewHandOff(invoke, cfg.DispatchFunction)
	var first webhook.Dispatcher
	if cfg.Dispatch == DispatchQueue {
		first = sqs.New(awssqs.NewFromConfig(s.AWS).SendMessageBatch, sqs.Config{QueueURL: cfg.QueueURL,
			Max: inlineQueued, Concurrency: inlineConcurrency, Budget: inlineBudget})
	} else {
		// No SDK retries: a throttled start is handed on at once.
		client := awssfn.NewFromConfig(s.AWS, func(o *awssfn.Options) { o.RetryMaxAttempts = 1 })
		first = sfn.New(client.StartExecution, sfn.Config{StateMachineARN: cfg.StateMachineARN,
			Max: inlineStarts, Concurrency: inlineConcurrency, Budget: inlineBudget})
	}
	s.Delivery.Dispatcher = firstThen{first: first, then: handOff}
	// Background tasks (recover) run in the sweeper, off the request.
	s.Delivery.HandTask = handOff.Task
}

// WireDeliver gives the deliver function, in queue mode, what starts a
// run's execution when it needs a retry, and the backoff of the queue's
// records it could not handle.
func WireDeliver(s *Services) {
	cfg := s.Config
	// The operational webhooks an attempt calls for (message.attempt.*)
	// are stored undispatched: the sweeper dispatches them on its next
	// pass after HOOKSTEP_REDRIVE_AFTER. The deliver function may not
	// start executions in stepfunctions mode, nor invoke the sweeper
	// (its ARN would make the stack's references circular).
	s.Delivery.Dispatcher = leaveToSweeper{}
	if cfg.Dispatch != DispatchQueue {
		return
	}
	q := awssqs.NewFromConfig(s.AWS)
	s.Later = sqs.NewBackoff(q.ChangeMessageVisibility, cfg.QueueURL).Later
	s.Throttled = sqs.NewThrottled(q.SendMessage, cfg.QueueURL).Until
	// A throttled start fails the queue's record, which comes back.
	starts := sfn.New(awssfn.NewFromConfig(s.AWS).StartExecution, sfn.Config{StateMachineARN: cfg.StateMachineARN})
	s.Delivery.Retries = func(ctx context.Context, ref webhook.Ref) error {
		_, err := starts.Dispatch(ctx, []webhook.Ref{ref})
		return err
	}
}

// WireSweeper gives the sweeper its dispatch (within the rate, or to the
// queue, whose dead-letter queue it drains) and its checks of overdue
// runs' executions.
func WireSweeper(s *Services) {
	cfg, sw := s.Config, s.Sweeper
	client := awssfn.NewFromConfig(s.AWS)
	if cfg.Dispatch == DispatchQueue {
		q := awssqs.NewFromConfig(s.AWS)
		s.Delivery.Dispatcher = sqs.New(q.SendMessageBatch, sqs.Config{QueueURL: cfg.QueueURL, Budget: sweepDispatchBudget})
		sw.DeadLetters = sqs.NewDeadLetters(q.ReceiveMessage, q.DeleteMessageBatch, q.SendMessageBatch, cfg.DeadLetterQueueURL, cfg.QueueURL)
		sw.QueueOwns = queueOwns
	} else {
		s.Delivery.Dispatcher = sfn.New(client.StartExecution, sfn.Config{StateMachineARN: cfg.StateMachineARN,
			Rate: float64(cfg.DispatchRate), Concurrency: sweepConcurrency, Budget: sweepDispatchBudget, WaitOnThrottle: true})
	}
	sw.Overdue = s.Store
	sw.Executions = sfn.NewExecutions(client.DescribeExecution, cfg.StateMachineARN)
}

// GetSecretValueFunc is the part of Secrets Manager the api function uses:
// pass the method value (*secretsmanager.Client).GetSecretValue. It is a
// func, not an interface the client implements, because the api binary
// links html/template, whose reflection (MethodByName) makes the linker
// keep every exported method of a type converted to an interface: as an
// interface value, the *secretsmanager.Client kept all 24 Secrets Manager
// operations and their serializers (make bench reports the sizes).
type GetSecretValueFunc func(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)

// AdminTokenHash reads the admin token from Secrets Manager and returns its
// SHA-256; the token itself is not kept.
func AdminTokenHash(ctx context.Context, getSecretValue GetSecretValueFunc, arn string) ([32]byte, error) {
	out, err := getSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return [32]byte{}, fmt.Errorf("admin token: read secret %s: %w", arn, err)
	}
	token := strings.TrimSpace(aws.ToString(out.SecretString))
	if token == "" {
		return [32]byte{}, fmt.Errorf("admin token: secret %s has no string value", arn)
	}
	return authtoken.Hash(token), nil
}

// leaveToSweeper is the deliver function's Dispatcher for what it
// publishes (operational webhooks): it takes no run, so each stays
// undispatched in the table until the sweeper re-drives it.
type leaveToSweeper struct{}

func (leaveToSweeper) Dispatch(context.Context, []webhook.Ref) ([]webhook.Ref, error) {
	return nil, nil
}
