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

	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/lambdatest"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
)

// TestSvixSDKSuiteThroughTheAPIFunction runs the core issue's end-to-end
// suite (functions/local's Svix SDK tests, same assertions) against the
// api function under the runtime emulator instead of local mode: a bridge
// turns each HTTP request into an API Gateway REST proxy event with the
// stage in its path, and each execution the api function starts is played
// by calling the deliver function until its outcome is final, as the state
// machine would (waits shortened).
func TestSvixSDKSuiteThroughTheAPIFunction(t *testing.T) {
	root := lambdatest.Root(t)
	ctx := context.Background()
	dbURL := lambdatest.Dynalite(t)
	client := dynamodb.New(dynamodb.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(dbURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	if err := dynamo.CreateTable(ctx, client, "hookstep"); err != nil {
		t.Fatal(err)
	}
	states := sfntest.New(t)
	invokes := lambdatest.NewLambda(t)
	env := functionEnv(dbURL, states.URL, invokes.URL, fakeSecrets(t))
	api := lambdatest.Run(t, lambdatest.Build(t, "api"), env)
	deliver := lambdatest.Run(t, lambdatest.Build(t, "deliver"), env)
	handTo(t, invokes, lambdatest.Run(t, lambdatest.Build(t, "sweeper"), env))

	// The state machine, played: deliver until the outcome is final. The
	// emulator runs one invocation at a time, so executions take turns.
	var turn sync.Mutex
	var delivered int
	states.OnStart = func(ex sfntest.StartExecution) {
		var in map[string]any
		json.Unmarshal([]byte(ex.Input), &in)
		for range 20 {
			var out struct {
				Outcome string `json:"outcome"`
				Final   bool   `json:"final"`
			}
			turn.Lock()
			deliver.InvokeInto(t, in, &out)
			delivered++
			turn.Unlock()
			if out.Outcome != "retry" || out.Final {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	var apiTurn sync.Mutex
	var requests int
	bridge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		var res events.APIGatewayProxyResponse
		apiTurn.Lock()
		api.InvokeInto(t, ev, &res)
		requests++
		apiTurn.Unlock()
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
	defer bridge.Close()

	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", "^(TestSvixSDKEndToEnd|TestSvixSDKErrors)$", "./functions/local")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HOOKSTEP_E2E_URL="+bridge.URL, "HOOKSTEP_E2E_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the SDK suite failed against the api function: %v\n%s", err, out)
	}
	// The suite went through the bridge and its deliveries through the
	// deliver function, not through a local server of its own.
	apiTurn.Lock()
	turn.Lock()
	t.Logf("the suite made %d API requests through the api function and %d deliver invocations", requests, delivered)
	if requests < 20 || delivered < 5 {
		t.Errorf("the suite made %d API requests and %d deliver invocations; want it to have used the functions", requests, delivered)
	}
	turn.Unlock()
	apiTurn.Unlock()
	for _, name := range []string{"--- PASS: TestSvixSDKEndToEnd", "--- PASS: TestSvixSDKErrors"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("%q not in the suite's output (skipped?):\n%s", name, out)
		}
	}
}
