package stack_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/infra/stack"
)

// queues returns the logical ids of the delivery queue and its
// dead-letter queue.
func queues(t *testing.T, s synthesized) (queueID, dlqID string) {
	t.Helper()
	for id := range s.tmpl.ofType("AWS::SQS::Queue") {
		switch {
		case strings.HasPrefix(id, "DeliveryQueue"):
			queueID = id
		case strings.HasPrefix(id, "DeadLetterQueue"):
			dlqID = id
		}
	}
	if queueID == "" || dlqID == "" {
		t.Fatalf("got queue %q and dead-letter queue %q, want both", queueID, dlqID)
	}
	return queueID, dlqID
}

// TestQueueFunctions checks what queue mode tells each function: the
// api where to send new deliveries (and no longer the state machine),
// deliver the queue and the state machine it starts retries in, the
// sweeper both queues besides what it has in stepfunctions mode.
func TestQueueFunctions(t *testing.T) {
	s := queueStack()
	tableID, _ := s.tmpl.only(t, "AWS::DynamoDB::Table")
	smID, _ := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	secretID, _ := s.tmpl.only(t, "AWS::SecretsManager::Secret")
	sweeperID, _ := s.tmpl.function(t, "sweeper")
	queueID, dlqID := queues(t, s)

	tests := []struct {
		name     string
		timeout  float64
		extraEnv map[string]any
	}{
		{"api", 28, map[string]any{
			"HOOKSTEP_DISPATCH_QUEUE_URL":     ref(queueID),
			"HOOKSTEP_DISPATCH_FUNCTION":      getAttArn(sweeperID),
			"HOOKSTEP_ADMIN_TOKEN_SECRET_ARN": ref(secretID),
			"HOOKSTEP_RETENTION":              "720h",
		}},
		// Two POSTs (the first attempt and its immediate retry) and as
		// long again to record: 3 x 15 s + 10 s.
		{"deliver", 55, map[string]any{
			"HOOKSTEP_DISPATCH_QUEUE_URL": ref(queueID),
			"HOOKSTEP_STATE_MACHINE_ARN":  stateMachineARN("Hookstep-delivery"),
		}},
		{"sweeper", 120, map[string]any{
			"HOOKSTEP_DISPATCH_QUEUE_URL":    ref(queueID),
			"HOOKSTEP_DEAD_LETTER_QUEUE_URL": ref(dlqID),
			"HOOKSTEP_STATE_MACHINE_ARN":     ref(smID),
			"HOOKSTEP_DISPATCH_RATE":         "20",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, fn := s.tmpl.function(t, tt.name)
			if got := fn.Properties["Timeout"]; got != tt.timeout {
				t.Errorf("Timeout: got %v, want %v", got, tt.timeout)
			}
			checkEnv(t, fn, sharedEnv(tableID, "queue"), tt.extraEnv)
		})
	}
}

// stateMachineARN is the ARN CloudFormation gives a state machine named
// name, as the template spells it.
func stateMachineARN(name string) any {
	return map[string]any{"Fn::Join": []any{"", []any{
		"arn:", ref("AWS::Partition"), ":states:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":stateMachine:" + name,
	}}}
}

// TestQueueStateMachine checks that deliver is told the ARN the state
// machine really gets: in queue mode it is named after the stack, since
// deliver cannot refer to it (the state machine refers to deliver; the
// assertions package refuses such a cycle when queueStack synthesizes).
// The definition is the one of stepfunctions mode.
func TestQueueStateMachine(t *testing.T) {
	s := queueStack()
	_, sm := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	name, _ := sm.Properties["StateMachineName"].(string)
	if name != "Hookstep-delivery" {
		t.Fatalf("StateMachineName: got %v, want Hookstep-delivery (the stack's name)", sm.Properties["StateMachineName"])
	}
	_, deliver := s.tmpl.function(t, "deliver")
	told := deliver.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)["HOOKSTEP_STATE_MACHINE_ARN"]
	if !jsonEqual(told, stateMachineARN(name)) {
		t.Errorf("deliver's HOOKSTEP_STATE_MACHINE_ARN: got %v, want the ARN of %s", told, name)
	}

	_, plain := defaultStack().tmpl.only(t, "AWS::StepFunctions::StateMachine")
	for _, key := range []string{"DefinitionString", "StateMachineType", "LoggingConfiguration", "RoleArn"} {
		if !jsonEqual(sm.Properties[key], plain.Properties[key]) {
			t.Errorf("%s differs from stepfunctions mode's", key)
		}
	}
}

// TestQueueStateMachineNameFits checks that a stack name too long to name
// the state machine after is refused, not left to CloudFormation.
func TestQueueStateMachineNameFits(t *testing.T) {
	build := filepath.Join(workDir, "build")
	for _, tt := range []struct {
		stackName string
		ok        bool
	}{
		{strings.Repeat("H", 71), true}, // + "-delivery": Step Functions' 80
		{strings.Repeat("H", 72), false},
	} {
		t.Run(fmt.Sprint(len(tt.stackName)), func(t *testing.T) {
			app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(t.TempDir(), "cdk.out"))})
			_, err := stack.New(app, tt.stackName, &stack.Props{Dispatch: stack.DispatchQueue, AssetDir: build})
			if tt.ok && err != nil {
				t.Errorf("got %v, want none", err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "80")) {
				t.Errorf("got %v, want an error naming the limit of 80", err)
			}
		})
	}
}

func TestQueues(t *testing.T) {
	s := queueStack()
	queueID, dlqID := queues(t, s)
	_, deliver := s.tmpl.function(t, "deliver")
	const fourteenDays = 14 * 24 * 60 * 60

	// A Standard queue (no FifoQueue), encrypted by SQS, keeping messages
	// 14 days; after 5 receives a message goes to the dead-letter queue.
	want := map[string]map[string]any{
		queueID: {
			"SqsManagedSseEnabled":   true,
			"MessageRetentionPeriod": fourteenDays,
			// Six deliver timeouts: AWS's guidance for an SQS event
			// source.
			"VisibilityTimeout": 6 * deliver.Properties["Timeout"].(float64),
			"RedrivePolicy":     map[string]any{"deadLetterTargetArn": getAttArn(dlqID), "maxReceiveCount": 5},
		},
		dlqID: {
			"SqsManagedSseEnabled":   true,
			"MessageRetentionPeriod": fourteenDays,
		},
	}
	for id, props := range want {
		t.Run(id, func(t *testing.T) {
			if got := s.tmpl.Resources[id].Properties; !jsonEqual(got, props) {
				t.Errorf("properties:\n got %v\nwant %v", got, props)
			}
		})
	}

	// Both refuse requests without TLS. The ended executions' dead-letter
	// queue also lets its EventBridge rule, and only it, send (a service
	// principal has no role to grant it).
	for id, qp := range s.tmpl.ofType("AWS::SQS::QueuePolicy") {
		doc := string(mustJSON(t, qp.Properties["PolicyDocument"]))
		if !strings.Contains(doc, `"Effect":"Deny"`) || !strings.Contains(doc, `"aws:SecureTransport":"false"`) {
			t.Errorf("queue policy %s: got %s, want only a deny of requests without TLS", id, doc)
		}
		allows := strings.Count(doc, `"Effect":"Allow"`)
		switch {
		case strings.HasPrefix(id, "EndedDeadLetters"):
			if allows != 1 || !strings.Contains(doc, `"Action":"sqs:SendMessage"`) || !strings.Contains(doc, `"Service":"events.amazonaws.com"`) ||
				!strings.Contains(doc, `"aws:SourceArn":{"Fn::GetAtt":["ExecutionEnded`) {
				t.Errorf("queue policy %s: got %s, want SendMessage for the ExecutionEnded rule alone", id, doc)
			}
		case allows > 0:
			t.Errorf("queue policy %s allows: grants belong to the roles (%s)", id, doc)
		}
	}
}

func TestQueueEventSource(t *testing.T) {
	tests := []struct {
		name               string
		props              stack.Props
		batch, concurrency float64
	}{
		{"default", stack.Props{Dispatch: stack.DispatchQueue}, 10, 100},
		{"chosen", stack.Props{Dispatch: stack.DispatchQueue, QueueBatchSize: 4, QueueConcurrency: 20, DeliverConcurrency: new(20)}, 4, 20},
		// Unreserved deliver: any concurrency SQS allows.
		{"unreserved deliver", stack.Props{Dispatch: stack.DispatchQueue, QueueConcurrency: 1000, DeliverConcurrency: new(0)}, 10, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := queueStack()
			if tt.name != "default" {
				s = synth(t, tt.props)
			}
			queueID, _ := queues(t, s)
			deliverID, _ := s.tmpl.function(t, "deliver")
			smID, _ := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
			_, esm := s.tmpl.only(t, "AWS::Lambda::EventSourceMapping")
			want := map[string]any{
				"EventSourceArn":                 getAttArn(queueID),
				"FunctionName":                   ref(deliverID),
				"BatchSize":                      tt.batch,
				"MaximumBatchingWindowInSeconds": 0, // first attempts go out at once
				"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
				"ScalingConfig":                  map[string]any{"MaximumConcurrency": tt.concurrency},
			}
			if !jsonEqual(esm.Properties, want) {
				t.Errorf("properties:\n got %v\nwant %v", esm.Properties, want)
			}
			// A failed first attempt starts an execution: the state
			// machine exists before the first message is received.
			if !slices.Contains(esm.DependsOn, smID) {
				t.Errorf("the event source mapping does not wait for the state machine %s", smID)
			}
		})
	}
}

// TestQueueTimeoutsFollowTheHTTPBudget checks the chain from the HTTP
// budget to the visibility timeout: deliver's timeout holds two POSTs
// and as long again to record, and the queue hides a received message
// for six of those.
func TestQueueTimeoutsFollowTheHTTPBudget(t *testing.T) {
	for _, budget := range []time.Duration{stack.DefaultHTTPTimeout, 2 * time.Minute} {
		t.Run(budget.String(), func(t *testing.T) {
			s := queueStack()
			if budget != stack.DefaultHTTPTimeout {
				s = synth(t, stack.Props{Dispatch: stack.DispatchQueue, HTTPTimeout: budget})
			}
			_, fn := s.tmpl.function(t, "deliver")
			timeout := fn.Properties["Timeout"].(float64)
			if timeout < 3*budget.Seconds() {
				t.Errorf("deliver timeout %vs < 3 x HTTP budget %s", timeout, budget)
			}
			queueID, _ := queues(t, s)
			if got := s.tmpl.Resources[queueID].Properties["VisibilityTimeout"]; got != 6*timeout {
				t.Errorf("VisibilityTimeout: got %v, want 6 x the deliver timeout %vs", got, timeout)
			}
		})
	}
}

func TestQueueAlarms(t *testing.T) {
	tests := []struct {
		name        string
		budget      time.Duration
		ageSeconds  float64
		description string
	}{
		// 10 minutes: past one visibility timeout (330 s), so a single
		// failed invocation is not a backlog.
		{"default", stack.DefaultHTTPTimeout, 600, "10m0s"},
		// A visibility timeout of 6 x (3 x 120 s + 10 s) = 2,220 s is
		// longer than 10 minutes: a minute more than it.
		{"long HTTP budget", 2 * time.Minute, 2280, "38m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := queueStack()
			if tt.budget != stack.DefaultHTTPTimeout {
				s = synth(t, stack.Props{Dispatch: stack.DispatchQueue, HTTPTimeout: tt.budget})
			}
			queueID, dlqID := queues(t, s)
			for _, a := range []struct {
				id, metric, queue string
				threshold         float64
			}{
				{"DeadLetterQueue", "ApproximateNumberOfMessagesVisible", dlqID, 1},
				{"QueueAge", "ApproximateAgeOfOldestMessage", queueID, tt.ageSeconds},
			} {
				p := alarm(t, s, a.id)
				if p["Namespace"] != "AWS/SQS" || p["MetricName"] != a.metric || p["Statistic"] != "Maximum" || p["Period"] != 300.0 {
					t.Errorf("%s: got %v/%v %v over %v, want AWS/SQS/%s Maximum over 300", a.id, p["Namespace"], p["MetricName"], p["Statistic"], p["Period"], a.metric)
				}
				want := []any{map[string]any{"Name": "QueueName", "Value": map[string]any{"Fn::GetAtt": []any{a.queue, "QueueName"}}}}
				if !jsonEqual(p["Dimensions"], want) {
					t.Errorf("%s dimensions: got %v, want %v", a.id, p["Dimensions"], want)
				}
				if p["Threshold"] != a.threshold || p["ComparisonOperator"] != "GreaterThanOrEqualToThreshold" || p["EvaluationPeriods"] != 1.0 {
					t.Errorf("%s: got %v %v over %v periods, want >= %v in one", a.id, p["ComparisonOperator"], p["Threshold"], p["EvaluationPeriods"], a.threshold)
				}
			}
			if desc, _ := alarm(t, s, "QueueAge")["AlarmDescription"].(string); !strings.Contains(desc, tt.description) {
				t.Errorf("QueueAge description %q does not say %s", desc, tt.description)
			}
		})
	}
}

func TestQueuePropsAreValidated(t *testing.T) {
	build := filepath.Join(workDir, "build")
	queue := stack.DispatchQueue
	tests := []struct {
		name  string
		props stack.Props
		want  string // "" when valid
	}{
		{"one instance", stack.Props{Dispatch: queue, QueueConcurrency: 1}, "QueueConcurrency"},
		{"beyond SQS's 1000", stack.Props{Dispatch: queue, QueueConcurrency: 1001, DeliverConcurrency: new(0)}, "QueueConcurrency"},
		{"negative concurrency", stack.Props{Dispatch: queue, QueueConcurrency: -2}, "QueueConcurrency"},
		{"more than deliver's reservation", stack.Props{Dispatch: queue, QueueConcurrency: 301}, "DeliverConcurrency"},
		{"the default over a small reservation", stack.Props{Dispatch: queue, DeliverConcurrency: new(50)}, "QueueConcurrency"},
		{"batch beyond 10", stack.Props{Dispatch: queue, QueueBatchSize: 11}, "QueueBatchSize"},
		{"negative batch", stack.Props{Dispatch: queue, QueueBatchSize: -1}, "QueueBatchSize"},
		{"HTTP budget whose three do not fit Lambda", stack.Props{Dispatch: queue, HTTPTimeout: 5 * time.Minute}, "HTTPTimeout"},
		{"unknown dispatch", stack.Props{Dispatch: "sqs"}, "Dispatch"},
		// Queue props mean nothing in stepfunctions mode.
		{"stepfunctions with a small deliver reservation", stack.Props{DeliverConcurrency: new(50)}, ""},
		{"stepfunctions with a long HTTP budget", stack.Props{HTTPTimeout: 5 * time.Minute}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.props.AssetDir = build
			app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(t.TempDir(), "cdk.out"))})
			_, err := stack.New(app, "Hookstep", &tt.props)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
