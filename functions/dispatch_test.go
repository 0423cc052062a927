package functions_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/lambdatest"
	"github.com/hookstep/hookstep/internal/sfn"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// counter is a reverse proxy to dynalite that counts the DynamoDB calls
// that pass through it, by operation.
type counter struct {
	mu    sync.Mutex
	calls map[string]int
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
	invokes *lambdatest.Lambda
	dynamo  *counter
	api     *lambdatest.Function
	sweeper *lambdatest.Function
	app     *webhook.App
	// hold, locked, keeps the hand-offs from the sweeper function.
	hold sync.RWMutex
}

func newDispatchRig(t *testing.T) *dispatchRig {
	ctx := context.Background()
	r := &dispatchRig{root: lambdatest.Root(t)}
	dbURL := lambdatest.Dynalite(t)
	client := dynamodb.New(dynamodb.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err := dynamo.CreateTable(ctx, client, "hookstep"); err != nil {
		t.Fatal(err)
	}
	r.store = dynamo.New(client, "hookstep", webhook.SystemClock{})
	r.states = sfntest.New(t)
	r.invokes = lambdatest.NewLambda(t)
	var countedURL string
	r.dynamo, countedURL = newCounter(t, dbURL)
	env := functionEnv(dbURL, r.states.URL, r.invokes.URL, fakeSecrets(t))
	r.api = lambdatest.Run(t, lambdatest.Build(t, "api"), append(env, "AWS_ENDPOINT_URL_DYNAMODB="+countedURL))
	r.sweeper = lambdatest.Run(t, lambdatest.Build(t, "sweeper"), append(env, "HOOKSTEP_DISPATCH_RATE=1000"))
	// Hand-offs wait while the test holds them: what the request path
	// does is told apart from what the sweeper does after.
	r.invokes.Handle("hookstep-sweeper", func(payload []byte) {
		r.hold.RLock()
		defer r.hold.RUnlock()
		if _, err := r.sweeper.Call(json.RawMessage(payload)); err != nil {
			t.Errorf("sweeper, invoked asynchronously: %v", err)
		}
	})
	now := time.Now().UTC()
	r.app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "Acme", CreatedAt: now, UpdatedAt: now}
	if err := r.store.CreateApp(ctx, r.app); err != nil {
		t.Fatal(err)
	}
	return r
}

// endpoints stores n endpoints of the app (to an address nothing answers:
// no execution is played here).
func (r *dispatchRig) endpoints(t *testing.T, n int) {
	now := time.Now().UTC()
	for range n {
		ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: r.app.ID, URL: "https://r.invalid/", Version: 1,
			Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdefghijklmn")}}, CreatedAt: now, UpdatedAt: now}
		if err := r.store.CreateEndpoint(context.Background(), ep); err != nil {
			t.Fatal(err)
		}
	}
}

// publish sends a message through the api function and returns its id,
// and the DynamoDB and StartExecution calls and hand-offs the request
// made.
func (r *dispatchRig) publish(t *testing.T, n int) (id string, dynamoCalls, starts, handOffs int) {
	t.Helper()
	r.dynamo.take()
	startsBefore, handOffsBefore := len(r.states.Calls()), r.invokes.Invokes("hookstep-sweeper")
	var res events.APIGatewayProxyResponse
	r.api.InvokeInto(t, apiEvent(t, r.root, "POST", "/api/v1/app/"+r.app.ID+"/msg",
		fmt.Sprintf(`{"eventType":"v1.end_user.created","payload":{"n":%d}}`, n)), &res)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("create message: got %d %s, want 202", res.StatusCode, res.Body)
	}
	var out struct{ ID string }
	json.Unmarshal([]byte(res.Body), &out)
	_, dynamoCalls = r.dynamo.take()
	return out.ID, dynamoCalls, len(r.states.Calls()) - startsBefore, r.invokes.Invokes("hookstep-sweeper") - handOffsBefore
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
