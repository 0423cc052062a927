package stack_test

import (
	"slices"
	"sort"
	"strings"
	"testing"
)

// tableReadWrite is what table.GrantReadWriteData grants: named actions
// (no "dynamodb:*") on the table and its indexes.
var tableReadWrite = []string{
	"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
	"dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem",
	"dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:PutItem",
	"dynamodb:Query", "dynamodb:Scan", "dynamodb:UpdateItem",
}

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
	s := defaultStack()
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
}

// TestIAMManagedPolicies allows exactly the two AWS managed policies CDK
// attaches for logging, and never a *FullAccess one.
func TestIAMManagedPolicies(t *testing.T) {
	s := defaultStack()
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
	want := []string{"AWSLambdaBasicExecutionRole", "AWSLambdaBasicExecutionRole", "AWSLambdaBasicExecutionRole", "AmazonAPIGatewayPushToCloudWatchLogs"}
	if !slices.Equal(got, want) {
		t.Errorf("managed policies: got %v, want %v", got, want)
	}
}

// TestIAMGrants spells out who may do what, on which resource.
func TestIAMGrants(t *testing.T) {
	s := defaultStack()
	tableID, _ := s.tmpl.only(t, "AWS::DynamoDB::Table")
	smID, sm := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	secretID, _ := s.tmpl.only(t, "AWS::SecretsManager::Secret")
	deliverID, _ := s.tmpl.function(t, "deliver")

	roleOf := map[string]string{} // principal → role logical id
	for _, name := range []string{"api", "deliver", "sweeper"} {
		_, fn := s.tmpl.function(t, name)
		roleOf[name] = fn.Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
	}
	roleOf["stateMachine"] = sm.Properties["RoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)

	// grant: the actions a principal has on resources whose JSON
	// mentions on ("*" for the literal wildcard resource).
	type grant struct {
		on      string
		actions []string
	}
	startExecution := grant{smID, []string{"states:StartExecution"}}
	tests := []struct {
		principal string
		want      []grant
	}{
		{"api", []grant{{tableID, tableReadWrite}, startExecution, {secretID, []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}}}},
		{"deliver", []grant{{tableID, tableReadWrite}}},
		{"sweeper", []grant{{tableID, tableReadWrite}, startExecution}},
		{"stateMachine", []grant{{deliverID, []string{"lambda:InvokeFunction"}}, {`"*"`, stateMachineLogDelivery}}},
	}
	all := statements(t, s.tmpl)
	for _, tt := range tests {
		t.Run(tt.principal, func(t *testing.T) {
			var got []grant
			for _, st := range all {
				if st.role != roleOf[tt.principal] {
					continue
				}
				if st.effect != "Allow" {
					t.Errorf("unexpected %s statement %v", st.effect, st.actions)
				}
				on := "?" + st.resources
				for _, w := range tt.want {
					if strings.Contains(st.resources, w.on) {
						on = w.on
					}
				}
				merged := false
				for i := range got {
					if got[i].on == on {
						got[i].actions, merged = append(got[i].actions, st.actions...), true
					}
				}
				if !merged {
					got = append(got, grant{on, slices.Clone(st.actions)})
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got grants %v, want %v", got, tt.want)
			}
			for _, w := range tt.want {
				i := slices.IndexFunc(got, func(g grant) bool { return g.on == w.on })
				if i < 0 {
					t.Errorf("no grant on %s, want %v", w.on, w.actions)
					continue
				}
				g := slices.Clone(got[i].actions)
				sort.Strings(g)
				if !slices.Equal(g, w.actions) {
					t.Errorf("on %s: got %v, want %v", w.on, g, w.actions)
				}
			}
		})
	}
}
