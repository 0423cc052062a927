package stack_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	Type          string         `json:"Type"`
	Next          string         `json:"Next"`
	End           bool           `json:"End"`
	Seconds       *float64       `json:"Seconds"`
	TimestampPath string         `json:"TimestampPath"`
	Resource      string         `json:"Resource"`
	Parameters    map[string]any `json:"Parameters"`
	ResultPath    string         `json:"ResultPath"`
	Retry         []retrier      `json:"Retry"`
	Catch         []struct {
		ErrorEquals []string `json:"ErrorEquals"`
		ResultPath  string   `json:"ResultPath"`
		Next        string   `json:"Next"`
	} `json:"Catch"`
	Choices []choiceRule `json:"Choices"`
	Default string       `json:"Default"`
	Error   string       `json:"Error"`
}

type retrier struct {
	ErrorEquals     []string `json:"ErrorEquals"`
	IntervalSeconds int      `json:"IntervalSeconds"`
	MaxAttempts     int      `json:"MaxAttempts"`
	BackoffRate     float64  `json:"BackoffRate"`
}

type choiceRule struct {
	Variable      string       `json:"Variable"`
	StringEquals  *string      `json:"StringEquals"`
	BooleanEquals *bool        `json:"BooleanEquals"`
	NumericEquals *float64     `json:"NumericEquals"`
	IsPresent     *bool        `json:"IsPresent"`
	And           []choiceRule `json:"And"`
	Next          string       `json:"Next"`
}

// result is what the deliver function returns, as the Choice state sees
// it at $.result.
type result struct {
	Outcome  string `json:"outcome"`
	Attempt  int    `json:"attempt"`
	Final    bool   `json:"final"`
	ResumeAt string `json:"resumeAt"`
}

// matches evaluates the operators the generated Choice uses; anything
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
	case r.Variable == stack.ResultPath+".attempt" && r.NumericEquals != nil:
		return float64(res.Attempt) == *r.NumericEquals
	case r.Variable == stack.ResultPath+".resumeAt" && r.IsPresent != nil:
		return (res.ResumeAt != "") == *r.IsPresent
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

// task is what the walk's stand-in for the deliver function does at a
// Task: its result, or, with fail set, an error the Task does not retry.
type task struct {
	res  result
	fail bool
}

// walk follows the state machine from StartAt until a terminal state,
// answering each Task with do(state, n), n counting that state's visits
// from 1, and following the Catch of a Task that fails. It returns the
// states visited and the Wait states' seconds, in order.
func (d definition) walk(t *testing.T, do func(state string, n int) task) (path []string, waits []time.Duration) {
	t.Helper()
	visits := map[string]int{}
	var last result
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
			visits[name]++
			out := do(name, visits[name])
			if out.fail {
				if len(s.Catch) == 0 {
					t.Fatalf("%s failed and has no Catch", name)
				}
				name = s.Catch[0].Next
				continue
			}
			last = out.res
			name = s.Next
		case "Choice":
			name = d.choose(t, name, last)
		case "Wait":
			switch {
			case s.TimestampPath == stack.ResultPath+".resumeAt" && last.ResumeAt != "":
			case s.Seconds != nil:
				waits = append(waits, time.Duration(*s.Seconds)*time.Second)
			default:
				t.Fatalf("%s: want a fixed Seconds, or a TimestampPath to a result that has it", name)
			}
			name = s.Next
		default:
			t.Fatalf("%s: unexpected state type %s", name, s.Type)
		}
		if name == "" {
			t.Fatalf("state %s has no Next", path[len(path)-1])
		}
	}
}

// attempts is a stand-in for the deliver function whose n-th attempt has
// the outcome outcome(n), final as the function says it (a retry after
// the schedule's last attempt), and whose other steps succeed.
func attempts(max int, outcome func(n int) string) func(string, int) task {
	return func(state string, n int) task {
		if state != stack.DeliverState {
			return task{res: result{Outcome: "stop", Final: true}}
		}
		o := outcome(n)
		return task{res: result{Outcome: o, Attempt: n, Final: o != "retry" || n >= max}}
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
			max := want.MaxAttempts()

			// Every attempt fails: the path goes through Deliver, each
			// Wait in schedule order, then marks the run failed.
			path, waits := d.walk(t, attempts(max, func(int) string { return "retry" }))
			if !slices.Equal(waits, want) {
				t.Errorf("waits in order: got %v, want %v", waits, want)
			}
			var wantPath []string
			for n := 1; n <= max; n++ {
				wantPath = append(wantPath, stack.DeliverState, stack.OutcomeState)
				if n < max {
					wantPath = append(wantPath, fmt.Sprint(stack.WaitStatePrefix, n))
				}
			}
			wantPath = append(wantPath, stack.MarkFailedState, stack.ExhaustedState)
			if !slices.Equal(path, wantPath) {
				t.Errorf("path when every attempt fails:\n got %v\nwant %v", path, wantPath)
			}

			// The states are one Wait per retry and the fixed ones.
			fixed := []string{stack.DeliverState, stack.OutcomeState, stack.WaitUntilState, stack.PauseState, stack.ReconcileState,
				stack.ThrottleState, stack.DeliverReservedState,
				stack.HandOffState, stack.MarkFailedState, stack.DoneState, stack.ExhaustedState,
				stack.HandedOffState, stack.UnknownState, stack.StrandedState}
			if got, want := len(d.States), len(fixed)+max-1; got != want {
				t.Errorf("got %d states, want %d", got, want)
			}
			for _, name := range fixed {
				if _, ok := d.States[name]; !ok {
					t.Errorf("no state %s", name)
				}
			}
		})
	}
}

// TestARunGoesOnWhereItWas: an execution that starts with attempts
// already made (a run re-driven by the sweeper) waits the schedule's wait
// after the attempt it makes, by that attempt's number.
func TestARunGoesOnWhereItWas(t *testing.T) {
	d, _ := definitionFor(t, nil)
	// Attempts 4 and 5 of a run re-driven after 3: the wait after
	// attempt 4 only.
	start := 3
	path, waits := d.walk(t, func(state string, n int) task {
		if state != stack.DeliverState {
			return task{res: result{Outcome: "stop", Final: true}}
		}
		a := start + n
		if a == 5 {
			return task{res: result{Outcome: "delivered", Attempt: a, Final: true}}
		}
		return task{res: result{Outcome: "retry", Attempt: a}}
	})
	if want := webhook.DefaultSchedule[3:4]; !slices.Equal(waits, want) {
		t.Errorf("waits of a run re-driven after 3 attempts: got %v, want %v", waits, want)
	}
	if path[len(path)-1] != stack.DoneState {
		t.Errorf("path %v, want it to end at %s", path, stack.DoneState)
	}
}

func TestChoicesEndRuns(t *testing.T) {
	d, _ := definitionFor(t, nil)
	max := webhook.DefaultSchedule.MaxAttempts()
	tests := []struct {
		name    string
		outcome func(n int) string
		want    string // terminal state
		visits  string // a state the path must include
	}{
		{"delivered at once", func(int) string { return "delivered" }, stack.DoneState, stack.DeliverState},
		{"delivered on the last attempt", func(n int) string {
			if n == max {
				return "delivered"
			}
			return "retry"
		}, stack.DoneState, fmt.Sprint(stack.WaitStatePrefix, max-1)},
		{"stop (410, endpoint disabled)", func(n int) string {
			if n == 3 {
				return "stop"
			}
			return "retry"
		}, stack.DoneState, "Wait2"},
		{"unknown outcome", func(int) string { return "maybe" }, stack.UnknownState, stack.OutcomeState},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := d.walk(t, attempts(max, tt.outcome))
			if got := path[len(path)-1]; got != tt.want || !slices.Contains(path, tt.visits) {
				t.Errorf("got path %v, want it to pass %s and end at %s", path, tt.visits, tt.want)
			}
		})
	}
	// A retry the function calls final ends the run early.
	path, _ := d.walk(t, func(state string, n int) task {
		return task{res: result{Outcome: "retry", Attempt: n, Final: n == 2}}
	})
	if path[len(path)-1] != stack.ExhaustedState || !slices.Contains(path, stack.MarkFailedState) || slices.Contains(path, "Wait2") {
		t.Errorf("final retry at attempt 2: got path %v, want MarkFailed, Exhausted", path)
	}
}

// TestFailedAttemptsAreReconciled walks the error paths: an attempt that
// fails without a result is reconciled after a pause and goes on from
// what the store says (the attempt again, or the wait after a recorded
// one); a reconcile that cannot tell hands the run off; a hand-off that
// fails ends at Stranded.
func TestFailedAttemptsAreReconciled(t *testing.T) {
	d, _ := definitionFor(t, nil)
	tests := []struct {
		name string
		do   func(state string, n int) task
		want []string
	}{
		{"unrecorded: attempted again", func(state string, n int) task {
			switch {
			case state == stack.DeliverState && n == 1:
				return task{fail: true}
			case state == stack.ReconcileState:
				return task{res: result{Outcome: "again"}}
			}
			return task{res: result{Outcome: "delivered", Attempt: 1, Final: true}}
		}, []string{"Deliver", "Pause", "Reconcile", "Outcome", "Deliver", "Outcome", "Done"}},
		{"recorded: waits for its retry", func(state string, n int) task {
			switch {
			case state == stack.DeliverState && n == 1:
				return task{fail: true}
			case state == stack.ReconcileState:
				return task{res: result{Outcome: "retry", Attempt: 1, ResumeAt: "2026-12-03T10:00:05Z"}}
			}
			return task{res: result{Outcome: "delivered", Attempt: 2, Final: true}}
		}, []string{"Deliver", "Pause", "Reconcile", "Outcome", "WaitUntil", "Deliver", "Outcome", "Done"}},
		{"unrecorded for too long: handed off", func(state string, n int) task {
			switch state {
			case stack.DeliverState:
				return task{fail: true}
			case stack.ReconcileState:
				if n < 3 {
					return task{res: result{Outcome: "again"}}
				}
				return task{res: result{Outcome: "handoff"}}
			}
			return task{res: result{Outcome: "stop", Final: true}}
		}, []string{"Deliver", "Pause", "Reconcile", "Outcome", "Deliver", "Pause", "Reconcile", "Outcome",
			"Deliver", "Pause", "Reconcile", "Outcome", "HandOff", "HandedOff"}},
		{"reconcile fails: handed off", func(state string, n int) task {
			if state == stack.DeliverState || state == stack.ReconcileState {
				return task{fail: true}
			}
			return task{res: result{Outcome: "stop", Final: true}}
		}, []string{"Deliver", "Pause", "Reconcile", "HandOff", "HandedOff"}},
		{"hand-off fails: stranded", func(state string, n int) task { return task{fail: true} },
			[]string{"Deliver", "Pause", "Reconcile", "HandOff", "Stranded"}},
		{"marking failed fails: reconciled", func(state string, n int) task {
			switch state {
			case stack.DeliverState:
				return task{res: result{Outcome: "retry", Attempt: n, Final: true}}
			case stack.MarkFailedState:
				return task{fail: n == 1, res: result{Outcome: "stop", Final: true}}
			case stack.ReconcileState:
				return task{res: result{Outcome: "retry", Attempt: 1, Final: true}}
			}
			return task{}
		}, []string{"Deliver", "Outcome", "MarkFailed", "Pause", "Reconcile", "Outcome", "MarkFailed", "Exhausted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if path, _ := d.walk(t, tt.do); !slices.Equal(path, tt.want) {
				t.Errorf("path:\n got %v\nwant %v", path, tt.want)
			}
		})
	}
}

// TestDeliverTasks checks what each Task sends, retries and catches: the
// ids only (plus the action of the steps that are not an attempt),
// results kept beside the input; the attempt retries only errors raised
// before the function ran and reconciles any other; the store-only steps
// retry any error.
func TestDeliverTasks(t *testing.T) {
	d, _ := definitionFor(t, nil)
	s := defaultStack()
	deliverID, _ := s.tmpl.function(t, "deliver")
	wantResource := fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", stack.PlaceholderPartition, stack.PlaceholderRegion, stack.PlaceholderAccount, deliverID)
	ids := map[string]any{"appId.$": "$.appId", "msgId.$": "$.msgId", "endpointId.$": "$.endpointId", "run.$": "$.run"}
	tests := []struct {
		state, action string
		retriesAll    bool   // a second retrier for States.ALL
		catchTo       string // the Catch's Next
	}{
		{stack.DeliverState, "", false, stack.PauseState},
		{stack.DeliverReservedState, "", false, stack.PauseState},
		{stack.ReconcileState, "reconcile", true, stack.HandOffState},
		{stack.HandOffState, "handoff", true, stack.StrandedState},
		{stack.MarkFailedState, "fail", false, stack.PauseState},
	}
	tasks := 0
	for _, st := range d.States {
		if st.Type == "Task" {
			tasks++
		}
	}
	if tasks != len(tests) {
		t.Errorf("got %d tasks, want %d", tasks, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			st := d.States[tt.state]
			want := map[string]any{}
			for k, v := range ids {
				want[k] = v
			}
			if tt.action != "" {
				want["action"] = tt.action
			}
			if tt.action == "reconcile" {
				want["startedAt.$"] = "$$.Execution.StartTime"
			}
			if tt.state == stack.DeliverReservedState {
				want["reservedAt.$"] = stack.ResultPath + ".resumeAt"
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
			wantRetriers := 1
			if tt.retriesAll {
				wantRetriers = 2
			}
			if len(st.Retry) != wantRetriers || !slices.Equal(st.Retry[0].ErrorEquals, stack.TransientLambdaErrors) ||
				st.Retry[0].MaxAttempts < 2 || st.Retry[0].BackoffRate <= 1 {
				t.Fatalf("Retry: got %+v, want %v with backoff first, and %d retriers", st.Retry, stack.TransientLambdaErrors, wantRetriers)
			}
			if tt.retriesAll {
				if r := st.Retry[1]; !slices.Equal(r.ErrorEquals, []string{"States.ALL"}) || r.IntervalSeconds < 10 || r.MaxAttempts < 3 {
					t.Errorf("second retrier: got %+v, want States.ALL, spaced out", r)
				}
			}
			for _, r := range st.Retry {
				if tt.action == "" && slices.ContainsFunc(r.ErrorEquals, func(e string) bool {
					return e == "States.ALL" || e == "Lambda.Unknown" || e == "States.TaskFailed" || e == "Lambda.ClientExecutionTimeoutException"
				}) {
					t.Errorf("the attempt retries %v: the POST may already have happened", r.ErrorEquals)
				}
			}
			if len(st.Catch) != 1 || !slices.Equal(st.Catch[0].ErrorEquals, []string{"States.ALL"}) ||
				st.Catch[0].Next != tt.catchTo || st.Catch[0].ResultPath != stack.ErrorPath {
				t.Errorf("Catch: got %+v, want States.ALL at %s to %s", st.Catch, stack.ErrorPath, tt.catchTo)
			}
		})
	}
	if p := d.States[stack.PauseState]; p.Seconds == nil || time.Duration(*p.Seconds)*time.Second != stack.PauseFor || p.Next != stack.ReconcileState {
		t.Errorf("Pause: got %+v, want a wait of %s before Reconcile", p, stack.PauseFor)
	}
	for name, typ := range map[string]string{stack.ExhaustedState: "Succeed", stack.HandedOffState: "Succeed", stack.DoneState: "Succeed",
		stack.StrandedState: "Fail", stack.UnknownState: "Fail"} {
		if got := d.States[name].Type; got != typ {
			t.Errorf("%s: got a %s, want a %s", name, got, typ)
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

// TestAThrottledAttemptWaitsForItsToken: an attempt the endpoint's
// throttle holds back (outcome throttled, nothing recorded) waits until
// its reservation (resumeAt, a TimestampPath: as long as the backlog
// needs, in one Wait), then DeliverReserved makes it with the
// reservation; an answer throttled again waits again; a failure is
// reconciled like any attempt's. No schedule Wait is spent on it.
func TestAThrottledAttemptWaitsForItsToken(t *testing.T) {
	d, _ := definitionFor(t, nil)
	resumeAt := "2026-12-03T17:00:05Z"
	path, waits := d.walk(t, func(state string, n int) task {
		switch {
		case state == stack.DeliverState:
			return task{res: result{Outcome: "throttled", Attempt: 0, ResumeAt: resumeAt}}
		case state == stack.DeliverReservedState && n == 1:
			return task{res: result{Outcome: "throttled", Attempt: 0, ResumeAt: resumeAt}} // asked early
		case state == stack.DeliverReservedState:
			return task{res: result{Outcome: "delivered", Attempt: 1, Final: true}}
		}
		t.Fatalf("unexpected Task %s", state)
		return task{}
	})
	want := []string{stack.DeliverState, stack.OutcomeState, stack.ThrottleState, stack.DeliverReservedState, stack.OutcomeState,
		stack.ThrottleState, stack.DeliverReservedState, stack.OutcomeState, stack.DoneState}
	if !slices.Equal(path, want) {
		t.Errorf("path of a throttled attempt:\n got %v\nwant %v", path, want)
	}
	if len(waits) != 0 {
		t.Errorf("fixed waits %v on the way, want none: the throttle waits until resumeAt", waits)
	}

	wait := d.States[stack.ThrottleState]
	if wait.Type != "Wait" || wait.TimestampPath != stack.ResultPath+".resumeAt" || wait.Next != stack.DeliverReservedState {
		t.Errorf("%s: got %+v, want a Wait until %s.resumeAt, then %s", stack.ThrottleState, wait, stack.ResultPath, stack.DeliverReservedState)
	}
	reserved, deliver := d.States[stack.DeliverReservedState], d.States[stack.DeliverState]
	payload := reserved.Parameters // the Payload itself: payloadResponseOnly
	if payload["reservedAt.$"] != stack.ResultPath+".resumeAt" || payload["action"] != nil {
		t.Errorf("%s payload %v: want reservedAt.$ = %s.resumeAt and no action", stack.DeliverReservedState, payload, stack.ResultPath)
	}
	for k, v := range deliver.Parameters {
		if payload[k] != v {
			t.Errorf("%s payload %s = %v, want %v as %s", stack.DeliverReservedState, k, payload[k], v, stack.DeliverState)
		}
	}
	if reserved.Resource != deliver.Resource || reserved.Next != stack.OutcomeState || reserved.ResultPath != deliver.ResultPath ||
		len(reserved.Catch) != 1 || reserved.Catch[0].Next != stack.PauseState || len(reserved.Retry) != len(deliver.Retry) {
		t.Errorf("%s: got %+v, want %s's resource, retries and catch (to %s), then %s", stack.DeliverReservedState, reserved,
			stack.DeliverState, stack.PauseState, stack.OutcomeState)
	}
	// An answer that failed is reconciled: the walk follows the Catch.
	path, _ = d.walk(t, func(state string, n int) task {
		switch state {
		case stack.DeliverState:
			return task{res: result{Outcome: "throttled", ResumeAt: resumeAt}}
		case stack.DeliverReservedState:
			return task{fail: true}
		}
		return task{res: result{Outcome: "stop", Final: true}}
	})
	if !slices.Contains(path, stack.PauseState) || !slices.Contains(path, stack.ReconcileState) {
		t.Errorf("a failed reserved attempt: path %v, want it reconciled (%s, %s)", path, stack.PauseState, stack.ReconcileState)
	}
}
