package stack_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/dynamo"
)

// stateMachineLogDelivery are the actions Step Functions needs to deliver
// execution logs; AWS defines them on "*" only.
var stateMachineLogDelivery = []string{
	"logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
	"logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
	"logs:PutResourcePolicy", "logs:UpdateLogDelivery",
}

// statement is one IAM policy statement with its actions normalised to a
// list.
type statement struct {
	role      string // logical id of the role the policy is attached to
	actions   []string
	resources string // JSON of Resource, for matching logical ids
	effect    string
}

func statements(t *testing.T, c cfnTemplate) []statement {
	t.Helper()
	var out []statement
	for id, p := range c.ofType("AWS::IAM::Policy") {
		roles, _ := p.Properties["Roles"].([]any)
		if len(roles) != 1 {
			t.Fatalf("policy %s is attached to %d roles, want 1", id, len(roles))
		}
		role := roles[0].(map[string]any)["Ref"].(string)
		doc := p.Properties["PolicyDocument"].(map[string]any)
		for _, raw := range doc["Statement"].([]any) {
			st := raw.(map[string]any)
			var actions []string
			switch a := st["Action"].(type) {
			case string:
				actions = []string{a}
			case []any:
				for _, x := range a {
					actions = append(actions, x.(string))
				}
			}
			out = append(out, statement{
				role: role, actions: actions, effect: st["Effect"].(string),
				resources: string(mustJSON(t, st["Resource"])),
			})
		}
	}
	return out
}

func TestIAMHasNoWildcardActions(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			s := v.stack()
			tableID, _ := s.tmpl.only(t, "AWS::DynamoDB::Table")
			for _, st := range statements(t, s.tmpl) {
				for _, a := range st.actions {
					if strings.Contains(a, "*") {
						t.Errorf("role %s: wildcard action %q on %s", st.role, a, st.resources)
					}
				}
				if strings.Contains(st.resources, tableID) {
					for _, a := range st.actions {
						if !strings.HasPrefix(a, "dynamodb:") {
							t.Errorf("role %s: non-DynamoDB action %q on the table", st.role, a)
						}
					}
				}
			}
			if n := len(s.tmpl.ofType("AWS::IAM::ManagedPolicy")); n != 0 {
				t.Errorf("got %d customer managed policies, want grants only", n)
			}
		})
	}
}

// TestIAMManagedPolicies allows exactly the AWS managed policies CDK
// attaches for logging, and never a *FullAccess one: each function's,
// and with a REST API the account's API Gateway CloudWatch role (an
// HTTP API needs none).
func TestIAMManagedPolicies(t *testing.T) {
	t.Run("rest", func(t *testing.T) {
		checkManagedPolicies(t, defaultStack(), "AWSLambdaBasicExecutionRole", "AWSLambdaBasicExecutionRole", "AWSLambdaBasicExecutionRole", "AmazonAPIGatewayPushToCloudWatchLogs")
	})
	t.Run("http", func(t *testing.T) {
		checkManagedPolicies(t, httpStack(), "AWSLambdaBasicExecutionRole", "AWSLambdaBasicExecutionRole", "AWSLambdaBasicExecutionRole")
	})
}

func checkManagedPolicies(t *testing.T, s synthesized, want ...string) {
	t.Helper()
	var got []string
	for id, r := range s.tmpl.ofType("AWS::IAM::Role") {
		arns := string(mustJSON(t, r.Properties["ManagedPolicyArns"]))
		if strings.Contains(arns, "FullAccess") {
			t.Errorf("role %s has a FullAccess policy: %s", id, arns)
		}
		for _, name := range []string{"AWSLambdaBasicExecutionRole", "AmazonAPIGatewayPushToCloudWatchLogs"} {
			if strings.Contains(arns, ":iam::aws:policy/service-role/"+name) {
				got = append(got, name)
			}
		}
		if strings.Count(arns, ":iam::aws:policy/") != strings.Count(arns, ":iam::aws:policy/service-role/") {
			t.Errorf("role %s has an unexpected managed policy: %s", id, arns)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("managed policies: got %v, want %v", got, want)
	}
}

// TestIAMGrants spells out, statement by statement, what each role may
// do on which resource, in both dispatch modes. Each function's DynamoDB
// actions are the ones its code paths issue (see iam.go): no Scan, no
// stream or transaction actions, no DescribeTable; index ARNs only for
// Query, and only where the function queries. The SQS actions are the
// calls each function makes and, for deliver, the event source
// mapping's: no sqs:GetQueueUrl, which CDK's grants add.
func TestIAMGrants(t *testing.T) {
	t.Run("stepfunctions", func(t *testing.T) {
		s := defaultStack()
		c := grantContext(t, s)
		checkGrants(t, s, map[string][]grant{
			"api": append(c.apiBase,
				// A message's first runs.
				allow([]string{"states:StartExecution"}, ref(c.smID)),
			),
			"deliver":      {c.deliverTable},
			"sweeper":      c.sweeperBase,
			"stateMachine": c.stateMachine,
		})
	})
	t.Run("queue", func(t *testing.T) {
		s := queueStack()
		c := grantContext(t, s)
		queueID, dlqID := queues(t, s)
		queue, dlq := getAttArn(queueID), getAttArn(dlqID)
		checkGrants(t, s, map[string][]grant{
			// No StartExecution: new deliveries go to the queue.
			"api": append(c.apiBase, allow([]string{"sqs:SendMessage"}, queue)),
			"deliver": {
				c.deliverTable,
				// The event source mapping's receive, delete and
				// attributes; the function's own visibility change, and
				// its re-send of a throttled run, delayed.
				allow([]string{"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"}, queue),
				// A delivery that needs a retry: the state machine by
				// the ARN its name gives (see TestQueueStateMachine).
				allow([]string{"states:StartExecution"}, stateMachineARN("Hookstep-delivery")),
			},
			"sweeper": append(c.sweeperBase,
				allow([]string{"sqs:SendMessage"}, queue),
				allow([]string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}, dlq),
			),
			"stateMachine": c.stateMachine,
		})
	})
}

func allow(actions []string, resources ...any) grant { return grant{actions, resources} }

// grants is what the roles may do in both dispatch modes.
type grants struct {
	smID         string
	apiBase      []grant
	deliverTable grant
	sweeperBase  []grant
	stateMachine []grant
}

func grantContext(t *testing.T, s synthesized) grants {
	t.Helper()
	tableID, _ := s.tmpl.only(t, "AWS::DynamoDB::Table")
	smID, _ := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	secretID, _ := s.tmpl.only(t, "AWS::SecretsManager::Secret")
	deliverID, _ := s.tmpl.function(t, "deliver")
	sweeperID, _ := s.tmpl.function(t, "sweeper")

	table := getAttArn(tableID)
	index := func(name string) any { return map[string]any{"Fn::Join": []any{"", []any{table, "/index/" + name}}} }
	// arn:<partition>:states:<region>:<account>:execution:<state machine name>:*
	executions := map[string]any{"Fn::Join": []any{"", []any{
		"arn:", ref("AWS::Partition"), ":states:", ref("AWS::Region"), ":", ref("AWS::AccountId"), ":execution:",
		map[string]any{"Fn::Select": []any{6, map[string]any{"Fn::Split": []any{":", ref(smID)}}}},
		":*",
	}}}
	return grants{
		smID: smID,
		apiBase: []grant{
			allow([]string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
				"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}, table),
			allow([]string{"dynamodb:Query"}, index(dynamo.IndexList), index(dynamo.IndexEndpoint), index(dynamo.IndexSweep)),
			allow([]string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}, ref(secretID)),
			// The hand-off to the sweeper: the function itself, no
			// version or alias.
			allow([]string{"lambda:InvokeFunction"}, getAttArn(sweeperID)),
		},
		deliverTable: allow([]string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem",
			"dynamodb:Query", "dynamodb:UpdateItem"}, table),
		sweeperBase: []grant{
			allow([]string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem",
				"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}, table),
			allow([]string{"dynamodb:Query"}, index(dynamo.IndexSweep), index(dynamo.IndexEndpoint)),
			allow([]string{"states:StartExecution"}, ref(smID)),
			allow([]string{"states:DescribeExecution"}, executions),
		},
		stateMachine: []grant{
			allow([]string{"lambda:InvokeFunction"}, getAttArn(deliverID), map[string]any{"Fn::Join": []any{"", []any{getAttArn(deliverID), ":*"}}}),
			allow(stateMachineLogDelivery, "*"),
		},
	}
}

// checkGrants compares every statement of each principal's role with
// want, whatever their order.
func checkGrants(t *testing.T, s synthesized, want map[string][]grant) {
	t.Helper()
	_, sm := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	roleOf := map[string]string{} // principal → role logical id
	for _, name := range stack.Functions {
		_, fn := s.tmpl.function(t, name)
		roleOf[name] = fn.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	}
	roleOf["stateMachine"] = sm.Properties["RoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)

	all := statements(t, s.tmpl)
	for principal, grants := range want {
		t.Run(principal, func(t *testing.T) {
			var got []string
			for _, st := range all {
				if st.role != roleOf[principal] {
					continue
				}
				if st.effect != "Allow" {
					t.Errorf("unexpected %s statement %v", st.effect, st.actions)
				}
				var resources []any
				if err := json.Unmarshal([]byte(st.resources), &resources); err != nil {
					var one any
					if err := json.Unmarshal([]byte(st.resources), &one); err != nil {
						t.Fatal(err)
					}
					resources = []any{one}
				}
				got = append(got, grant{st.actions, resources}.String(t))
			}
			var wantStrings []string
			for _, g := range grants {
				wantStrings = append(wantStrings, g.String(t))
			}
			sort.Strings(got)
			sort.Strings(wantStrings)
			if !slices.Equal(got, wantStrings) {
				t.Errorf("statements of %s:\n got %s\nwant %s", principal, strings.Join(got, "\n     "), strings.Join(wantStrings, "\n     "))
			}
		})
	}
}

// grant is one Allow statement: actions on resources.
type grant struct {
	actions   []string
	resources []any
}

// String is the statement in a form that compares equal whatever the
// order of its actions.
func (g grant) String(t *testing.T) string {
	t.Helper()
	actions := slices.Clone(g.actions)
	sort.Strings(actions)
	return string(mustJSON(t, map[string]any{"actions": actions, "resources": g.resources}))
}
