package stack_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/infra/stack"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestAThrottledDeliveryWaitsThenDelivers: three executions at once for
// three messages to an endpoint with throttleRate 1, their Tasks answered
// by three deliver bootstraps against dynalite. One delivers at once; the
// two others are held back by the shared token log, wait in the Throttle
// state until their reservations and deliver through DeliverReserved: the
// receiver sees the three a second or more apart, and each run records
// exactly one attempt.
func TestAThrottledDeliveryWaitsThenDelivers(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	var arrivals []time.Time
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}))
	t.Cleanup(rcv.Close)

	ctx := context.Background()
	now := time.Now().UTC()
	rate := 1
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: r.app.ID, URL: rcv.URL, Version: 1, ThrottleRate: &rate,
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: now, UpdatedAt: now}
	if err := r.store.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	var refs []webhook.Ref
	for range 3 {
		msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: r.app.ID, EventType: "v1.end_user.created",
			Payload: []byte(`{"type":"v1.end_user.created"}`), Timestamp: now, ExpiresAt: now.Add(time.Hour)}
		if err := r.store.CreateMessage(ctx, msg, []webhook.Delivery{{AppID: r.app.ID, MsgID: msg.ID, EndpointID: ep.ID,
			EventType: msg.EventType, Status: webhook.StatusPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}}); err != nil {
			t.Fatal(err)
		}
		ref := webhook.Ref{AppID: r.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
		if err := r.store.MarkDispatched(ctx, ref); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}

	// One function each (the emulator takes one invocation at a time):
	// three deliver processes share the token log, as on AWS.
	var fns []*awstest.Function
	for range refs {
		fns = append(fns, r.deliver("HOOKSTEP_HTTP_TIMEOUT=5s"))
	}
	results := make([]executionResult, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() { results[i] = r.execute(ref, fns[i], nil) })
	}
	wg.Wait()

	throttled := 0
	for i, res := range results {
		if res.Status != "SUCCEEDED" || res.States[len(res.States)-1] != stack.DoneState {
			t.Fatalf("execution %d: got %s %s (%s) through %v, want it to succeed at %s", i, res.Status, res.Error, res.Cause, res.States, stack.DoneState)
		}
		if slices.Contains(res.States, stack.ThrottleState) {
			throttled++
			if !slices.Contains(res.States, stack.DeliverReservedState) {
				t.Errorf("execution %d waited in %s and did not go on through %s: %v", i, stack.ThrottleState, stack.DeliverReservedState, res.States)
			}
		}
		if n := len(r.attempts(refs[i])); n != 1 {
			t.Errorf("execution %d: %d attempts recorded, want 1 (a throttled attempt is not one)", i, n)
		}
		if d := r.status(refs[i]); d.Status != webhook.StatusSuccess || d.Attempts != 1 {
			t.Errorf("execution %d: delivery %v after %d attempts, want success after 1", i, d.Status, d.Attempts)
		}
	}
	if throttled != 2 {
		t.Errorf("%d executions waited for the throttle, want 2 of 3 at throttleRate 1", throttled)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(arrivals))
	}
	slices.SortFunc(arrivals, time.Time.Compare)
	for i := 1; i < len(arrivals); i++ {
		// The deliver function rounds a reservation up to the second (a
		// Wait's resolution), and never sends before it.
		if gap := arrivals[i].Sub(arrivals[i-1]); gap < 900*time.Millisecond {
			t.Errorf("requests %d and %d arrived %s apart, want a second at throttleRate 1", i, i+1, gap)
		}
	}
}
