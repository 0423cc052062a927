package functions_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestSvixSDKSuiteThroughTheAPIFunction runs the core issue's end-to-end
// suite (functions/local's Svix SDK tests, same assertions) against the
// api function under the runtime emulator instead of local mode: a bridge
// turns each HTTP request into an API Gateway REST proxy event with the
// stage in its path, and each execution the api function starts is played
// by calling the deliver function until its outcome is final, as the state
// machine would (waits shortened).
func TestSvixSDKSuiteThroughTheAPIFunction(t *testing.T) {
	dbURL := awstest.Dynalite(t)
	newTable(t, dbURL, "hookstep")
	states := sfntest.New(t)
	invokes := awstest.NewLambda(t)
	env := functionEnv(dbURL, states.URL, invokes.URL, fakeSecrets(t))
	api := awstest.Run(t, awstest.Build(t, "api"), env)
	executions := playExecutions(t, states, awstest.Run(t, awstest.Build(t, "deliver"), env))
	handTo(t, invokes, awstest.Run(t, awstest.Build(t, "sweeper"), env))

	bridge := newAPIBridge(t, api)
	runSDKSuite(t, bridge.URL)
	// The suite went through the bridge and its deliveries through the
	// deliver function, not through a local server of its own.
	requests, delivered := bridge.requests(), executions.invocations()
	t.Logf("the suite made %d API requests through the api function and %d deliver invocations", requests, delivered)
	if requests < 20 || delivered < 5 {
		t.Errorf("the suite made %d API requests and %d deliver invocations; want it to have used the functions", requests, delivered)
	}
}

// newTable creates the table the stack creates, in the DynamoDB at dbURL,
// and returns a store of it.
func newTable(t *testing.T, dbURL, name string) *dynamo.Store {
	t.Helper()
	client := dynamodb.New(dynamodb.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err := dynamo.CreateTable(context.Background(), client, name); err != nil {
		t.Fatal(err)
	}
	return dynamo.New(client, name, webhook.SystemClock{})
}

// runSDKSuite runs functions/local's Svix SDK suite against the hookstep
// API at url and fails the test if the suite fails or skips.
func runSDKSuite(t *testing.T, url string) {
	t.Helper()
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "^(TestSvixSDKEndToEnd|TestSvixSDKErrors|TestSvixSDKAppPortal|TestSvixSDKOperationalWebhooks|TestSvixSDKMessagesAndStats)$", "./functions/local")
	cmd.Dir = awstest.Root(t)
	cmd.Env = append(os.Environ(), "HOOKSTEP_E2E_URL="+url, "HOOKSTEP_E2E_TOKEN="+token,
		// What the api function's links and portal carry (functionEnv).
		"HOOKSTEP_E2E_BASE_PATH=/prod", "HOOKSTEP_E2E_FRAME_ANCESTORS="+portalOrigin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the SDK suite failed against the api function: %v\n%s", err, out)
	}
	for _, name := range []string{"--- PASS: TestSvixSDKEndToEnd", "--- PASS: TestSvixSDKErrors", "--- PASS: TestSvixSDKAppPortal", "--- PASS: TestSvixSDKOperationalWebhooks", "--- PASS: TestSvixSDKMessagesAndStats"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("%q not in the suite's output (skipped?):\n%s", name, out)
		}
	}
}

// apiBridge is an HTTP server that passes each request to the api
// function as an API Gateway REST proxy event, with the stage in its
// path, one at a time (the emulator runs one invocation at a time).
type apiBridge struct {
	*httptest.Server
	mu    sync.Mutex
	count int
}

func newAPIBridge(t *testing.T, api *awstest.Function) *apiBridge {
	b := &apiBridge{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev := events.APIGatewayProxyRequest{
			HTTPMethod:                      r.Method,
			Path:                            "/prod" + r.URL.Path,
			MultiValueHeaders:               r.Header,
			MultiValueQueryStringParameters: r.URL.Query(),
			Body:                            base64.StdEncoding.EncodeToString(body),
			IsBase64Encoded:                 true,
			RequestContext: events.APIGatewayProxyRequestContext{
				Stage: "prod", Path: "/prod" + r.URL.Path, HTTPMethod: r.Method, DomainName: r.Host,
			},
		}
		b.mu.Lock()
		raw, err := api.Call(ev)
		b.count++
		b.mu.Unlock()
		var res events.APIGatewayProxyResponse
		if err == nil {
			err = json.Unmarshal(raw, &res)
		}
		if err != nil {
			t.Errorf("api bridge: %s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, "the api function failed", http.StatusBadGateway)
			return
		}
		for k, vs := range res.MultiValueHeaders {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(res.StatusCode)
		out := []byte(res.Body)
		if res.IsBase64Encoded {
			out, _ = base64.StdEncoding.DecodeString(res.Body)
		}
		w.Write(out)
	}))
	t.Cleanup(b.Close)
	return b
}

// requests returns how many requests went through the bridge.
func (b *apiBridge) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.count
}

// step is what the deliver function returns to the state machine.
type step struct {
	Outcome  string     `json:"outcome"`
	Attempt  int        `json:"attempt"`
	Final    bool       `json:"final"`
	ResumeAt *time.Time `json:"resumeAt"`
}

// player plays the delivery state machine for the executions started at
// a Step Functions fake: it invokes the deliver function with the
// execution's input until the outcome is final. A Wait of the schedule is
// shortened to a pause (the function says when a retry is not due yet);
// WaitUntil is kept: after a result with resumeAt, the next invocation
// waits until then, as the state machine's TimestampPath Wait does. The
// emulator runs one invocation at a time, so executions take turns.
type player struct {
	t      *testing.T
	states *sfntest.Server
	fn     *awstest.Function

	turn    sync.Mutex // held during an invocation of fn
	running sync.WaitGroup

	mu      sync.Mutex
	closed  bool              // the test is ending: start nothing more
	steps   map[string][]step // results by execution name
	invoked int
}

// playExecutions plays every execution started at states with fn, until
// the test ends (which waits for the executions being played).
func playExecutions(t *testing.T, states *sfntest.Server, fn *awstest.Function) *player {
	p := &player{t: t, states: states, fn: fn, steps: map[string][]step{}}
	states.OnStart = p.play
	t.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.running.Wait()
	})
	return p
}

// maxWaitUntil bounds how far ahead a played WaitUntil may wait: a test
// schedule's waits are seconds at most.
const maxWaitUntil = 30 * time.Second

func (p *player) play(ex sfntest.StartExecution) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.running.Add(1)
	p.mu.Unlock()
	defer p.running.Done()
	for range 50 {
		body, err := p.invoke(json.RawMessage(ex.Input))
		var res step
		if err == nil {
			err = json.Unmarshal(body, &res)
		}
		if err != nil {
			p.t.Errorf("execution %s: deliver: %v", ex.Name, err)
			return
		}
		p.mu.Lock()
		p.steps[ex.Name] = append(p.steps[ex.Name], res)
		p.mu.Unlock()
		switch {
		case res.Outcome != "retry" || res.Final:
			p.states.End(ex.Name, "SUCCEEDED")
			return
		case res.ResumeAt != nil:
			wait := time.Until(*res.ResumeAt)
			if wait > maxWaitUntil {
				p.t.Errorf("execution %s: resumeAt %v is %v away, more than a test schedule waits", ex.Name, *res.ResumeAt, wait)
				return
			}
			time.Sleep(wait)
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
	p.t.Errorf("execution %s: not final after 50 steps: %+v", ex.Name, p.stepsOf(ex.Name))
}

// invoke calls the function with event in its turn.
func (p *player) invoke(event any) ([]byte, error) {
	p.turn.Lock()
	defer p.turn.Unlock()
	p.mu.Lock()
	p.invoked++
	p.mu.Unlock()
	return p.fn.Call(event)
}

// invocations returns how many times the function has been invoked.
func (p *player) invocations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.invoked
}

// stepsOf returns the results of the execution's steps so far.
func (p *player) stepsOf(name string) []step {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]step(nil), p.steps[name]...)
}
