package stack_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/webhook"
)

// workDir holds the stub function build and the synthesized apps.
var workDir string

func TestMain(m *testing.M) {
	code, err := runTests(m)
	jsii.Close() // stops the jsii runtime, which otherwise leaves temp dirs behind
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func runTests(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "hookstep-infra-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	workDir = dir
	if err := stack.StubBuild(filepath.Join(dir, "build")); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// synthesized is one synthesized stack: the assertions view and the raw
// template.
type synthesized struct {
	assertions.Template
	tmpl cfnTemplate
}

var apps atomic.Int64

// synth synthesizes the stack with props against the stub build.
func synth(t *testing.T, props stack.Props) synthesized {
	t.Helper()
	props.AssetDir = filepath.Join(workDir, "build")
	outdir := filepath.Join(workDir, fmt.Sprintf("cdk.out.%d", apps.Add(1)))
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	st, err := stack.New(app, "Hookstep", &props)
	if err != nil {
		t.Fatalf("stack.New: %v", err)
	}
	s, err := newSynthesized(assertions.Template_FromStack(st, nil))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSynthesized(tpl assertions.Template) (synthesized, error) {
	raw, err := json.Marshal(tpl.ToJSON())
	if err != nil {
		return synthesized{}, err
	}
	var c cfnTemplate
	if err := json.Unmarshal(raw, &c); err != nil {
		return synthesized{}, err
	}
	c.raw = raw
	return synthesized{Template: tpl, tmpl: c}, nil
}

// defaultStack is the stack with default props, and queueStack and
// httpStack the stack in queue dispatch mode and with an HTTP API, each
// synthesized once for the tests that only read it.
var (
	defaultStack = sharedStack("default", stack.Props{})
	queueStack   = sharedStack("queue", stack.Props{Dispatch: stack.DispatchQueue})
	httpStack    = sharedStack("http", stack.Props{API: stack.APIHTTP})
)

// sharedStack synthesizes the stack with props once, when first asked.
func sharedStack(name string, props stack.Props) func() synthesized {
	return sync.OnceValue(func() synthesized {
		props.AssetDir = filepath.Join(workDir, "build")
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(workDir, "cdk.out."+name))})
		st, err := stack.New(app, "Hookstep", &props)
		if err != nil {
			panic(err)
		}
		s, err := newSynthesized(assertions.Template_FromStack(st, nil))
		if err != nil {
			panic(err)
		}
		return s
	})
}

// variants are the shared stacks, for the tests that hold in each.
var variants = []struct {
	name  string
	stack func() synthesized
}{
	{"default", defaultStack},
	{"queue", queueStack},
	{"http", httpStack},
}

// check runs an assertions-package check, which panics on failure, and
// reports the failure on t instead, so one failed assertion does not
// abort the whole test binary.
func check(t *testing.T, assertion func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if r := recover(); r != nil {
			t.Errorf("%v", r)
		}
	}()
	assertion()
}

// cfnTemplate is the part of a CloudFormation template the tests read.
type cfnTemplate struct {
	Resources map[string]cfnResource    `json:"Resources"`
	Outputs   map[string]map[string]any `json:"Outputs"`
	raw       []byte
}

type cfnResource struct {
	Type           string         `json:"Type"`
	Properties     map[string]any `json:"Properties"`
	DeletionPolicy string         `json:"DeletionPolicy"`
	DependsOn      []string       `json:"DependsOn"`
}

// ofType returns the resources of one type by logical id.
func (c cfnTemplate) ofType(typ string) map[string]cfnResource {
	out := map[string]cfnResource{}
	for id, r := range c.Resources {
		if r.Type == typ {
			out[id] = r
		}
	}
	return out
}

// function returns the Lambda function built from <name>, e.g. "deliver".
func (c cfnTemplate) function(t *testing.T, name string) (string, cfnResource) {
	t.Helper()
	prefix := strings.ToUpper(name[:1]) + name[1:] + "Function"
	for id, r := range c.ofType("AWS::Lambda::Function") {
		if strings.HasPrefix(id, prefix) {
			return id, r
		}
	}
	t.Fatalf("no function %s in the template", name)
	return "", cfnResource{}
}

// only returns the single resource of a type.
func (c cfnTemplate) only(t *testing.T, typ string) (string, cfnResource) {
	t.Helper()
	rs := c.ofType(typ)
	if len(rs) != 1 {
		t.Fatalf("got %d %s, want 1", len(rs), typ)
	}
	for id, r := range rs {
		return id, r
	}
	panic("unreachable")
}

func ref(id string) map[string]any       { return map[string]any{"Ref": id} }
func getAttArn(id string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, "Arn"}} }

func TestResourceCounts(t *testing.T) {
	// The default stack: stepfunctions dispatch, a REST API.
	want := map[string]int{
		"AWS::DynamoDB::Table":             1,
		"AWS::Lambda::Function":            3, // ours only: no custom-resource functions
		"AWS::StepFunctions::StateMachine": 1,
		"AWS::ApiGateway::RestApi":         1,
		"AWS::ApiGateway::Stage":           1,
		"AWS::ApiGateway::Method":          2, // ANY / and ANY /{proxy+}
		"AWS::ApiGateway::Account":         1, // the CloudWatch role for access logs
		"AWS::ApiGateway::DomainName":      0,
		"AWS::ApiGatewayV2::Api":           0,
		"AWS::ApiGatewayV2::Stage":         0,
		"AWS::ApiGatewayV2::Route":         0,
		"AWS::ApiGatewayV2::Integration":   0,
		"AWS::SQS::Queue":                  1, // the ended executions' dead letters
		"AWS::SQS::QueuePolicy":            1, // https only, and EventBridge may send
		"AWS::Lambda::EventSourceMapping":  0,
		"AWS::Events::Rule":                2, // the sweep, ended executions
		"AWS::SecretsManager::Secret":      1,
		"AWS::CloudWatch::Alarm":           9,
		"AWS::Logs::LogGroup":              5, // three functions, the state machine, API access logs
		"AWS::IAM::Role":                   5, // three functions, the state machine, API Gateway's CloudWatch role
		"AWS::SNS::Topic":                  0,
	}
	with := func(changes map[string]int) map[string]int {
		out := maps.Clone(want)
		maps.Copy(out, changes)
		return out
	}
	tests := []struct {
		name  string
		stack func() synthesized
		want  map[string]int
	}{
		{"default", defaultStack, want},
		{"queue", queueStack, with(map[string]int{
			"AWS::SQS::Queue":                 3, // and deliveries and their dead letters
			"AWS::SQS::QueuePolicy":           3, // https only
			"AWS::Lambda::EventSourceMapping": 1,
			"AWS::CloudWatch::Alarm":          11, // and the dead-letter queue, the oldest message's age
		})},
		{"http", httpStack, with(map[string]int{
			"AWS::ApiGateway::RestApi":       0,
			"AWS::ApiGateway::Stage":         0,
			"AWS::ApiGateway::Method":        0,
			"AWS::ApiGateway::Account":       0, // HTTP APIs log without the account's role
			"AWS::ApiGatewayV2::Api":         1,
			"AWS::ApiGatewayV2::Stage":       1, // $default
			"AWS::ApiGatewayV2::Route":       1, // $default
			"AWS::ApiGatewayV2::Integration": 1,
			"AWS::IAM::Role":                 4,
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.stack()
			for typ, n := range tt.want {
				t.Run(typ, func(t *testing.T) {
					check(t, func() { s.ResourceCountIs(jsii.String(typ), jsii.Number(n)) })
				})
			}
		})
	}
}

func TestTableFollowsSharedSchema(t *testing.T) {
	s := defaultStack()
	schema := dynamo.TableSchema("ignored")

	var gsis []any
	for _, g := range schema.GlobalSecondaryIndexes {
		projection := map[string]any{"ProjectionType": string(g.Projection.ProjectionType)}
		if len(g.Projection.NonKeyAttributes) > 0 {
			projection["NonKeyAttributes"] = g.Projection.NonKeyAttributes
		}
		gsis = append(gsis, map[string]any{
			"IndexName": *g.IndexName,
			"KeySchema": []any{
				map[string]any{"AttributeName": *g.KeySchema[0].AttributeName, "KeyType": "HASH"},
				map[string]any{"AttributeName": *g.KeySchema[1].AttributeName, "KeyType": "RANGE"},
			},
			"Projection": projection,
		})
	}
	var attrs []any
	for _, a := range schema.AttributeDefinitions {
		attrs = append(attrs, map[string]any{"AttributeName": *a.AttributeName, "AttributeType": "S"})
	}

	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
			"KeySchema": []any{
				map[string]any{"AttributeName": dynamo.AttrPK, "KeyType": "HASH"},
				map[string]any{"AttributeName": dynamo.AttrSK, "KeyType": "RANGE"},
			},
			"BillingMode":                      "PAY_PER_REQUEST",
			"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
			"TimeToLiveSpecification":          map[string]any{"AttributeName": dynamo.TTLAttribute, "Enabled": true},
			"DeletionProtectionEnabled":        true,
			"AttributeDefinitions":             assertions.Match_ArrayEquals(&attrs),
			"GlobalSecondaryIndexes":           assertions.Match_ArrayEquals(&gsis),
			"TableName":                        assertions.Match_Absent(),
		})
	})

	_, table := s.tmpl.only(t, "AWS::DynamoDB::Table")
	if table.DeletionPolicy != "Retain" {
		t.Errorf("table DeletionPolicy: got %q, want Retain by default", table.DeletionPolicy)
	}
	var names []string
	for _, g := range table.Properties["GlobalSecondaryIndexes"].([]any) {
		names = append(names, g.(map[string]any)["IndexName"].(string))
	}
	if want := []string{dynamo.IndexList, dynamo.IndexEndpoint, dynamo.IndexSweep}; !slices.Equal(names, want) {
		t.Errorf("indexes: got %v, want %v", names, want)
	}
}

func TestFunctions(t *testing.T) {
	s := defaultStack()
	tableID, _ := s.tmpl.only(t, "AWS::DynamoDB::Table")
	smID, _ := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	secretID, _ := s.tmpl.only(t, "AWS::SecretsManager::Secret")
	sweeperID, _ := s.tmpl.function(t, "sweeper")

	// In stepfunctions mode; queue mode's are in TestQueueFunctions.
	tests := []struct {
		name        string
		memory      float64
		timeout     float64
		concurrency float64
		extraEnv    map[string]any // beyond the shared variables
	}{
		// The api starts a message's first runs and hands the rest to
		// the sweeper.
		{"api", 512, 28, 100, map[string]any{
			"HOOKSTEP_STATE_MACHINE_ARN":      ref(smID),
			"HOOKSTEP_DISPATCH_FUNCTION":      getAttArn(sweeperID),
			"HOOKSTEP_ADMIN_TOKEN_SECRET_ARN": ref(secretID),
			"HOOKSTEP_RETENTION":              "720h", // 30 days
		}},
		{"deliver", 256, 40, 300, nil},
		// 100 starts a second over 5 instances.
		{"sweeper", 256, 120, 5, map[string]any{
			"HOOKSTEP_STATE_MACHINE_ARN": ref(smID),
			"HOOKSTEP_DISPATCH_RATE":     "20",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fn := s.tmpl.function(t, tt.name)
			p := fn.Properties
			for key, want := range map[string]any{
				"Runtime":                      "provided.al2023",
				"Architectures":                []any{"arm64"},
				"Handler":                      "bootstrap",
				"MemorySize":                   tt.memory,
				"Timeout":                      tt.timeout,
				"ReservedConcurrentExecutions": tt.concurrency,
				"FunctionName":                 nil, // CloudFormation names it
			} {
				if got := p[key]; !jsonEqual(got, want) {
					t.Errorf("%s: got %v, want %v", key, got, want)
				}
			}
			if lc, _ := p["LoggingConfig"].(map[string]any); lc == nil || lc["LogGroup"] == nil {
				t.Errorf("LoggingConfig: got %v, want the function's own log group", p["LoggingConfig"])
			}

			checkEnv(t, fn, sharedEnv(tableID, "stepfunctions"), tt.extraEnv)
		})
	}
}

// sharedEnv is the environment every function gets with the default
// props, in a dispatch mode.
func sharedEnv(tableID, dispatch string) map[string]any {
	return map[string]any{
		"HOOKSTEP_DISPATCH":       dispatch,
		"HOOKSTEP_TABLE":          ref(tableID),
		"HOOKSTEP_RETRY_SCHEDULE": webhook.DefaultSchedule.String(),
		"HOOKSTEP_HTTP_TIMEOUT":   "15s",
		"HOOKSTEP_DISABLE_AFTER":  "168h0m0s",
		// The production defaults: the SSRF guard on, https only.
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS": "false",
		"HOOKSTEP_REQUIRE_HTTPS":         "true",
	}
}

// checkEnv checks a function's whole environment: shared and extra.
func checkEnv(t *testing.T, fn cfnResource, shared, extra map[string]any) {
	t.Helper()
	want := maps.Clone(shared)
	maps.Copy(want, extra)
	got := fn.Properties["Environment"].(map[string]any)["Variables"]
	if !jsonEqual(got, want) {
		t.Errorf("environment:\n got %v\nwant %v", got, want)
	}
}

// TestDeliverTimeoutCoversTwiceTheHTTPBudget checks the rule that keeps
// the duplicate-delivery window small: an attempt that spends its whole
// HTTP budget has as long again to record the result.
func TestDeliverTimeoutCoversTwiceTheHTTPBudget(t *testing.T) {
	for _, budget := range []time.Duration{stack.DefaultHTTPTimeout, 2 * time.Minute} {
		t.Run(budget.String(), func(t *testing.T) {
			s := defaultStack()
			if budget != stack.DefaultHTTPTimeout {
				s = synth(t, stack.Props{HTTPTimeout: budget})
			}
			_, fn := s.tmpl.function(t, "deliver")
			timeout := fn.Properties["Timeout"].(float64)
			env := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
			told, err := time.ParseDuration(env["HOOKSTEP_HTTP_TIMEOUT"].(string))
			if err != nil || told != budget {
				t.Fatalf("HOOKSTEP_HTTP_TIMEOUT: got %v (%v), want %s", env["HOOKSTEP_HTTP_TIMEOUT"], err, budget)
			}
			if timeout < 2*budget.Seconds() {
				t.Errorf("deliver timeout %vs < 2 x HTTP budget %s", timeout, budget)
			}
		})
	}
}

func TestSweepRule(t *testing.T) {
	tests := []struct {
		rate time.Duration
		want string
	}{
		{0, "rate(1 minute)"}, // the default: the sweeper re-drives what a lost hand-off left
		{15 * time.Minute, "rate(15 minutes)"},
		{time.Hour, "rate(1 hour)"},
		{24 * time.Hour, "rate(1 day)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			s := defaultStack()
			if tt.rate != 0 {
				s = synth(t, stack.Props{SweepRate: tt.rate})
			}
			sweeperID, _ := s.tmpl.function(t, "sweeper")
			check(t, func() {
				s.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
					"ScheduleExpression": tt.want,
					"State":              "ENABLED",
					"Targets":            []any{assertions.Match_ObjectLike(&map[string]any{"Arn": getAttArn(sweeperID)})},
				})
			})
		})
	}
}

// TestExecutionEndedRule: the delivery state machine's executions that
// fail, are aborted or time out reach the sweeper, with retries and a
// dead-letter queue that alarms, in both dispatch modes.
func TestExecutionEndedRule(t *testing.T) {
	for name, s := range map[string]synthesized{"stepfunctions": defaultStack(), "queue": queueStack()} {
		t.Run(name, func(t *testing.T) {
			sweeperID, _ := s.tmpl.function(t, "sweeper")
			smID, _ := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
			check(t, func() {
				s.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
					"EventPattern": map[string]any{
						"source":      []any{"aws.states"},
						"detail-type": []any{"Step Functions Execution Status Change"},
						"detail": map[string]any{
							"stateMachineArn": []any{map[string]any{"Ref": smID}},
							"status":          []any{"FAILED", "ABORTED", "TIMED_OUT"},
						},
					},
					"Targets": []any{assertions.Match_ObjectLike(&map[string]any{
						"Arn":              getAttArn(sweeperID),
						"DeadLetterConfig": assertions.Match_ObjectLike(&map[string]any{"Arn": assertions.Match_AnyValue()}),
						"RetryPolicy":      map[string]any{"MaximumEventAgeInSeconds": float64(86400), "MaximumRetryAttempts": float64(185)},
					})},
				})
			})
			check(t, func() {
				s.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), map[string]any{
					"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com", "FunctionName": getAttArn(sweeperID),
				})
			})
			alarms := 0
			for id := range s.tmpl.ofType("AWS::CloudWatch::Alarm") {
				if strings.HasPrefix(id, "EndedDeadLettersAlarm") {
					alarms++
				}
			}
			if alarms != 1 {
				t.Errorf("%d EndedDeadLetters alarms, want 1", alarms)
			}
		})
	}
}

func TestAPI(t *testing.T) {
	s := defaultStack()
	apiID, _ := s.tmpl.function(t, "api")
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), map[string]any{
			"Name":                  "Hookstep-api", // from the stack's name
			"EndpointConfiguration": map[string]any{"Types": []any{"REGIONAL"}},
		})
	})
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGateway::Resource"), map[string]any{"PathPart": "{proxy+}"})
	})
	// Both methods (the root and {proxy+}) proxy to the api function.
	methods := s.tmpl.ofType("AWS::ApiGateway::Method")
	for id, m := range methods {
		p := m.Properties
		integration, _ := p["Integration"].(map[string]any)
		if p["HttpMethod"] != "ANY" || integration["Type"] != "AWS_PROXY" || !strings.Contains(string(mustJSON(t, integration)), apiID) {
			t.Errorf("method %s: got %v, want ANY proxied to %s", id, p, apiID)
		}
	}
	accessLogsID := ""
	for id := range s.tmpl.ofType("AWS::Logs::LogGroup") {
		if strings.HasPrefix(id, "ApiAccessLogs") {
			accessLogsID = id
		}
	}
	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGateway::Stage"), map[string]any{
			"AccessLogSetting": assertions.Match_ObjectLike(&map[string]any{"DestinationArn": getAttArn(accessLogsID)}),
			"MethodSettings": []any{assertions.Match_ObjectLike(&map[string]any{
				"HttpMethod":           "*",
				"ResourcePath":         "/*",
				"ThrottlingRateLimit":  stack.DefaultThrottleRate,
				"ThrottlingBurstLimit": stack.DefaultThrottleBurst,
				"DataTraceEnabled":     false,
				"LoggingLevel":         "OFF",
			})},
		})
	})
}

func TestAdminTokenSecret(t *testing.T) {
	s := defaultStack()
	_, secret := s.tmpl.only(t, "AWS::SecretsManager::Secret")
	gen, _ := secret.Properties["GenerateSecretString"].(map[string]any)
	if gen["ExcludePunctuation"] != true || gen["IncludeSpace"] != false {
		t.Errorf("GenerateSecretString: got %v, want no punctuation and no spaces", gen)
	}
	if n, _ := gen["PasswordLength"].(float64); n < 40 {
		t.Errorf("PasswordLength: got %v, want >= 40", gen["PasswordLength"])
	}
	if gen["SecretStringTemplate"] != nil {
		t.Errorf("SecretStringTemplate: got %v, want a plain string secret (the api hashes the whole value)", gen["SecretStringTemplate"])
	}
}

func TestOutputs(t *testing.T) {
	s := defaultStack()
	for _, name := range []string{stack.OutputAPIURL, stack.OutputAdminTokenSecret, stack.OutputStateMachineARN, stack.OutputTableName} {
		t.Run(name, func(t *testing.T) {
			check(t, func() { s.HasOutput(jsii.String(name), map[string]any{"Value": assertions.Match_AnyValue()}) })
		})
	}
	if _, ok := s.tmpl.Outputs[stack.OutputCustomDomainTarget]; ok {
		t.Errorf("output %s without a custom domain", stack.OutputCustomDomainTarget)
	}
	secretID, _ := s.tmpl.only(t, "AWS::SecretsManager::Secret")
	if got := s.tmpl.Outputs[stack.OutputAdminTokenSecret]["Value"]; !jsonEqual(got, ref(secretID)) {
		t.Errorf("%s: got %v, want the secret's ARN (never its value)", stack.OutputAdminTokenSecret, got)
	}
}

// TestOptionalProps synthesizes the options that add resources: a custom
// domain and an alarm topic; and a disposable (DESTROY) stack.
func TestOptionalProps(t *testing.T) {
	const (
		domain  = "hooks.example.com"
		cert    = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-000000000000"
		topicID = "arn:aws:sns:eu-west-1:123456789012:hookstep-alarms"
	)
	s := synth(t, stack.Props{
		DomainName: domain, CertificateARN: cert, AlarmTopicARN: topicID,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY, APIGatewayLogRoleExists: true,
		LogRetention: awslogs.RetentionDays_ONE_WEEK,
	})

	check(t, func() {
		s.HasResourceProperties(jsii.String("AWS::ApiGateway::DomainName"), map[string]any{
			"DomainName":             domain,
			"RegionalCertificateArn": cert,
			"EndpointConfiguration":  map[string]any{"Types": []any{"REGIONAL"}},
			"SecurityPolicy":         "TLS_1_2",
		})
	})
	check(t, func() { s.ResourceCountIs(jsii.String("AWS::ApiGateway::BasePathMapping"), jsii.Number(1)) })
	check(t, func() {
		s.HasOutput(jsii.String(stack.OutputCustomDomainTarget), map[string]any{"Value": assertions.Match_AnyValue()})
	})
	check(t, func() { s.ResourceCountIs(jsii.String("AWS::ApiGateway::Account"), jsii.Number(0)) })

	for id, a := range s.tmpl.ofType("AWS::CloudWatch::Alarm") {
		for _, key := range []string{"AlarmActions", "OKActions"} {
			if got := a.Properties[key]; !jsonEqual(got, []any{topicID}) {
				t.Errorf("alarm %s %s: got %v, want [%s]", id, key, got, topicID)
			}
		}
	}

	_, table := s.tmpl.only(t, "AWS::DynamoDB::Table")
	if table.DeletionPolicy != "Delete" || table.Properties["DeletionProtectionEnabled"] != false {
		t.Errorf("disposable table: got DeletionPolicy %q, protection %v; want Delete, false",
			table.DeletionPolicy, table.Properties["DeletionProtectionEnabled"])
	}
	for id, lg := range s.tmpl.ofType("AWS::Logs::LogGroup") {
		if lg.DeletionPolicy != "Delete" || lg.Properties["RetentionInDays"] != float64(7) {
			t.Errorf("log group %s: got DeletionPolicy %q, retention %v; want Delete, 7",
				id, lg.DeletionPolicy, lg.Properties["RetentionInDays"])
		}
	}
}

func TestAlarms(t *testing.T) {
	s := defaultStack()
	deliverID, _ := s.tmpl.function(t, "deliver")
	smID, _ := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	tableID, _ := s.tmpl.only(t, "AWS::DynamoDB::Table")
	alarms := s.tmpl.ofType("AWS::CloudWatch::Alarm")

	find := func(t *testing.T, prefix string) map[string]any {
		t.Helper()
		for id, a := range alarms {
			if strings.HasPrefix(id, prefix+"Alarm") {
				return a.Properties
			}
		}
		t.Fatalf("no alarm %s", prefix)
		return nil
	}
	for _, a := range alarms {
		p := a.Properties
		if p["Threshold"] != float64(1) || p["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || p["TreatMissingData"] != "notBreaching" {
			t.Errorf("alarm %v: want >= 1, missing data not breaching", p["AlarmDescription"])
		}
		if p["AlarmActions"] != nil {
			t.Errorf("alarm %v has actions without an alarm topic", p["AlarmDescription"])
		}
	}

	// Single-metric alarms: what they watch, over which window, for how
	// many periods in a row. A custom metric has no dimensions.
	tests := []struct {
		alarm, namespace, metric, dimension string
		statistic                           string
		period, periods                     float64
	}{
		{"DeliverErrors", "AWS/Lambda", "Errors", deliverID, "Sum", 300, 1},
		{"ExecutionsFailed", "AWS/States", "ExecutionsFailed", smID, "Sum", 300, 1},
		{"ExecutionThrottled", "AWS/States", "ExecutionThrottled", smID, "Sum", 300, 1},
		{"Api5xx", "AWS/ApiGateway", "5XXError", "Hookstep-api", "Sum", 300, 1},
		// Every run in each of 10 minutes in a row ended with a backlog.
		{"DispatchBacklog", "Hookstep", "DispatchBacklog", "", "Minimum", 60, 10},
		// Any hand-off.
		{"HandOffs", "Hookstep", "HandOffs", "", "Sum", 300, 1},
	}
	for _, tt := range tests {
		t.Run(tt.alarm, func(t *testing.T) {
			p := find(t, tt.alarm)
			if p["Namespace"] != tt.namespace || p["MetricName"] != tt.metric {
				t.Errorf("metric: got %v/%v, want %s/%s", p["Namespace"], p["MetricName"], tt.namespace, tt.metric)
			}
			if dims := p["Dimensions"]; tt.dimension == "" && dims != nil {
				t.Errorf("dimensions: got %v, want none", dims)
			} else if !strings.Contains(string(mustJSON(t, dims)), tt.dimension) {
				t.Errorf("dimensions: got %v, want %s", dims, tt.dimension)
			}
			if p["Statistic"] != tt.statistic || p["Period"] != tt.period {
				t.Errorf("got %v over %vs, want %s over %vs", p["Statistic"], p["Period"], tt.statistic, tt.period)
			}
			datapoints := p["DatapointsToAlarm"]
			if datapoints == nil {
				datapoints = p["EvaluationPeriods"]
			}
			if p["EvaluationPeriods"] != tt.periods || datapoints != tt.periods {
				t.Errorf("got %v of %v periods, want %v of %v", datapoints, p["EvaluationPeriods"], tt.periods, tt.periods)
			}
		})
	}

	t.Run("ExecutionsFailed says exhaustion does not count", func(t *testing.T) {
		desc, _ := find(t, "ExecutionsFailed")["AlarmDescription"].(string)
		for _, want := range []string{"Succeed", "Exhausted", "Catch", "hookstep.Stranded", "hookstep.UnknownOutcome"} {
			if !strings.Contains(desc, want) {
				t.Errorf("description %q does not mention %s", desc, want)
			}
		}
	})
	t.Run("Throttles", func(t *testing.T) {
		metrics := string(mustJSON(t, find(t, "Throttles")["Metrics"]))
		for _, fn := range stack.Functions {
			id, _ := s.tmpl.function(t, fn)
			if !strings.Contains(metrics, id) {
				t.Errorf("throttles alarm does not watch %s", fn)
			}
		}
	})
	t.Run("TableThrottles", func(t *testing.T) {
		var metrics []struct {
			Expression string
			MetricStat struct {
				Metric struct {
					Namespace, MetricName string
					Dimensions            []map[string]any
				}
				Stat string
			}
		}
		if err := json.Unmarshal(mustJSON(t, find(t, "TableThrottles")["Metrics"]), &metrics); err != nil {
			t.Fatal(err)
		}
		var ops []string
		for _, m := range metrics {
			if m.Expression != "" {
				continue
			}
			mm := m.MetricStat.Metric
			if mm.Namespace != "AWS/DynamoDB" || mm.MetricName != "ThrottledRequests" || m.MetricStat.Stat != "Sum" {
				t.Errorf("got %s/%s %s, want AWS/DynamoDB/ThrottledRequests Sum", mm.Namespace, mm.MetricName, m.MetricStat.Stat)
			}
			for _, d := range mm.Dimensions {
				switch d["Name"] {
				case "Operation":
					ops = append(ops, d["Value"].(string))
				case "TableName":
					if !jsonEqual(d["Value"], ref(tableID)) {
						t.Errorf("TableName: got %v, want the table", d["Value"])
					}
				}
			}
		}
		slices.Sort(ops)
		want := []string{"BatchGetItem", "BatchWriteItem", "DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"}
		if !slices.Equal(ops, want) {
			t.Errorf("operations: got %v, want %v", ops, want)
		}
	})
}

// TestDispatchBacklogFollowsSweepRate checks that the backlog alarm's
// period is one sweep: each scheduled sweep publishes the metric once,
// and periods without a sweep would be missing data, which never
// breaches. It alarms after 10 minutes of sweeps, and at least two.
func TestDispatchBacklogFollowsSweepRate(t *testing.T) {
	tests := []struct {
		rate            time.Duration
		period, periods float64
	}{
		{3 * time.Minute, 180, 4},
		{5 * time.Minute, 300, 2},
		{time.Hour, 3600, 2},
	}
	for _, tt := range tests {
		t.Run(tt.rate.String(), func(t *testing.T) {
			s := synth(t, stack.Props{SweepRate: tt.rate})
			for id, a := range s.tmpl.ofType("AWS::CloudWatch::Alarm") {
				if !strings.HasPrefix(id, "DispatchBacklogAlarm") {
					continue
				}
				p := a.Properties
				if p["Period"] != tt.period || p["EvaluationPeriods"] != tt.periods || p["DatapointsToAlarm"] != tt.periods {
					t.Errorf("got %v of %v periods of %vs, want %v of %v of %vs",
						p["DatapointsToAlarm"], p["EvaluationPeriods"], p["Period"], tt.periods, tt.periods, tt.period)
				}
				return
			}
			t.Fatal("no DispatchBacklog alarm")
		})
	}
}

func TestPropsAreValidated(t *testing.T) {
	build := filepath.Join(workDir, "build")
	tests := []struct {
		name  string
		props stack.Props
		want  string
	}{
		{"fractional wait", stack.Props{Schedule: webhook.Schedule{1500 * time.Millisecond}}, "schedule[0]"},
		{"negative wait", stack.Props{Schedule: webhook.Schedule{time.Second, -time.Second}}, "schedule[1]"},
		{"HTTP budget beyond Lambda's limit", stack.Props{HTTPTimeout: 10 * time.Minute}, "HTTPTimeout"},
		{"sub-minute sweep", stack.Props{SweepRate: 90 * time.Second}, "SweepRate"},
		{"sweep slower than daily", stack.Props{SweepRate: 25 * time.Hour}, "SweepRate"},
		{"domain without certificate", stack.Props{DomainName: "hooks.example.com"}, "CertificateARN"},
		{"negative api concurrency", stack.Props{APIConcurrency: new(-1)}, "APIConcurrency"},
		{"negative deliver concurrency", stack.Props{DeliverConcurrency: new(-5)}, "DeliverConcurrency"},
		{"negative sweeper concurrency", stack.Props{SweeperConcurrency: new(-1)}, "SweeperConcurrency"},
		{"negative dispatch rate", stack.Props{DispatchRate: -1}, "DispatchRate"},
		{"dispatch rate below a start per instance a second", stack.Props{DispatchRate: 4, SweeperConcurrency: new(5)}, "DispatchRate"},
		{"warm reads below a new table's", stack.Props{WarmThroughput: stack.WarmThroughput{ReadUnitsPerSecond: 100}}, "ReadUnitsPerSecond"},
		{"warm writes below a new table's", stack.Props{WarmThroughput: stack.WarmThroughput{WriteUnitsPerSecond: 3999}}, "WriteUnitsPerSecond"},
		{"unknown architecture", stack.Props{Architecture: "amd64"}, "Architecture"},
		{"unknown API kind", stack.Props{API: "v2"}, "API"},
		{"retention beyond 90 days", stack.Props{RetentionDays: 91}, "RetentionDays"},
		{"negative retention", stack.Props{RetentionDays: -1}, "RetentionDays"},
		{"a portal frame ancestor with a path", stack.Props{PortalFrameAncestors: []string{"https://app.example.com/webhooks"}}, "PortalFrameAncestors"},
		{"a plain-http portal frame ancestor", stack.Props{PortalFrameAncestors: []string{"http://app.example.com"}}, "PortalFrameAncestors"},
		{"functions not built", stack.Props{AssetDir: filepath.Join(workDir, "nowhere")}, "make build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.props.AssetDir == "" {
				tt.props.AssetDir = build
			}
			_, err := stack.New(awscdk.NewApp(nil), "Hookstep", &tt.props)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRetention checks the api's default payload retention: the days as
// a Go duration, which TTL then enforces. No other function reads it.
func TestRetention(t *testing.T) {
	for _, tt := range []struct {
		days int
		want string
	}{
		{0, "720h"}, // the default: 30 days
		{1, "24h"},
		{90, "2160h"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			s := defaultStack()
			if tt.days != 0 {
				s = synth(t, stack.Props{RetentionDays: tt.days})
			}
			for _, name := range stack.Functions {
				_, fn := s.tmpl.function(t, name)
				got, ok := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)["HOOKSTEP_RETENTION"]
				if name != "api" {
					if ok {
						t.Errorf("%s: got HOOKSTEP_RETENTION %v, want none", name, got)
					}
					continue
				}
				d, err := time.ParseDuration(fmt.Sprint(got))
				if got != tt.want || err != nil || d%(24*time.Hour) != 0 {
					t.Errorf("api: got HOOKSTEP_RETENTION %v (%v), want %s", got, err, tt.want)
				}
			}
		})
	}
}

// TestPortalProps: the origins that may frame the customers' portal and
// its name reach the api function; without them the variables are absent
// (the portal is not framable, and is called "Webhooks").
func TestPortalProps(t *testing.T) {
	env := func(s synthesized, name string) map[string]any {
		_, fn := s.tmpl.function(t, name)
		return fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
	}
	s := synth(t, stack.Props{PortalFrameAncestors: []string{"https://app.example.com", "https://admin.example.com:8443"}, PortalName: "Acme webhooks"})
	api := env(s, "api")
	if api["HOOKSTEP_PORTAL_FRAME_ANCESTORS"] != "https://app.example.com https://admin.example.com:8443" || api["HOOKSTEP_PORTAL_NAME"] != "Acme webhooks" {
		t.Errorf("api environment: %v", api)
	}
	for _, name := range stack.Functions {
		vars := env(defaultStack(), name)
		if _, ok := vars["HOOKSTEP_PORTAL_FRAME_ANCESTORS"]; ok {
			t.Errorf("%s: HOOKSTEP_PORTAL_FRAME_ANCESTORS without the prop", name)
		}
	}
}
