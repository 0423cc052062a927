package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// counter is a reverse proxy to dynalite that counts the DynamoDB calls
// that pass through it, by operation. While refuse is set it answers
// each call with a 500 instead, as a DynamoDB that fails would.
type counter struct {
	mu     sync.Mutex
	calls  map[string]int
	refuse atomic.Bool
}

func newCounter(t *testing.T, target string) (*counter, string) {
	u, _ := url.Parse(target)
	c := &counter{calls: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		c.mu.Lock()
		c.calls[op]++
		c.mu.Unlock()
		if c.refuse.Load() {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"refused by the test"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// take returns the calls counted since the last take, and their total.
func (c *counter) take() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, total := c.calls, 0
	for _, n := range calls {
		total += n
	}
	c.calls = map[string]int{}
	return calls, total
}

// dispatchRig is the three functions under the emulator, the api's
// DynamoDB calls counted.
type dispatchRig struct {
	root    string
	store   *dynamo.Store
	states  *sfntest.Server
	invokes *awstest.Lambda
	dynamo  *counter
	api     *awstest.Function
	sweeper *awstest.Function
	app     *webhook.App
	// hold, locked, keeps the hand-offs from the sweeper function.
	hold sync.RWMutex
}

func newDispatchRig(t *testing.T) *dispatchRig {
	r := &dispatchRig{root: awstest.Root(t)}
	dbURL := awstest.Dynalite(t)
	r.store = newTable(t, dbURL, "hookstep")
	r.states = sfntest.New(t)
	r.invokes = awstest.NewLambda(t)
	var countedURL string
	r.dynamo, countedURL = newCounter(t, dbURL)
	env := functionEnv(dbURL, r.states.URL, r.invokes.URL, fakeSecrets(t))
	r.api = awstest.Run(t, awstest.Build(t, "api"), append(env, "AWS_ENDPOINT_URL_DYNAMODB="+countedURL))
	r.sweeper = awstest.Run(t, awstest.Build(t, "sweeper"), append(env, "HOOKSTEP_DISPATCH_RATE=1000", "AWS_LAMBDA_FUNCTION_TIMEOUT=120"))
	// Hand-offs wait while the test holds them: what the request path
	// does is told apart from what the sweeper does after.
	r.invokes.Handle("hookstep-sweeper", func(payload []byte) {
		r.hold.RLock()
		defer r.hold.RUnlock()
		if _, err := r.sweeper.Call(json.RawMessage(payload)); err != nil {
			t.Errorf("sweeper, invoked asynchronously: %v", err)
		}
	})
	r.app = storeApp(t, r.store)
	return r
}

// storeApp stores a new app.
func storeApp(t *testing.T, store *dynamo.Store) *webhook.App {
	t.Helper()
	now := time.Now().UTC()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "Acme", CreatedAt: now, UpdatedAt: now}
	if err := store.CreateApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	return app
}

// storeEndpoint stores an endpoint of the app to url, subscribed to
// everything.
func storeEndpoint(t *testing.T, store *dynamo.Store, appID, url string) *webhook.Endpoint {
	t.Helper()
	now := time.Now().UTC()
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: appID, URL: url, Version: 1,
		Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: now, UpdatedAt: now}
	if err := store.CreateEndpoint(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// endpoints stores n endpoints of the app (to an address nothing answers:
// no execution is played here).
func (r *dispatchRig) endpoints(t *testing.T, n int) {
	for range n {
		storeEndpoint(t, r.store, r.app.ID, "https://r.invalid/")
	}
}

// publish sends a message through the api function and returns its id,
// and the DynamoDB and StartExecution calls and hand-offs the request
// made.
func (r *dispatchRig) publish(t *testing.T, n int) (id string, dynamoCalls, starts, handOffs int) {
	t.Helper()
	r.dynamo.take()
	startsBefore, handOffsBefore := len(r.states.Calls()), r.invokes.Invokes("hookstep-sweeper")
	id = createMessage(t, r.api, r.root, r.app.ID, n)
	_, dynamoCalls = r.dynamo.take()
	return id, dynamoCalls, len(r.states.Calls()) - startsBefore, r.invokes.Invokes("hookstep-sweeper") - handOffsBefore
}

// createMessage sends a message (payload {"n":n}) to the app through the
// api function and returns its id.
func createMessage(t *testing.T, api *awstest.Function, root, appID string, n int) string {
	t.Helper()
	var res events.APIGatewayProxyResponse
	api.InvokeInto(t, apiEvent(t, root, "POST", "/api/v1/app/"+appID+"/msg",
		fmt.Sprintf(`{"eventType":"v1.end_user.created","payload":{"n":%d}}`, n)), &res)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("create message: got %d %s, want 202", res.StatusCode, res.Body)
	}
	var out struct{ ID string }
	json.Unmarshal([]byte(res.Body), &out)
	return out.ID
}

// deliveries returns the deliveries of a message.
func (r *dispatchRig) deliveries(t *testing.T, msgID string) []webhook.Delivery {
	t.Helper()
	var all []webhook.Delivery
	opts := webhook.ListOptions{Limit: webhook.MaxLimit}
	for {
		page, err := r.store.ListDeliveries(context.Background(), webhook.DeliveryFilter{ListOptions: opts, AppID: r.app.ID, MsgID: msgID})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Items...)
		if !page.More {
			return all
		}
		opts.Cursor = page.Items[len(page.Items)-1].EndpointID
	}
}

// TestAFanOutOf500IsBoundedOnTheRequestPath: a message to 500 endpoints is
// answered 202 after a bounded number of calls — the api starts the first
// 25 executions itself and hands the other 475 to the sweeper function in
// one asynchronous invoke — and all 500 executions start, each once.
func TestAFanOutOf500IsBoundedOnTheRequestPath(t *testing.T) {
	r := newDispatchRig(t)
	const n = 500
	r.endpoints(t, n)
	r.hold.Lock()
	msg, dynamoCalls, starts, handOffs := r.publish(t, 1)
	r.hold.Unlock()
	t.Logf("request path: %d DynamoDB calls, %d StartExecution, %d hand-offs", dynamoCalls, starts, handOffs)
	if starts != 25 || handOffs != 1 {
		t.Errorf("request path: %d StartExecution calls and %d hand-offs, want 25 and 1", starts, handOffs)
	}
	// Storing 500 deliveries takes 20 batch writes; listing 500
	// endpoints 2 queries; the rest is a handful, whatever the fan-out.
	if limit := n/25 + 25 + 15; dynamoCalls > limit {
		t.Errorf("request path: %d DynamoDB calls, want at most %d", dynamoCalls, limit)
	}
	r.invokes.Wait()
	started := 0
	for name := range r.states.Started() {
		if strings.HasPrefix(name, msg+"-") {
			started++
		}
	}
	if started != n {
		t.Errorf("%d executions started, want %d", started, n)
	}
	for _, d := range r.deliveries(t, msg) {
		if !d.Dispatched || d.Run != 0 {
			t.Errorf("delivery to %s: dispatched %v run %d, want dispatched run 0", d.EndpointID, d.Dispatched, d.Run)
		}
	}
}

// TestThrottledStartsAreDispatchedLater: StartExecution throttles the
// first 25 starts: the 20 requests' and 5 of the sweeper's. Each request
// still makes one start at most (its 202 does not wait on the
// throttles), the runs go to the sweeper function, which backs off and
// starts them: every delivery starts, each once.
func TestThrottledStartsAreDispatchedLater(t *testing.T) {
	r := newDispatchRig(t)
	r.endpoints(t, 1)
	const messages, throttles = 20, 25
	r.states.ThrottleNext(throttles)
	r.hold.Lock() // the requests first, then the sweeper: as StartExecution's bucket refills
	var ids []string
	for i := range messages {
		id, _, starts, _ := r.publish(t, i)
		if starts > 1 {
			t.Errorf("message %d: %d StartExecution calls on the request path, want at most 1", i, starts)
		}
		ids = append(ids, id)
	}
	r.hold.Unlock()
	r.invokes.Wait()
	// Whatever is left is the scheduled sweep's.
	for range 5 {
		var report struct{ Redriven int }
		var scheduled map[string]any
		json.Unmarshal(sample(t, r.root, "sweeper-scheduled-event.json"), &scheduled)
		r.sweeper.InvokeInto(t, scheduled, &report)
		if report.Redriven == 0 {
			break
		}
	}
	started := r.states.Started()
	for _, id := range ids {
		ds := r.deliveries(t, id)
		if len(ds) != 1 || !ds[0].Dispatched || ds[0].Run != 0 {
			t.Errorf("message %s: deliveries %+v, want one dispatched run 0", id, ds)
			continue
		}
		n := 0
		for name := range started {
			if strings.HasPrefix(name, id+"-") {
				n++
			}
		}
		if _, ok := started[sfn.ExecutionName(ds[0].Ref())]; !ok || n != 1 {
			t.Errorf("message %s: %d executions, want exactly %s", id, n, sfn.ExecutionName(ds[0].Ref()))
		}
	}
	if calls := len(r.states.Calls()); calls < messages+throttles {
		t.Errorf("%d StartExecution calls, want at least %d (every start and every throttle)", calls, messages+throttles)
	}
}

// sample returns one of the Lambda sample events in events/lambda.
func sample(t *testing.T, root, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", "lambda", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecoverRunsInTheSweeper: a recover over 2,000 failed messages is
// answered at once with its task running, without a StartExecution on the
// request path; the sweeper function, handed the task, re-sends them all
// (2,000 executions of run 1) and the task, polled through the API,
// reports its progress and ends finished with 2,000 recovered.
func TestRecoverRunsInTheSweeper(t *testing.T) {
	r := newDispatchRig(t)
	ctx := context.Background()
	now := time.Now().UTC()
	ep := storeEndpoint(t, r.store, r.app.ID, "https://r.invalid/")
	const n = 2000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: r.app.ID, EventType: "v1.end_user.created",
					Payload: []byte(`{"n":1}`), Timestamp: now, ExpiresAt: now.Add(time.Hour)}
				err := r.store.CreateMessage(ctx, msg, []webhook.Delivery{{EndpointID: ep.ID, Dispatched: true}})
				var from *webhook.Delivery // deferred until its first attempt
				if err == nil {
					from, err = r.store.GetDelivery(ctx, r.app.ID, msg.ID, ep.ID)
				}
				if err == nil {
					_, err = r.store.RecordAttempt(ctx, webhook.AttemptResult{
						Attempt: webhook.Attempt{ID: webhook.NewID(webhook.PrefixAttempt), AppID: r.app.ID, MsgID: msg.ID,
							EndpointID: ep.ID, EventType: msg.EventType, Status: webhook.StatusFail, Timestamp: now, ExpiresAt: msg.ExpiresAt},
						Attempts: 1, Status: webhook.StatusFail, From: from,
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	call := func(method, path, body string, want int, out any) {
		t.Helper()
		var res events.APIGatewayProxyResponse
		r.api.InvokeInto(t, apiEvent(t, r.root, method, path, body), &res)
		if res.StatusCode != want {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, res.StatusCode, res.Body, want)
		}
		json.Unmarshal([]byte(res.Body), out)
	}
	type task struct {
		ID, Status string
		Data       struct{ Recovered int }
	}
	r.hold.Lock()
	startsBefore := len(r.states.Calls())
	var started task
	call("POST", "/api/v1/app/"+r.app.ID+"/endpoint/"+ep.ID+"/recover",
		`{"since":"`+now.Add(-time.Minute).Format(time.RFC3339)+`"}`, http.StatusAccepted, &started)
	if started.Status != "running" || !strings.HasPrefix(started.ID, "qtask_") {
		t.Fatalf("recover: got %+v, want a running task", started)
	}
	if calls := len(r.states.Calls()) - startsBefore; calls != 0 || r.invokes.Invokes("hookstep-sweeper") != 1 {
		t.Errorf("request path: %d StartExecution calls and %d hand-offs, want none and the task's", calls, r.invokes.Invokes("hookstep-sweeper"))
	}
	var got task
	call("GET", "/api/v1/background-task/"+started.ID, "", http.StatusOK, &got)
	if got.Status != "running" || got.Data.Recovered != 0 {
		t.Errorf("task before the sweeper took it: %+v, want running, none recovered", got)
	}
	r.hold.Unlock()

	var seen []int
	deadline := time.Now().Add(2 * time.Minute)
	for got.Status == "running" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		call("GET", "/api/v1/background-task/"+started.ID, "", http.StatusOK, &got)
		if len(seen) == 0 || seen[len(seen)-1] != got.Data.Recovered {
			seen = append(seen, got.Data.Recovered)
		}
	}
	t.Logf("recovered counts seen while polling: %v", seen)
	if got.Status != "finished" || got.Data.Recovered != n {
		t.Fatalf("task: %+v, want finished with %d recovered", got, n)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Errorf("progress went back: %v", seen)
		}
	}
	if !slices.ContainsFunc(seen, func(v int) bool { return v > 0 && v < n }) {
		t.Errorf("no progress reported between 0 and %d: %v", n, seen)
	}
	r.invokes.Wait()
	reruns := 0
	for name := range r.states.Started() {
		if strings.HasSuffix(name, "-"+ep.ID+"-r1") {
			reruns++
		}
	}
	if reruns != n {
		t.Errorf("%d executions of run 1, want %d", reruns, n)
	}
}
