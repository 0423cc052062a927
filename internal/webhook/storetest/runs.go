package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func testRecordAttempt(t *testing.T, e *env) {
	app := e.createApp(t, "")
	for _, tc := range []struct {
		name string
		// failing makes the endpoint fail before the attempt.
		failing bool
		// setup moves the delivery on before the attempt.
		setup    func(t *testing.T, msg *webhook.Message, ep string)
		run      int
		attempts int
		attempt  webhook.Status // of the attempt itself
		result   webhook.Status // for the delivery
		applies  bool
	}{
		{name: "FirstFailure", attempts: 1, attempt: webhook.StatusFail, result: webhook.StatusSending, applies: true},
		{name: "FailureKeepsFailingSince", failing: true, attempts: 1, attempt: webhook.StatusFail, result: webhook.StatusSending, applies: true},
		{name: "SuccessClearsFailingSince", failing: true, attempts: 1, attempt: webhook.StatusSuccess, result: webhook.StatusSuccess, applies: true},
		{
			name: "LastFailure", attempts: 3, attempt: webhook.StatusFail, result: webhook.StatusFail, applies: true,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				e.record(t, msg, ep, webhook.StatusFail, 500)
				e.record(t, msg, ep, webhook.StatusFail, 500)
			},
		},
		{
			name: "ManualRun", run: 1, attempts: 1, attempt: webhook.StatusSuccess, result: webhook.StatusSuccess, applies: true,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				if _, err := e.s.StartRun(e.ctx, msg, ep, e.clock.Now()); err != nil {
					t.Fatalf("StartRun: %v", err)
				}
			},
		},
		{
			name: "StaleRun", failing: true, attempts: 1, attempt: webhook.StatusSuccess, result: webhook.StatusSuccess,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				if _, err := e.s.StartRun(e.ctx, msg, ep, e.clock.Now()); err != nil {
					t.Fatalf("StartRun: %v", err)
				}
			},
		},
		{
			name: "StaleRunFailure", attempts: 1, attempt: webhook.StatusFail, result: webhook.StatusSending,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				if _, err := e.s.StartRun(e.ctx, msg, ep, e.clock.Now()); err != nil {
					t.Fatalf("StartRun: %v", err)
				}
			},
		},
		{name: "AttemptCountAhead", attempts: 2, attempt: webhook.StatusFail, result: webhook.StatusSending},
		{
			name: "AttemptCountBehind", attempts: 1, attempt: webhook.StatusSuccess, result: webhook.StatusSuccess,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				e.record(t, msg, ep, webhook.StatusFail, 500)
			},
		},
		{
			name: "Succeeded", attempts: 2, attempt: webhook.StatusFail, result: webhook.StatusSending,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				e.record(t, msg, ep, webhook.StatusSuccess, 200)
			},
		},
		{
			name: "Canceled", attempts: 1, attempt: webhook.StatusSuccess, result: webhook.StatusSuccess,
			setup: func(t *testing.T, msg *webhook.Message, ep string) {
				if _, err := e.s.CancelDeliveries(e.ctx, msg.AppID, ep, e.clock.Now()); err != nil {
					t.Fatalf("CancelDeliveries: %v", err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := e.createEndpoint(t, app.ID)
			if tc.failing {
				earlier := e.createMessage(t, app.ID, nil, ep.ID)
				e.record(t, earlier, ep.ID, webhook.StatusFail, 500)
			}
			msg := e.createMessage(t, app.ID, nil, ep.ID)
			if tc.setup != nil {
				tc.setup(t, msg, ep.ID)
			}
			before := e.getDelivery(t, app.ID, msg.ID, ep.ID)
			failingSince := e.getEndpoint(t, app.ID, ep.ID).FailingSince
			if tc.failing && failingSince.IsZero() {
				t.Fatalf("FailingSince after a failed attempt: got zero, want the attempt's time")
			}

			now := e.clock.Advance(time.Minute)
			code := 200
			if tc.attempt != webhook.StatusSuccess {
				code = 0 // no response
			}
			res := webhook.AttemptResult{
				Attempt:  e.newAttempt(msg, ep.ID, tc.attempt, code),
				Run:      tc.run,
				Attempts: tc.attempts,
				Status:   tc.result,
			}
			if tc.result == webhook.StatusSending {
				res.NextAttemptAt = now.Add(5 * time.Minute)
			}
			got, err := e.s.RecordAttempt(e.ctx, res)
			if err != nil {
				t.Fatalf("RecordAttempt: %v", err)
			}

			want := *before
			if tc.applies {
				want.Status = tc.result
				want.Attempts = tc.attempts
				want.NextAttemptAt = res.NextAttemptAt
				want.UpdatedAt = now
			}
			if d := diff(&want, got); d != "" {
				t.Errorf("RecordAttempt returned delivery mismatch (-want +got):\n%s", d)
			}
			if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, ep.ID)); d != "" {
				t.Errorf("GetDelivery after RecordAttempt mismatch (-want +got):\n%s", d)
			}
			att, err := e.s.GetAttempt(e.ctx, app.ID, msg.ID, res.Attempt.ID)
			if err != nil {
				t.Fatalf("GetAttempt: %v (the attempt must be stored whether or not it applies)", err)
			}
			if d := diff(&res.Attempt, att); d != "" {
				t.Errorf("GetAttempt mismatch (-want +got):\n%s", d)
			}

			wantFailing := failingSince
			switch {
			case tc.attempt == webhook.StatusSuccess:
				wantFailing = time.Time{}
			case failingSince.IsZero():
				wantFailing = now
			}
			if got := e.getEndpoint(t, app.ID, ep.ID).FailingSince; !got.Equal(wantFailing) {
				t.Errorf("FailingSince after the attempt: got %v, want %v", got, wantFailing)
			}
		})
	}

	t.Run("MissingDelivery", func(t *testing.T) {
		ep := e.createEndpoint(t, app.ID)
		other := e.createEndpoint(t, app.ID)
		msg := e.createMessage(t, app.ID, nil, ep.ID)
		for _, att := range []webhook.Attempt{
			e.newAttempt(msg, other.ID, webhook.StatusFail, 500),
			func() webhook.Attempt {
				a := e.newAttempt(msg, ep.ID, webhook.StatusFail, 500)
				a.MsgID = "msg_missing"
				return a
			}(),
		} {
			_, err := e.s.RecordAttempt(e.ctx, webhook.AttemptResult{Attempt: att, Attempts: 1, Status: webhook.StatusSending})
			wantNotFound(t, "RecordAttempt(no delivery)", err)
			_, err = e.s.GetAttempt(e.ctx, app.ID, att.MsgID, att.ID)
			wantNotFound(t, "GetAttempt(of rejected attempt)", err)
		}
		if got := e.getEndpoint(t, app.ID, other.ID).FailingSince; !got.IsZero() {
			t.Errorf("FailingSince after a rejected attempt: got %v, want zero", got)
		}
	})
}

// testRecordAttemptRace races two results for the same attempt of a
// delivery (as two workers that both picked it up would): exactly one
// applies, both attempts are stored, and both calls return the delivery as
// the winner left it.
func testRecordAttemptRace(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	for i := range 20 {
		msg := e.createMessage(t, app.ID, nil, ep.ID)
		results := []webhook.AttemptResult{
			{Attempt: e.newAttempt(msg, ep.ID, webhook.StatusSuccess, 200), Attempts: 1, Status: webhook.StatusSuccess},
			{Attempt: e.newAttempt(msg, ep.ID, webhook.StatusFail, 500), Attempts: 1, Status: webhook.StatusSending, NextAttemptAt: e.clock.Now().Add(time.Minute)},
		}
		got := make([]*webhook.Delivery, len(results))
		errs := make([]error, len(results))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for j, res := range results {
			wg.Go(func() {
				<-start
				got[j], errs[j] = e.s.RecordAttempt(e.ctx, res)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: RecordAttempt: %v", i, err)
			}
		}

		final := e.getDelivery(t, app.ID, msg.ID, ep.ID)
		if final.Attempts != 1 {
			t.Errorf("round %d: Attempts = %d, want 1 (exactly one result applies)", i, final.Attempts)
		}
		if final.Status != webhook.StatusSuccess && final.Status != webhook.StatusSending {
			t.Errorf("round %d: Status = %v, want one of the results' statuses", i, final.Status)
		}
		for j := range got {
			if d := diff(final, got[j]); d != "" {
				t.Errorf("round %d: RecordAttempt %d returned a delivery other than the final one (both applied?) (-final +returned):\n%s", i, j, d)
			}
		}
		atts, err := e.s.ListAttempts(e.ctx, webhook.AttemptFilter{AppID: app.ID, MsgID: msg.ID})
		if err != nil {
			t.Fatalf("ListAttempts: %v", err)
		}
		if len(atts.Items) != 2 {
			t.Errorf("round %d: got %d attempts stored, want 2", i, len(atts.Items))
		}
	}
}

func testCancelDeliveries(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	statuses := []webhook.Status{webhook.StatusPending, webhook.StatusSending, webhook.StatusSuccess, webhook.StatusFail, webhook.StatusCanceled}
	var msgs []*webhook.Message
	for _, s := range statuses {
		msg := e.createMessage(t, app.ID, nil, ep.ID, ep2.ID)
		e.setStatus(t, msg, ep.ID, s)
		msgs = append(msgs, msg)
	}
	var before []webhook.Delivery
	for _, m := range msgs {
		before = append(before, *e.getDelivery(t, app.ID, m.ID, ep.ID))
	}

	n, err := e.s.CancelDeliveries(e.ctx, other.ID, ep.ID, e.clock.Now())
	if err != nil || n != 0 {
		t.Errorf("CancelDeliveries(other app) = %d, %v; want 0, nil", n, err)
	}
	now := e.clock.Advance(time.Minute)
	n, err = e.s.CancelDeliveries(e.ctx, app.ID, ep.ID, now)
	if err != nil {
		t.Fatalf("CancelDeliveries: %v", err)
	}
	if n != 2 {
		t.Errorf("CancelDeliveries = %d, want 2 (the pending and the sending delivery)", n)
	}
	for i, m := range msgs {
		want := before[i]
		if !want.Status.Final() {
			want.Status = webhook.StatusCanceled
			want.UpdatedAt = now
		}
		if d := diff(&want, e.getDelivery(t, app.ID, m.ID, ep.ID)); d != "" {
			t.Errorf("delivery %d (%v) after CancelDeliveries mismatch (-want +got):\n%s", i, statuses[i], d)
		}
		if got := e.getDelivery(t, app.ID, m.ID, ep2.ID).Status; got != webhook.StatusPending {
			t.Errorf("other endpoint's delivery %d: got status %v, want pending", i, got)
		}
	}
	n, err = e.s.CancelDeliveries(e.ctx, app.ID, ep.ID, now)
	if err != nil || n != 0 {
		t.Errorf("CancelDeliveries again = %d, %v; want 0, nil", n, err)
	}
}

func testFinishDelivery(t *testing.T, e *env) {
	app := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)

	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, msg *webhook.Message) // before the call
		run     int
		status  webhook.Status
		applies bool
	}{
		{name: "Fail", status: webhook.StatusFail, applies: true},
		{name: "Canceled", status: webhook.StatusCanceled, applies: true},
		{
			name: "Sending", status: webhook.StatusFail, applies: true,
			setup: func(t *testing.T, msg *webhook.Message) { e.setStatus(t, msg, ep.ID, webhook.StatusSending) },
		},
		{
			name: "StaleRun", status: webhook.StatusFail,
			setup: func(t *testing.T, msg *webhook.Message) {
				if _, err := e.s.StartRun(e.ctx, msg, ep.ID, e.clock.Now()); err != nil {
					t.Fatalf("StartRun: %v", err)
				}
			},
		},
		{
			name: "Final", status: webhook.StatusCanceled,
			setup: func(t *testing.T, msg *webhook.Message) { e.setStatus(t, msg, ep.ID, webhook.StatusSuccess) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := e.createMessage(t, app.ID, nil, ep.ID)
			if tc.setup != nil {
				tc.setup(t, msg)
			}
			before := e.getDelivery(t, app.ID, msg.ID, ep.ID)
			now := e.clock.Advance(time.Minute)
			ref := webhook.Ref{AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID, Run: tc.run}
			if err := e.s.FinishDelivery(e.ctx, ref, tc.status, now); err != nil {
				t.Fatalf("FinishDelivery: %v", err)
			}
			want := *before
			if tc.applies {
				want.Status = tc.status
				want.UpdatedAt = now
			}
			if d := diff(&want, e.getDelivery(t, app.ID, msg.ID, ep.ID)); d != "" {
				t.Errorf("GetDelivery after FinishDelivery mismatch (-want +got):\n%s", d)
			}
		})
	}

	ref := webhook.Ref{AppID: app.ID, MsgID: "msg_missing", EndpointID: ep.ID}
	wantNotFound(t, "FinishDelivery(missing)", e.s.FinishDelivery(e.ctx, ref, webhook.StatusFail, e.clock.Now()))
}

func testEndpointStats(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	ep2 := e.createEndpoint(t, app.ID)
	statuses := []webhook.Status{webhook.StatusSuccess, webhook.StatusPending, webhook.StatusFail, webhook.StatusSending, webhook.StatusCanceled}
	var ts []time.Time
	for _, s := range statuses {
		msg := e.createMessage(t, app.ID, nil, ep.ID, ep2.ID)
		e.setStatus(t, msg, ep.ID, s)
		ts = append(ts, msg.Timestamp)
	}

	for _, tc := range []struct {
		name         string
		app, ep      string
		since, until time.Time
		want         map[webhook.Status]int
	}{
		{"All", app.ID, ep.ID, time.Time{}, time.Time{}, map[webhook.Status]int{
			webhook.StatusSuccess: 1, webhook.StatusPending: 1, webhook.StatusFail: 1, webhook.StatusSending: 1, webhook.StatusCanceled: 1}},
		{"Window", app.ID, ep.ID, ts[1], ts[3], map[webhook.Status]int{webhook.StatusPending: 1, webhook.StatusFail: 1}},
		{"Since", app.ID, ep.ID, ts[3], time.Time{}, map[webhook.Status]int{webhook.StatusSending: 1, webhook.StatusCanceled: 1}},
		{"Until", app.ID, ep.ID, time.Time{}, ts[1], map[webhook.Status]int{webhook.StatusSuccess: 1}},
		{"OtherEndpoint", app.ID, ep2.ID, time.Time{}, time.Time{}, map[webhook.Status]int{webhook.StatusPending: 5}},
		{"OtherApp", other.ID, ep.ID, time.Time{}, time.Time{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.s.EndpointStats(e.ctx, tc.app, tc.ep, tc.since, tc.until)
			if err != nil {
				t.Fatalf("EndpointStats: %v", err)
			}
			if d := diff(fullStats(tc.want), fullStats(got)); d != "" {
				t.Errorf("EndpointStats mismatch (-want +got):\n%s", d)
			}
		})
	}
}
