package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/jsii-runtime-go"
)

// resources are the constructs that other parts of the stack refer to.
type resources struct {
	table        awsdynamodb.Table
	adminToken   awssecretsmanager.Secret
	api          awslambda.Function
	deliver      awslambda.Function
	sweeper      awslambda.Function
	roles        map[string]awsiam.Role // each function's role, by name; see function
	stateMachine awsstepfunctions.StateMachine
	sweep        awsevents.Rule
	// endedDeadLetters keeps the status changes of ended executions the
	// sweeper could not take (see addSweep).
	endedDeadLetters awssqs.Queue

	// In queue mode (nil otherwise): the queue of first attempts, its
	// dead-letter queue, and the state machine's ARN as deliver knows
	// it (see addQueue).
	queue           awssqs.Queue
	deadLetterQueue awssqs.Queue
	stateMachineARN *string

	// What the API, of either kind, offers the alarms and the outputs:
	// its base URL, its 5xx count, and for a custom domain the name the
	// domain's DNS record points at (nil without one).
	apiURL          *string
	apiServerErrors awscloudwatch.Metric
	apiDomainTarget *string
}

const (
	// maxLambdaTimeout is Lambda's ceiling on a function's timeout.
	maxLambdaTimeout = 15 * time.Minute

	// deliverOverhead is the deliver function's time beyond twice the
	// HTTP budget: loading the message and endpoint and recording the
	// attempt are a handful of DynamoDB calls.
	deliverOverhead = 10 * time.Second

	// apiTimeout stays under API Gateway's 29 s integration timeout, so
	// that a slow request ends in the function, which logs why, rather
	// than at the gateway, which cannot.
	apiTimeout = 28 * time.Second

	// sweeperTimeout bounds one sweep. A run handles at most
	// HOOKSTEP_SWEEP_BATCH items (a DynamoDB write or a StartExecution
	// each), seconds of work; a run that is cut short loses nothing,
	// since the next one resumes where it stopped.
	sweeperTimeout = 2 * time.Minute
)

// deliverTimeout is the deliver function's timeout for an HTTP budget.
// An attempt whose POST takes its whole budget still has as long again
// to record the result: the window between a 2xx and its record is the
// one place a duplicate delivery can come from (RELIABILITY.md). In
// queue mode a first attempt that fails is retried at once in the same
// invocation, so the invocation may make two POSTs before that window.
// A longer timeout costs nothing: Lambda bills the time used.
func deliverTimeout(httpBudget time.Duration, dispatch Dispatch) time.Duration {
	return time.Duration(deliverBudgets(dispatch))*httpBudget + deliverOverhead
}

// deliverBudgets is how many HTTP budgets the deliver function's timeout
// holds: the POSTs one invocation may make, and one more to record.
func deliverBudgets(dispatch Dispatch) int {
	if dispatch == DispatchQueue {
		return 3
	}
	return 2
}

// addSecret creates the admin token: a random string without punctuation
// (it travels in an Authorization header and in shell commands). The
// api function reads it once per cold start and keeps only its hash.
func (h *hookstep) addSecret() {
	h.res.adminToken = awssecretsmanager.NewSecret(h.stack, jsii.String("AdminToken"), &awssecretsmanager.SecretProps{
		Description: jsii.String("hookstep admin API token (Authorization: Bearer <token>)"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(48),
			ExcludePunctuation: jsii.Bool(true),
			IncludeSpace:       jsii.Bool(false),
		},
		RemovalPolicy: h.props.RemovalPolicy,
	})
}

// addFunctions creates the three Lambda functions. What they may do is
// granted once the rest exists (addPermissions), and so are the
// variables that name other resources (addDispatch): the state machine
// refers to deliver, so deliver can only know the state machine's ARN
// when it does not refer to the state machine back (see addQueue).
func (h *hookstep) addFunctions() {
	p := h.props
	env := map[string]*string{
		"HOOKSTEP_DISPATCH":       jsii.String(string(p.Dispatch)),
		"HOOKSTEP_TABLE":          h.res.table.TableName(),
		"HOOKSTEP_RETRY_SCHEDULE": jsii.String(p.Schedule.String()),
		"HOOKSTEP_HTTP_TIMEOUT":   jsii.String(p.HTTPTimeout.String()),
		"HOOKSTEP_DISABLE_AFTER":  jsii.String(p.DisableAfter.String()),
		// The functions' own defaults are the production ones; set
		// explicitly so the template says what the deployment does.
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS": jsii.String(strconv.FormatBool(p.AllowPrivateTargets)),
		"HOOKSTEP_REQUIRE_HTTPS":         jsii.String(strconv.FormatBool(!p.AllowHTTP)),
	}

	h.res.api = h.function("api", functionSpec{
		description: "hookstep API and dashboard behind API Gateway",
		// Lambda's CPU share grows with memory. The api validates and
		// fans a message out to every matching endpoint (a write each)
		// and hands them to the sweeper while a client waits, so it
		// gets more CPU than the background functions.
		memoryMB:    512,
		timeout:     apiTimeout,
		concurrency: *p.APIConcurrency,
		env:         env,
	})
	h.res.api.AddEnvironment(jsii.String("HOOKSTEP_ADMIN_TOKEN_SECRET_ARN"), h.res.adminToken.SecretArn(), nil)
	// The payload retention of a message that names none: Go's
	// duration, in whole hours.
	h.res.api.AddEnvironment(jsii.String("HOOKSTEP_RETENTION"), jsii.String(fmt.Sprintf("%dh", 24*p.RetentionDays)), nil)
	if len(p.PortalFrameAncestors) > 0 {
		h.res.api.AddEnvironment(jsii.String("HOOKSTEP_PORTAL_FRAME_ANCESTORS"), jsii.String(strings.Join(p.PortalFrameAncestors, " ")), nil)
	}
	if p.PortalName != "" {
		h.res.api.AddEnvironment(jsii.String("HOOKSTEP_PORTAL_NAME"), jsii.String(p.PortalName), nil)
	}

	deliverDescription := "hookstep delivery attempt (the state machine's task)"
	if p.Dispatch == DispatchQueue {
		deliverDescription = "hookstep delivery attempt (the delivery queue's consumer and the state machine's task)"
	}
	h.res.deliver = h.function("deliver", functionSpec{
		description: deliverDescription,
		// One outbound POST with a capped response: waiting on the
		// network, not computing. 256 MB is the smallest size whose CPU
		// share signs and parses without adding latency.
		memoryMB:    256,
		timeout:     deliverTimeout(p.HTTPTimeout, p.Dispatch),
		concurrency: *p.DeliverConcurrency,
		env:         env,
	})

	h.res.sweeper = h.function("sweeper", functionSpec{
		description: "hookstep sweep and dispatch: start executions, re-drive undispatched deliveries, disable failing endpoints",
		memoryMB:    256, // a bounded batch of small DynamoDB calls and StartExecutions
		timeout:     sweeperTimeout,
		concurrency: *p.SweeperConcurrency,
		env:         env,
	})
}

// functionSpec is what differs between the three functions.
type functionSpec struct {
	description string
	memoryMB    float64
	timeout     time.Duration
	concurrency int // reserved concurrent executions; 0 reserves none
	env         map[string]*string
}

// function creates one Go function from <AssetDir>/<name>/bootstrap on
// the OS-only runtime and the props' architecture, with its own log
// group so that retention and removal follow the props.
//
// Its role is made here and handed to the function as immutable: a grant
// to the function (fn.GrantPrincipal) adds nothing, so every permission
// it has is one addPermissions gives its role (h.res.roles), listed
// there action by action.
func (h *hookstep) function(name string, spec functionSpec) awslambda.Function {
	id := constructID(name)
	logs := awslogs.NewLogGroup(h.stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention:     h.props.LogRetention,
		RemovalPolicy: h.props.RemovalPolicy,
	})
	role := awsiam.NewRole(h.stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		Description: jsii.String("hookstep " + name + " function"),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		// What CDK gives a function's own role: writing to its log group.
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("service-role/AWSLambdaBasicExecutionRole")),
		},
	})
	if h.res.roles == nil {
		h.res.roles = map[string]awsiam.Role{}
	}
	h.res.roles[name] = role

	env := make(map[string]*string, len(spec.env))
	for k, v := range spec.env {
		env[k] = v
	}
	props := &awslambda.FunctionProps{
		Description:  jsii.String(spec.description),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: lambdaArchitecture(h.props.Architecture),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(h.props.AssetDir, name)), nil),
		MemorySize:   jsii.Number(spec.memoryMB),
		Timeout:      seconds(spec.timeout),
		Environment:  &env,
		LogGroup:     logs,
		Role:         role.WithoutPolicyUpdates(nil),
		// The functions already write JSON lines (log/slog); the JSON
		// format keeps them as fields and adds the request id.
		LoggingFormat: awslambda.LoggingFormat_JSON,
	}
	// Lambda reads a reservation of 0 as "never run"; here 0 means no
	// reservation, so the property is left out.
	if spec.concurrency > 0 {
		props.ReservedConcurrentExecutions = jsii.Number(spec.concurrency)
	}
	fn := awslambda.NewFunction(h.stack, jsii.String(id+"Function"), props)
	// The function is created after its permissions, as with a role CDK
	// makes: the role's policy is a child of the role.
	fn.Node().AddDependency(role)
	return fn
}

// lambdaArchitecture maps the props' architecture to CDK's.
func lambdaArchitecture(a Architecture) awslambda.Architecture {
	if a == X86_64 {
		return awslambda.Architecture_X86_64()
	}
	return awslambda.Architecture_ARM_64()
}

// constructID turns a function name into a construct id: "api" → "Api".
func constructID(name string) string {
	if name == "" {
		return name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
