package lambdafn

import (
	"log/slog"
	"time"

	"github.com/hookstep/hookstep/internal/config"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Function names one of the Lambda functions; what it needs from the
// environment depends on it and on the dispatch mode.
type Function string

// The functions.
const (
	FunctionAPI     Function = "api"
	FunctionDeliver Function = "deliver"
	FunctionSweeper Function = "sweeper"
)

// The dispatch modes (HOOKSTEP_DISPATCH): a Step Functions execution per
// delivery, or the first attempt through SQS and an execution only for a
// delivery that needs a retry.
const (
	DispatchStepFunctions = "stepfunctions"
	DispatchQueue         = "queue"
)

// Config is the configuration of the Lambda functions, read once per cold
// start from the environment the CDK stack sets. Which variables are
// required depends on the function and the dispatch mode (LoadConfig).
type Config struct {
	Function            Function         // which function this is (not from the environment)
	Table               string           // HOOKSTEP_TABLE: the DynamoDB table
	Dispatch            string           // HOOKSTEP_DISPATCH: stepfunctions (default) or queue
	StateMachineARN     string           // HOOKSTEP_STATE_MACHINE_ARN: the delivery state machine
	QueueURL            string           // HOOKSTEP_DISPATCH_QUEUE_URL: queue mode's delivery queue
	DeadLetterQueueURL  string           // HOOKSTEP_DEAD_LETTER_QUEUE_URL: its dead-letter queue (sweeper)
	DispatchFunction    string           // HOOKSTEP_DISPATCH_FUNCTION: the function the api hands dispatch to (the sweeper)
	DispatchRate        int              // HOOKSTEP_DISPATCH_RATE: StartExecution calls a second one sweeper instance may make (default 50)
	AdminTokenSecretARN string           // HOOKSTEP_ADMIN_TOKEN_SECRET_ARN: Secrets Manager secret holding the admin token
	HTTPTimeout         time.Duration    // HOOKSTEP_HTTP_TIMEOUT: one attempt's budget (default 15s)
	Schedule            webhook.Schedule // HOOKSTEP_RETRY_SCHEDULE: must match the state machine's Wait states
	Retention           time.Duration    // HOOKSTEP_RETENTION: a message's payload retention when it names none (default 90 days)
	DisableAfter        time.Duration    // HOOKSTEP_DISABLE_AFTER (default 168h)
	ReconcileFor        time.Duration    // HOOKSTEP_RECONCILE_FOR: how long the state machine reconciles an unrecorded attempt before it hands the run back (default 15m)
	RedriveAfter        time.Duration    // HOOKSTEP_REDRIVE_AFTER: how long a run may stay undispatched or overdue before the sweeper steps in (default 30s)
	SweepBatch          int              // HOOKSTEP_SWEEP_BATCH: work per sweeper run (default 200)
	AllowPrivate        bool             // HOOKSTEP_ALLOW_PRIVATE_TARGETS (default false in AWS)
	RequireHTTPS        bool             // HOOKSTEP_REQUIRE_HTTPS (default true in AWS)
	LogLevel            slog.Level       // HOOKSTEP_LOG_LEVEL
	// The customers' portal (api only): the origins that may frame it, as
	// the stack's portalFrameAncestors prop sets them (space-separated;
	// functions/api reads them with dashboard.ParseFrameAncestors), and
	// what it calls itself ("" = Webhooks).
	PortalFrameAncestors string // HOOKSTEP_PORTAL_FRAME_ANCESTORS
	PortalName           string // HOOKSTEP_PORTAL_NAME
}

// LoadConfig reads the configuration of fn, reporting every missing or
// bad variable in one error. Required:
//
//	all       HOOKSTEP_TABLE
//	api       HOOKSTEP_ADMIN_TOKEN_SECRET_ARN, HOOKSTEP_DISPATCH_FUNCTION, and
//	          HOOKSTEP_STATE_MACHINE_ARN (stepfunctions) or HOOKSTEP_DISPATCH_QUEUE_URL (queue)
//	deliver   in queue mode HOOKSTEP_STATE_MACHINE_ARN (it starts the retries) and
//	          HOOKSTEP_DISPATCH_QUEUE_URL (it delays the records it could not handle)
//	sweeper   HOOKSTEP_STATE_MACHINE_ARN, and in queue mode HOOKSTEP_DISPATCH_QUEUE_URL
//	          and HOOKSTEP_DEAD_LETTER_QUEUE_URL
func LoadConfig(getenv func(string) string, fn Function) (Config, error) {
	c := Config{
		Function:     fn,
		Dispatch:     DispatchStepFunctions,
		HTTPTimeout:  15 * time.Second,
		Schedule:     webhook.DefaultSchedule,
		Retention:    webhook.MaxRetentionDays * 24 * time.Hour,
		DisableAfter: 7 * 24 * time.Hour,
		ReconcileFor: delivery.DefaultReconcileFor,
		RedriveAfter: 30 * time.Second,
		DispatchRate: 50,
		SweepBatch:   200,
		RequireHTTPS: true,
		LogLevel:     slog.LevelInfo,
	}
	e := config.New(getenv)
	e.Required("HOOKSTEP_TABLE", &c.Table)
	e.OneOf("HOOKSTEP_DISPATCH", &c.Dispatch, DispatchStepFunctions, DispatchQueue)
	queue := c.Dispatch == DispatchQueue
	switch fn {
	case FunctionAPI:
		e.Required("HOOKSTEP_ADMIN_TOKEN_SECRET_ARN", &c.AdminTokenSecretARN)
		e.Required("HOOKSTEP_DISPATCH_FUNCTION", &c.DispatchFunction)
		if queue {
			e.Required("HOOKSTEP_DISPATCH_QUEUE_URL", &c.QueueURL)
		} else {
			e.Required("HOOKSTEP_STATE_MACHINE_ARN", &c.StateMachineARN)
		}
		e.String("HOOKSTEP_PORTAL_FRAME_ANCESTORS", &c.PortalFrameAncestors)
		e.String("HOOKSTEP_PORTAL_NAME", &c.PortalName)
	case FunctionDeliver:
		if queue {
			e.Required("HOOKSTEP_STATE_MACHINE_ARN", &c.StateMachineARN)
			e.Required("HOOKSTEP_DISPATCH_QUEUE_URL", &c.QueueURL)
		}
	case FunctionSweeper:
		e.Required("HOOKSTEP_STATE_MACHINE_ARN", &c.StateMachineARN)
		if queue {
			e.Required("HOOKSTEP_DISPATCH_QUEUE_URL", &c.QueueURL)
			e.Required("HOOKSTEP_DEAD_LETTER_QUEUE_URL", &c.DeadLetterQueueURL)
		}
	}
	e.Int("HOOKSTEP_DISPATCH_RATE", 1, 10000, &c.DispatchRate)
	e.Duration("HOOKSTEP_HTTP_TIMEOUT", &c.HTTPTimeout)
	e.Schedule("HOOKSTEP_RETRY_SCHEDULE", &c.Schedule)
	e.DurationIn("HOOKSTEP_RETENTION", webhook.MinRetentionDays*24*time.Hour, webhook.MaxRetentionDays*24*time.Hour, &c.Retention)
	e.Duration("HOOKSTEP_DISABLE_AFTER", &c.DisableAfter)
	e.Duration("HOOKSTEP_REDRIVE_AFTER", &c.RedriveAfter)
	e.Duration("HOOKSTEP_RECONCILE_FOR", &c.ReconcileFor)
	e.Int("HOOKSTEP_SWEEP_BATCH", 1, 10000, &c.SweepBatch)
	e.Bool("HOOKSTEP_ALLOW_PRIVATE_TARGETS", &c.AllowPrivate)
	e.Bool("HOOKSTEP_REQUIRE_HTTPS", &c.RequireHTTPS)
	e.Level("HOOKSTEP_LOG_LEVEL", &c.LogLevel)
	return c, e.Err()
}
