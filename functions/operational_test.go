package functions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestOperationalWebhooksFromTheFunctions: on AWS each operational event
// comes from the function that observes the change, and reaches the
// operational endpoint signed with its secret: endpoint.created from the
// api function (dispatched at once); message.attempt.failing and
// message.attempt.exhausted from the deliver function, which stores them
// undispatched (it may not start executions) for the sweeper function to
// dispatch; endpoint.disabled (trigger automatic) from the sweeper
// function. The customer's endpoint receives only its own message.
func TestOperationalWebhooksFromTheFunctions(t *testing.T) {
	root := awstest.Root(t)
	dbURL := awstest.Dynalite(t)
	store := newTable(t, dbURL, "hookstep")
	states := sfntest.New(t)
	invokes := awstest.NewLambda(t)
	// Five attempts at once, and an endpoint failing for a millisecond is
	// disabled by the next sweep.
	env := append(functionEnv(dbURL, states.URL, invokes.URL, fakeSecrets(t)),
		"HOOKSTEP_RETRY_SCHEDULE=0s,0s,0s,0s", "HOOKSTEP_DISABLE_AFTER=1ms")
	api := awstest.Run(t, awstest.Build(t, "api"), env)
	playExecutions(t, states, awstest.Run(t, awstest.Build(t, "deliver"), env))
	sweeper := awstest.Run(t, awstest.Build(t, "sweeper"), env)
	handTo(t, invokes, sweeper)

	call := apiCaller(t, api, root)
	ops := newReceiver(t)
	customer := newReceiver(t)
	opsEp := call("POST", "/api/v1/operational-webhook/endpoint", `{"url":"`+ops.URL+`/ok"}`, http.StatusCreated)
	secret := call("GET", "/api/v1/operational-webhook/endpoint/"+opsEp["id"].(string)+"/secret", "", http.StatusOK)["key"].(string)
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	app := call("POST", "/api/v1/app", `{"name":"Acme"}`, http.StatusCreated)["id"].(string)
	ep := call("POST", "/api/v1/app/"+app+"/endpoint", `{"url":"`+customer.URL+`/fail"}`, http.StatusCreated)["id"].(string)

	// received returns the operational events ops received about ep,
	// each verified with the operational endpoint's secret.
	received := func() []string {
		ops.mu.Lock()
		defer ops.mu.Unlock()
		var got []string
		for i, req := range ops.hits {
			var ev struct {
				Type string
				Data struct {
					EndpointID string `json:"endpointId"`
					Trigger    string `json:"trigger"`
				}
			}
			if err := json.Unmarshal(ops.body[i], &ev); err != nil {
				t.Fatalf("operational webhook %s: %v", ops.body[i], err)
			}
			if ev.Data.EndpointID != ep {
				continue
			}
			if err := wh.Verify(ops.body[i], req.Header); err != nil {
				t.Errorf("%s does not verify with the operational secret: %v", ops.body[i], err)
			}
			if ev.Data.Trigger != "" {
				ev.Type += " " + ev.Data.Trigger
			}
			if !slices.Contains(got, ev.Type) {
				got = append(got, ev.Type)
			}
		}
		slices.Sort(got)
		return got
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("endpoint.created from the api function", func() bool { return slices.Contains(received(), "endpoint.created") })

	msg := call("POST", "/api/v1/app/"+app+"/msg", `{"eventType":"v1.end_user.created","payload":{"n":1}}`, http.StatusAccepted)["id"].(string)
	waitFor("the schedule exhausted", func() bool {
		d, err := store.GetDelivery(context.Background(), app, msg, ep)
		return err == nil && d.Status == webhook.StatusFail
	})
	// The deliver function stored the two events (the exhausted one just
	// after it recorded the failure); nothing dispatched them.
	var page webhook.Page[webhook.Message]
	waitFor("the attempt events stored", func() bool {
		var err error
		page, err = store.ListMessages(context.Background(), webhook.MessageFilter{AppID: operational.AppID,
			EventTypes: []string{"message.attempt.failing", "message.attempt.exhausted"}})
		return err == nil && len(page.Items) >= 2
	})
	if len(page.Items) != 2 {
		t.Fatalf("stored attempt events: %+v; want failing and exhausted", page.Items)
	}
	if got := received(); !slices.Equal(got, []string{"endpoint.created"}) {
		t.Errorf("before the sweep the operational endpoint received %v, want endpoint.created only", got)
	}

	b, err := os.ReadFile(filepath.Join(root, "events", "lambda", "sweeper-scheduled-event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var scheduled map[string]any
	json.Unmarshal(b, &scheduled)
	var report struct{ Disabled, Redriven int }
	sweeper.InvokeInto(t, scheduled, &report)
	if report.Disabled != 1 || report.Redriven < 2 {
		t.Errorf("sweep: %+v, want the endpoint disabled and the two events dispatched", report)
	}
	want := []string{"endpoint.created", "endpoint.disabled automatic", "message.attempt.exhausted", "message.attempt.failing"}
	waitFor("failing, exhausted and disabled", func() bool { return slices.Equal(received(), want) })

	for _, id := range customer.ids() {
		if id != msg {
			t.Errorf("the customer's endpoint received %s, not its message %s", id, msg)
		}
	}
	if n := len(customer.ids()); n != 5 {
		t.Errorf("the customer's endpoint received %d requests, want the message's 5 attempts", n)
	}
}
