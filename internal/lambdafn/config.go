package lambdafn

import (
	"log/slog"
	"time"

	"github.com/hookstep/hookstep/internal/config"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Config is the configuration of the Lambda functions, read once per cold
// start from the environment the CDK stack sets. Which variables are
// required depends on the function (see Needs).
type Config struct {
	Table               string           // HOOKSTEP_TABLE: the DynamoDB table
	StateMachineARN     string           // HOOKSTEP_STATE_MACHINE_ARN: the delivery state machine
	DispatchFunction    string           // HOOKSTEP_DISPATCH_FUNCTION: the function the api hands dispatch to (the sweeper)
	DispatchRate        int              // HOOKSTEP_DISPATCH_RATE: StartExecution calls a second one sweeper instance may make (default 50)
	AdminTokenSecretARN string           // HOOKSTEP_ADMIN_TOKEN_SECRET_ARN: Secrets Manager secret holding the admin token
	HTTPTimeout         time.Duration    // HOOKSTEP_HTTP_TIMEOUT: one attempt's budget (default 15s)
	Schedule            webhook.Schedule // HOOKSTEP_RETRY_SCHEDULE: must match the state machine's Wait states
	DisableAfter        time.Duration    // HOOKSTEP_DISABLE_AFTER (default 168h)
	ReconcileFor        time.Duration    // HOOKSTEP_RECONCILE_FOR: how long the state machine reconciles an unrecorded attempt before it hands the run back (default 15m)
	RedriveAfter        time.Duration    // HOOKSTEP_REDRIVE_AFTER: how long a run may stay undispatched or overdue before the sweeper steps in (default 30s)
	SweepBatch          int              // HOOKSTEP_SWEEP_BATCH: work per sweeper run (default 200)
	AllowPrivate        bool             // HOOKSTEP_ALLOW_PRIVATE_TARGETS (default false in AWS)
	RequireHTTPS        bool             // HOOKSTEP_REQUIRE_HTTPS (default true in AWS)
	LogLevel            slog.Level       // HOOKSTEP_LOG_LEVEL
}

// Needs names the settings a function cannot start without.
type Needs struct {
	StateMachine     bool
	AdminToken       bool
	DispatchFunction bool
}

// LoadConfig reads the configuration, reporting every missing or bad
// variable in one error.
func LoadConfig(getenv func(string) string, needs Needs) (Config, error) {
	c := Config{
		HTTPTimeout:  15 * time.Second,
		Schedule:     webhook.DefaultSchedule,
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
	if needs.StateMachine {
		e.Required("HOOKSTEP_STATE_MACHINE_ARN", &c.StateMachineARN)
	}
	if needs.AdminToken {
		e.Required("HOOKSTEP_ADMIN_TOKEN_SECRET_ARN", &c.AdminTokenSecretARN)
	}
	if needs.DispatchFunction {
		e.Required("HOOKSTEP_DISPATCH_FUNCTION", &c.DispatchFunction)
	}
	e.Int("HOOKSTEP_DISPATCH_RATE", 1, 10000, &c.DispatchRate)
	e.Duration("HOOKSTEP_HTTP_TIMEOUT", &c.HTTPTimeout)
	e.Schedule("HOOKSTEP_RETRY_SCHEDULE", &c.Schedule)
	e.Duration("HOOKSTEP_DISABLE_AFTER", &c.DisableAfter)
	e.Duration("HOOKSTEP_REDRIVE_AFTER", &c.RedriveAfter)
	e.Duration("HOOKSTEP_RECONCILE_FOR", &c.ReconcileFor)
	e.Int("HOOKSTEP_SWEEP_BATCH", 1, 10000, &c.SweepBatch)
	e.Bool("HOOKSTEP_ALLOW_PRIVATE_TARGETS", &c.AllowPrivate)
	e.Bool("HOOKSTEP_REQUIRE_HTTPS", &c.RequireHTTPS)
	e.Level("HOOKSTEP_LOG_LEVEL", &c.LogLevel)
	return c, e.Err()
}
