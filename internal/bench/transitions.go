package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hookstep/hookstep/internal/delivery"
)

// recoversOnAttempt is the attempt on which a recovering delivery (one
// that fails its first attempt, a receiver's blip) is delivered: the
// first attempt and the schedule's immediate retry fail, the attempt
// after the first wait succeeds. In queue mode the two that fail are
// made off the SQS message, so the delivery needs one execution.
const recoversOnAttempt = 3

// Transitions are a dispatch mode's executions, walked on the state
// machine's definition.
type Transitions struct {
	// Happy is the execution of a delivery whose first attempt succeeds:
	// Deliver, Outcome, Done in stepfunctions mode; none in queue mode,
	// where deliver makes that attempt off an SQS message.
	Happy Path `json:"happy"`
	// Recovers is the execution of a delivery that fails its first
	// attempt and the immediate retry and is delivered on attempt
	// recoversOnAttempt. In queue mode it is the execution deliver
	// starts after the attempts it makes itself: it enters with a
	// Deliver that finds the next attempt not due (WaitUntil), then
	// delivers.
	Recovers Path `json:"recovers"`
	// Exhausted is the execution of a delivery whose every attempt
	// fails, ending in MarkFailed. In queue mode it enters as Recovers
	// does, then goes on with the schedule.
	Exhausted Path `json:"exhausted"`
	// QueuedAttempts is how many attempts queue mode's deliver makes in
	// one invocation: the first and the retries the schedule makes at
	// once (waits of 0 s, the definition's Wait states of 0 seconds).
	QueuedAttempts int `json:"queuedAttempts,omitempty"`
}

// path is the execution of a delivery of fate f.
func (t Transitions) path(f fate) Path {
	return [...]Path{fateHappy: t.Happy, fateRecovers: t.Recovers, fateExhausted: t.Exhausted}[f]
}

// Path is one execution: the states entered, in order.
type Path struct {
	Transitions       int      `json:"stateTransitions"`
	LambdaInvocations int      `json:"lambdaInvocations"`
	States            []string `json:"states"`
}

// countTransitions walks the state machine's definition along each
// mode's paths, counting the states entered: Step Functions Standard
// bills one state transition per state entered.
//
//   - stepfunctions: the attempts fail until the one that delivers (the
//     first, happy; attempt recoversOnAttempt, recovers) or, exhausted,
//     every attempt fails, then MarkFailed.
//   - queue: deliver made the attempts up to the first wait longer than
//     0 s; a delivery delivered by one of those needs no execution
//     (happy). Otherwise the execution's first Deliver finds the next
//     attempt not due and answers retry with resumeAt (WaitUntil), then
//     the later attempts go as in stepfunctions mode.
func countTransitions(def []byte) (map[Mode]Transitions, error) {
	var m aslMachine
	if err := json.Unmarshal(def, &m); err != nil {
		return nil, fmt.Errorf("state machine definition: %w", err)
	}
	// One Wait<n> state follows each attempt but the last; those of 0
	// seconds from Wait1 on are the retries made at once.
	attempts, queued := 1, 1
	for name := range m.States {
		if n, ok := strings.CutPrefix(name, "Wait"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			attempts++
		}
	}
	for ; queued < attempts; queued++ {
		w, ok := m.States["Wait"+strconv.Itoa(queued)]
		if !ok || w.Seconds == nil || *w.Seconds != 0 {
			break
		}
	}
	// attempt is deliver's answer to attempt n of a delivery delivered
	// on attempt deliveredAt (0: never).
	attempt := func(n, deliveredAt int) map[string]any {
		if n == deliveredAt {
			return map[string]any{"outcome": "delivered", "attempt": float64(n), "final": true}
		}
		return map[string]any{"outcome": "retry", "attempt": float64(n), "final": n >= attempts}
	}
	stepFunctions := func(deliveredAt int) (Path, error) {
		return m.walk(func(n int) map[string]any { return attempt(n, deliveredAt) })
	}
	queue := func(deliveredAt int) (Path, error) {
		if deliveredAt >= 1 && deliveredAt <= queued {
			return Path{}, nil // delivered off the SQS message
		}
		return m.walk(func(n int) map[string]any {
			if n == 1 { // not due: the attempts deliver made, and when the next is
				return map[string]any{"outcome": "retry", "attempt": float64(queued), "final": false, "resumeAt": "2026-12-03T00:00:05Z"}
			}
			return attempt(queued+n-1, deliveredAt)
		})
	}
	out := map[Mode]Transitions{}
	for mode, walk := range map[Mode]func(int) (Path, error){ModeStepFunctions: stepFunctions, ModeQueue: queue} {
		var t Transitions
		var err error
		for _, p := range []struct {
			path        *Path
			deliveredAt int
		}{{&t.Happy, 1}, {&t.Recovers, recoversOnAttempt}, {&t.Exhausted, 0}} {
			if *p.path, err = walk(p.deliveredAt); err != nil {
				return nil, err
			}
		}
		if mode == ModeQueue {
			t.QueuedAttempts = queued
		}
		out[mode] = t
	}
	return out, nil
}

type aslMachine struct {
	StartAt string              `json:"StartAt"`
	States  map[string]aslState `json:"States"`
}

type aslState struct {
	Type       string         `json:"Type"`
	Next       string         `json:"Next"`
	End        bool           `json:"End"`
	Seconds    *float64       `json:"Seconds"`
	Parameters map[string]any `json:"Parameters"`
	Choices    []aslRule      `json:"Choices"`
	Default    string         `json:"Default"`
}

type aslRule struct {
	Variable      string    `json:"Variable"`
	StringEquals  *string   `json:"StringEquals"`
	BooleanEquals *bool     `json:"BooleanEquals"`
	NumericEquals *float64  `json:"NumericEquals"`
	IsPresent     *bool     `json:"IsPresent"`
	And           []aslRule `json:"And"`
	Or            []aslRule `json:"Or"`
	Not           *aslRule  `json:"Not"`
	Next          string    `json:"Next"`
}

// walk runs the machine with each deliver Task returning result(n) for
// its n-th call without an action (an attempt) into $.result, and a Task
// with an action (MarkFailed) returning stop.
func (m aslMachine) walk(result func(n int) map[string]any) (Path, error) {
	var p Path
	var res map[string]any
	attempt := 0
	name := m.StartAt
	for steps := 0; name != ""; steps++ {
		if steps > 1000 {
			return p, fmt.Errorf("state machine: no end after 1000 states")
		}
		st, ok := m.States[name]
		if !ok {
			return p, fmt.Errorf("state machine: no state %q", name)
		}
		p.States = append(p.States, name)
		p.Transitions++
		next := st.Next
		switch st.Type {
		case "Task":
			p.LambdaInvocations++
			if st.Parameters["action"] != nil {
				res = map[string]any{"outcome": string(delivery.Stop), "final": true}
			} else {
				attempt++
				res = result(attempt)
			}
		case "Choice":
			next = st.Default
			for _, r := range st.Choices {
				ok, err := r.matches(res)
				if err != nil {
					return p, err
				}
				if ok {
					next = r.Next
					break
				}
			}
		case "Wait", "Pass":
		case "Succeed", "Fail":
			next = ""
		default:
			return p, fmt.Errorf("state machine: state %s has type %s, which the walk does not know", name, st.Type)
		}
		if st.End {
			next = ""
		}
		name = next
	}
	return p, nil
}

func (r aslRule) matches(res map[string]any) (bool, error) {
	switch {
	case r.And != nil:
		for _, a := range r.And {
			if ok, err := a.matches(res); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case r.Or != nil:
		for _, a := range r.Or {
			if ok, err := a.matches(res); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case r.Not != nil:
		ok, err := r.Not.matches(res)
		return !ok, err
	}
	field, ok := strings.CutPrefix(r.Variable, "$.result.")
	if !ok {
		return false, fmt.Errorf("state machine: choice on %s, which the walk does not know", r.Variable)
	}
	v, present := res[field]
	switch {
	case r.StringEquals != nil:
		return v == *r.StringEquals, nil
	case r.BooleanEquals != nil:
		return v == *r.BooleanEquals, nil
	case r.NumericEquals != nil:
		return v == *r.NumericEquals, nil
	case r.IsPresent != nil:
		return present == *r.IsPresent, nil
	}
	return false, fmt.Errorf("state machine: a choice rule the walk does not know: %+v", r)
}
