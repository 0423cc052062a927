package stack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/webhook"
)

// definition is the part of an Amazon States Language document the tests
// read, with just enough of the Choice semantics to walk it.
type definition struct {
	StartAt string           `json:"StartAt"`
	States  map[string]state `json:"States"`
}

type state struct {
	Type       string         `json:"Type"`
	Next       string         `json:"Next"`
	End        bool           `json:"End"`
	Seconds    *float64       `json:"Seconds"`
	Resource   string         `json:"Resource"`
	Parameters map[string]any `json:"Parameters"`
	ResultPath string         `json:"ResultPath"`
	Retry      []struct {
		ErrorEquals []string `json:"ErrorEquals"`
		MaxAttempts int      `json:"MaxAttempts"`
		BackoffRate float64  `json:"BackoffRate"`
	} `json:"Retry"`
	Catch   []any        `json:"Catch"`
	Choices []choiceRule `json:"Choices"`
	Default string       `json:"Default"`
	Error   string       `json:"Error"`
}

type choiceRule struct {
	Variable      string       `json:"Variable"`
	StringEquals  *string      `json:"StringEquals"`
	BooleanEquals *bool        `json:"BooleanEquals"`
	And           []choiceRule `json:"And"`
	Next          string       `json:"Next"`
}

// result is what the deliver function returns, as the Choice states see
// it at $.result.
type result struct {
	Outcome string `json:"outcome"`
	Final   bool   `json:"final"`
}

// matches evaluates the operators the generated Choices use; anything
// else fails the test rather than being guessed at.
func (r choiceRule) matches(t *testing.T, res result) bool {
	t.Helper()
	if r.And != nil {
		for _, c := range r.And {
			if !c.matches(t, res) {
				return false
			}
		}
		return true
	}
	switch {
	case r.Variable == stack.ResultPath+".outcome" && r.StringEquals != nil:
		return res.Outcome == *r.StringEquals
	case r.Variable == stack.ResultPath+".final" && r.BooleanEquals != nil:
		return res.Final == *r.BooleanEquals
	}
	t.Fatalf("choice rule %+v: not a comparison the state machine is expected to make", r)
	return false
}

// choose returns the state a Choice goes to for res.
func (d definition) choose(t *testing.T, name string, res result) string {
	t.Helper()
	s := d.States[name]
	if s.Type != "Choice" {
		t.Fatalf("%s is a %s, want a Choice", name, s.Type)
	}
	for _, r := range s.Choices {
		if r.matches(t, res) {
			return r.Next
		}
	}
	return s.Default
}

// walk follows the state machine from StartAt, answering every Choice
// with outcome(attempt), until a terminal state. It returns the states
// visited and the Wait states' seconds, in order.
func (d definition) walk(t *testing.T, outcome func(attempt int) result) (path []string, waits []time.Duration) {
	t.Helper()
	attempt := 0
	for name := d.StartAt; ; {
		path = append(path, name)
		if len(path) > 1000 {
			t.Fatalf("no terminal state after %v", path[:20])
		}
		s, ok := d.States[name]
		if !ok {
			t.Fatalf("transition to undefined state %q after %v", name, path)
		}
		switch s.Type {
		case "Succeed", "Fail":
			return path, waits
		case "Task":
			if strings.HasPrefix(name, stack.DeliverStatePrefix) {
				attempt++
			}
			name = s.Next
		case "Choice":
			name = d.choose(t, name, outcome(attempt))
		case "Wait":
			if s.Seconds == nil {
				t.Fatalf("%s: want a fixed Seconds", name)
			}
			waits = append(waits, time.Duration(*s.Seconds)*time.Second)
			name = s.Next
		default:
			t.Fatalf("%s: unexpected state type %s", name, s.Type)
		}
		if name == "" {
			t.Fatalf("state %s has no Next", path[len(path)-1])
		}
	}
}

// definitions caches the stacks definitionFor synthesized, by schedule:
// a synthesis takes seconds and several tests read the same one.
var (
	definitionsMu sync.Mutex
	definitions   = map[string]synthesized{}
)

// definitionFor synthesizes the stack with schedule and parses the state
// machine definition out of the template, the way a deployment gets it.
func definitionFor(t *testing.T, schedule webhook.Schedule) (definition, []byte) {
	t.Helper()
	definitionsMu.Lock()
	defer definitionsMu.Unlock()
	s, ok := definitions[schedule.String()]
	if !ok {
		s = defaultStack()
		if schedule != nil {
			s = synth(t, stack.Props{Schedule: schedule})
		}
		definitions[schedule.String()] = s
	}
	raw, err := stack.DefinitionFromTemplate(s.tmpl.raw)
	if err != nil {
		t.Fatal(err)
	}
	var d definition
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("definition is not JSON: %v", err)
	}
	return d, raw
}

// schedules are the schedules the state machine tests generate: the
// default, compressed ones, and the edge of a single retry.
var schedules = []struct {
	name     string
	schedule webhook.Schedule // nil: the default stack
	want     webhook.Schedule
}{
	{"default", nil, webhook.DefaultSchedule},
	{"compressed", webhook.Schedule{0, time.Second, 2 * time.Second}, nil},
	{"single retry", webhook.Schedule{time.Hour}, nil},
}

func TestWaitStatesFollowSchedule(t *testing.T) {
	for _, tt := range schedules {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.schedule
			}
			d, _ := definitionFor(t, tt.schedule)

			// Every attempt fails: the path visits each Deliver, each
			// Wait in schedule order, then marks the run failed.
			path, waits := d.walk(t, func(int) result { return result{Outcome: "retry"} })
			if !slices.Equal(waits, want) {
				t.Errorf("waits in order: got %v, want %v", waits, want)
			}
			var wantPath []string
			for n := 1; n <= want.MaxAttempts(); n++ {
				wantPath = append(wantPath, fmt.Sprint(stack.DeliverStatePrefix, n), fmt.Sprint(stack.OutcomeStatePrefix, n))
				if n < want.MaxAttempts() {
					wantPath = append(wantPath, fmt.Sprint(stack.WaitStatePrefix, n))
				}
			}
			wantPath = append(wantPath, stack.MarkFailedState, stack.ExhaustedState)
			if !slices.Equal(path, wantPath) {
				t.Errorf("path when every attempt fails:\n got %v\nwant %v", path, wantPath)
			}

			// No state is unreachable: the generated states are exactly
			// the path plus the two other endings.
			if got, want := len(d.States), len(wantPath)+2; got != want {
				t.Errorf("got %d states, want %d", got, want)
			}
		})
	}
}

func TestChoicesEndRuns(t *testing.T) {
	d, _ := definitionFor(t, nil)
	attempts := webhook.DefaultSchedule.MaxAttempts()
	tests := []struct {
		name    string
		outcome func(attempt int) result
		want    string // terminal state
		visits  string // a state the path must include
	}{
		{"delivered at once", func(int) result { return result{Outcome: "delivered", Final: true} }, stack.DoneState, "Deliver1"},
		{"delivered on the last attempt", func(n int) result {
			if n == attempts {
				return result{Outcome: "delivered", Final: true}
			}
			return result{Outcome: "retry"}
		}, stack.DoneState, fmt.Sprint(stack.DeliverStatePrefix, attempts)},
		{"stop (410, endpoint disabled)", func(n int) result {
			if n == 3 {
				return result{Outcome: "stop", Final: true}
			}
			return result{Outcome: "retry"}
		}, stack.DoneState, "Wait2"},
		{"a final retry ends the run early", func(n int) result { return result{Outcome: "retry", Final: n == 2} }, stack.ExhaustedState, stack.MarkFailedState},
		{"unknown outcome", func(int) result { return result{Outcome: "maybe"} }, stack.UnknownState, "Outcome1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := d.walk(t, tt.outcome)
			if got := path[len(path)-1]; got != tt.want || !slices.Contains(path, tt.visits) {
				t.Errorf("got path %v, want it to pass %s and end at %s", path, tt.visits, tt.want)
			}
		})
	}
}

// TestDeliverTasks checks what each Task sends and retries: the ids only
// (plus the fail action for MarkFailed), results kept beside the input,
// and retries only on errors raised before the function ran.
func TestDeliverTasks(t *testing.T) {
	d, raw := definitionFor(t, nil)
	s := defaultStack()
	deliverID, _ := s.tmpl.function(t, "deliver")
	wantResource := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", stack.PlaceholderPartition, stack.PlaceholderRegion, stack.PlaceholderAccount, deliverID)
	ids := map[string]any{"appId.$": "$.appId", "msgId.$": "$.msgId", "endpointId.$": "$.endpointId", "run.$": "$.run"}

	tasks := 0
	for name, st := range d.States {
		if st.Type != "Task" {
			continue
		}
		tasks++
		t.Run(name, func(t *testing.T) {
			want := ids
			if name == stack.MarkFailedState {
				want = map[string]any{"action": "fail"}
				for k, v := range ids {
					want[k] = v
				}
			}
			if !jsonEqual(st.Parameters, want) {
				t.Errorf("Parameters: got %v, want %v", st.Parameters, want)
			}
			if st.Resource != wantResource {
				t.Errorf("Resource: got %s, want the deliver function %s", st.Resource, wantResource)
			}
			if st.ResultPath != stack.ResultPath {
				t.Errorf("ResultPath: got %q, want %q", st.ResultPath, stack.ResultPath)
			}
			if len(st.Retry) != 1 || !slices.Equal(st.Retry[0].ErrorEquals, stack.TransientLambdaErrors) ||
				st.Retry[0].MaxAttempts < 2 || st.Retry[0].BackoffRate <= 1 {
				t.Errorf("Retry: got %+v, want %v with backoff", st.Retry, stack.TransientLambdaErrors)
			}
			if st.Catch != nil {
				t.Errorf("Catch: got %v, want a failing task to fail the execution", st.Catch)
			}
		})
	}
	if want := webhook.DefaultSchedule.MaxAttempts() + 1; tasks != want {
		t.Errorf("got %d tasks, want %d (one per attempt and MarkFailed)", tasks, want)
	}
	for _, never := range []string{"States.ALL", "Lambda.Unknown", "States.TaskFailed", "Lambda.ClientExecutionTimeoutException"} {
		if bytes.Contains(raw, []byte(never)) {
			t.Errorf("definition retries %s: the POST may already have happened", never)
		}
	}
}

func TestStateMachineResource(t *testing.T) {
	s := defaultStack()
	_, sm := s.tmpl.only(t, "AWS::StepFunctions::StateMachine")
	if got := sm.Properties["StateMachineType"]; got != "STANDARD" {
		t.Errorf("StateMachineType: got %v, want STANDARD (Wait states of hours)", got)
	}
	if sm.Properties["StateMachineName"] != nil {
		t.Errorf("StateMachineName: got %v, want a generated name", sm.Properties["StateMachineName"])
	}
	logging, _ := sm.Properties["LoggingConfiguration"].(map[string]any)
	if logging["Level"] != "ERROR" || len(logging["Destinations"].([]any)) != 1 {
		t.Errorf("LoggingConfiguration: got %v, want errors logged to a log group", logging)
	}
}

// TestDefinitionMatchesTemplate checks that the exported Definition gives
// what the stack deploys.
func TestDefinitionMatchesTemplate(t *testing.T) {
	schedule := webhook.Schedule{0, time.Second, 2 * time.Second}
	got, err := stack.Definition(schedule)
	if err != nil {
		t.Fatal(err)
	}
	_, want := definitionFor(t, schedule)
	if !bytes.Equal(got, want) {
		t.Errorf("Definition(%s) differs from the synthesized template's:\n got %s\nwant %s", schedule, got, want)
	}
}

func TestDefinitionFromTemplateRejectsUnknownTokens(t *testing.T) {
	tests := map[string]string{
		"no state machine": `{"Resources": {}}`,
		"unknown attribute": `{"Resources": {"Sm": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
			"DefinitionString": {"Fn::Join": ["", ["{\"x\": \"", {"Fn::GetAtt": ["T", "StreamArn"]}, "\"}"]]}}},
			"T": {"Type": "AWS::DynamoDB::Table"}}}`,
		"unknown ref": `{"Resources": {"Sm": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
			"DefinitionString": {"Fn::Join": ["", ["{\"x\": \"", {"Ref": "Param"}, "\"}"]]}}}}}`,
	}
	for name, tmpl := range tests {
		t.Run(name, func(t *testing.T) {
			if def, err := stack.DefinitionFromTemplate([]byte(tmpl)); err == nil {
				t.Errorf("got %s, want an error", def)
			}
		})
	}
}

// TestDefinitionIsValidASL runs asl-validator, the npm package pinned in
// infra/package.json, over each generated definition.
func TestDefinitionIsValidASL(t *testing.T) {
	validator, err := filepath.Abs(filepath.Join("..", "node_modules", ".bin", "asl-validator"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(validator); err != nil {
		if os.Getenv("HOOKSTEP_REQUIRE_AWS_TOOLS") == "1" {
			t.Fatalf("asl-validator not found at %s: run `npm ci` in infra/ (make deps)", validator)
		}
		t.Skipf("asl-validator not installed (npm ci in infra/); set HOOKSTEP_REQUIRE_AWS_TOOLS=1 to require it")
	}
	for _, tt := range schedules {
		t.Run(tt.name, func(t *testing.T) {
			_, raw := definitionFor(t, tt.schedule)
			path := filepath.Join(t.TempDir(), "definition.json")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(validator, "--json-path", path).CombinedOutput()
			if err != nil {
				t.Errorf("asl-validator %s: %v\n%s", path, err, out)
			}
		})
	}
}
