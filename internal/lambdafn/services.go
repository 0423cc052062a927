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
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/sfn"
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
}

// Load reads the configuration from getenv and the AWS SDK configuration
// from the environment, and builds the services: the first half of every
// function's main.
func Load(ctx context.Context, getenv func(string) string, needs Needs) (*Services, error) {
	cfg, err := LoadConfig(getenv, needs)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	s := NewServices(cfg, awsCfg, os.Stdout)
	s.AWS = awsCfg
	return s, nil
}

// The api function's own dispatch: it starts up to inlineStarts of a
// message's runs itself, inlineConcurrency at a time, for at most
// inlineBudget, without waiting on a throttle; the rest, and any it could
// not start, go to the sweeper (HandOff). A client thus waits for a
// handful of StartExecution calls at most, whatever the fan-out.
const (
	inlineStarts      = 25
	inlineConcurrency = 16
	inlineBudget      = 2 * time.Second
)

// The sweeper's dispatch: throttled starts back off and try again for up
// to sweepDispatchBudget per batch; what is left waits for the next sweep.
const (
	sweepConcurrency    = 8
	sweepDispatchBudget = 30 * time.Second
)

// NewServices builds the services. The Dispatcher is set only when the
// configuration names a state machine (the deliver function needs none):
// with a dispatch function (the api), it starts a message's first runs
// and hands the rest to that function; without (the sweeper), it starts
// runs within the dispatch rate, and the sweeper also checks overdue
// runs' executions.
func NewServices(cfg Config, awsCfg aws.Config, logw io.Writer) *Services {
	logger := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: cfg.LogLevel}))
	clock := webhook.SystemClock{}
	store := dynamo.New(dynamodb.NewFromConfig(awsCfg), cfg.Table, clock)
	svc := &delivery.Service{
		Store:        store,
		Sender:       sender.New(sender.Config{Timeout: cfg.HTTPTimeout, AllowPrivate: cfg.AllowPrivate, RequireHTTPS: cfg.RequireHTTPS}),
		Schedule:     cfg.Schedule,
		ReconcileFor: cfg.ReconcileFor,
		Clock:        clock,
		Logger:       logger,
	}
	sw := &sweeper.Sweeper{
		Store: store, Dispatch: svc.Dispatch, Clock: clock, Logger: logger,
		DisableAfter: cfg.DisableAfter, RedriveAfter: cfg.RedriveAfter, Batch: cfg.SweepBatch,
	}
	switch {
	case cfg.StateMachineARN != "" && cfg.DispatchFunction != "":
		// No SDK retries: a throttled start is handed on at once.
		client := awssfn.NewFromConfig(awsCfg, func(o *awssfn.Options) { o.RetryMaxAttempts = 1 })
		// Nor here: a throttled hand-off is left to the sweeper.
		invoke := lambda.NewFromConfig(awsCfg, func(o *lambda.Options) { o.RetryMaxAttempts = 1 }).Invoke
		handOff := NewHandOff(invoke, cfg.DispatchFunction)
		svc.Dispatcher = firstThen{
			first: sfn.New(client.StartExecution, sfn.Config{StateMachineARN: cfg.StateMachineARN,
				Max: inlineStarts, Concurrency: inlineConcurrency, Budget: inlineBudget}),
			then: handOff,
		}
		// Background tasks (recover) run in the sweeper, off the request.
		svc.HandTask = handOff.Task
	case cfg.StateMachineARN != "":
		client := awssfn.NewFromConfig(awsCfg)
		svc.Dispatcher = sfn.New(client.StartExecution, sfn.Config{StateMachineARN: cfg.StateMachineARN,
			Rate: float64(cfg.DispatchRate), Concurrency: sweepConcurrency, Budget: sweepDispatchBudget, WaitOnThrottle: true})
		sw.Overdue = store
		sw.Executions = sfn.NewExecutions(client.DescribeExecution, cfg.StateMachineARN)
	}
	return &Services{
		Config:   cfg,
		Logger:   logger,
		Metrics:  logw,
		Clock:    clock,
		Store:    store,
		Delivery: svc,
		Sweeper:  sw,
	}
}

// GetSecretValueFunc is the part of Secrets Manager the api function uses:
// pass the method value (*secretsmanager.Client).GetSecretValue. It is a
// func, not an interface the client implements, because the api binary
// links html/template, whose reflection (MethodByName) makes the linker
// keep every exported method of a type converted to an interface: as an
// interface value, the *secretsmanager.Client kept all 24 Secrets Manager
// operations and their serializers, 0.26 MB of the stripped api binary.
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
