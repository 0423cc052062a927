package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// endpoint is the DynamoDB API the tests talk to: HOOKSTEP_DYNAMODB_ENDPOINT,
// or a dynalite that TestMain starts. skipReason is set when there is
// neither.
var endpoint, skipReason string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	if ep := os.Getenv("HOOKSTEP_DYNAMODB_ENDPOINT"); ep != "" {
		endpoint = ep
		return m.Run()
	}
	root, err := awstest.RootDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: internal/dynamo:", err)
		return 1
	}
	dynalite, ep, err := awstest.StartDynalite(awstest.DynalitePath(root), os.Stderr)
	if err != nil {
		msg := fmt.Sprintf("dynalite is missing (%v); `make test` installs it (npm --prefix infra install)", err)
		if os.Getenv("HOOKSTEP_REQUIRE_DYNALITE") == "1" {
			fmt.Fprintln(os.Stderr, "FAIL: internal/dynamo: "+msg+"; HOOKSTEP_REQUIRE_DYNALITE=1 requires it")
			return 1
		}
		fmt.Println("internal/dynamo: " + msg + "; skipping the DynamoDB store tests")
		skipReason = msg
		return m.Run()
	}
	defer dynalite.Stop()
	endpoint = ep
	return m.Run()
}

// recorder counts the DynamoDB operations a client sends, and can fail
// chosen requests before they are sent, as if the process died there.
type recorder struct {
	mu   sync.Mutex
	ops  map[string]int
	fail func(params any) error
}

// allOps counts the operations of every test's client.
var allOps = &recorder{}

func (r *recorder) record(op string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ops == nil {
		r.ops = make(map[string]int)
	}
	r.ops[op]++
}

// counts returns the operations counted so far.
func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.ops)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = nil
}

// failWith makes the requests for which fail returns an error fail.
func (r *recorder) failWith(fail func(params any) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = fail
}

func (r *recorder) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("hookstepRecorder",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			r.record(op)
			allOps.record(op)
			r.mu.Lock()
			fail := r.fail
			r.mu.Unlock()
			if fail != nil {
				if err := fail(in.Parameters); err != nil {
					return middleware.InitializeOutput{}, middleware.Metadata{}, err
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

// testStore is a Store on a fresh table, with the client, the recorder
// and the capacity meter behind it.
type testStore struct {
	*Store
	client   *dynamodb.Client
	rec      *recorder
	capacity *CapacityMeter
	table    string
}

// Consumed returns the capacity the store has consumed.
func (s *testStore) Consumed() Capacity { return s.capacity.Consumed() }

// newStore creates a table with a random name and a Store on it, and
// deletes the table when the test ends.
func newStore(t *testing.T, clock webhook.Clock) *testStore {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	ctx := t.Context()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("hookstep", "hookstep", "")),
	)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	rec, capacity := &recorder{}, &CapacityMeter{}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.APIOptions = append(o.APIOptions, rec.middleware, capacity.Install)
	})
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	table := "hookstep-test-" + hex.EncodeToString(b)
	if err := CreateTable(ctx, client, table); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Errorf("DeleteTable %s: %v", table, err)
		}
	})
	rec.reset() // count the store's operations only
	return &testStore{Store: New(client, table, clock), client: client, rec: rec, capacity: capacity, table: table}
}

func TestStore(t *testing.T) {
	if skipReason != "" {
		t.Skip(skipReason)
	}
	allOps.reset()
	storetest.Run(t, func(t *testing.T, clock webhook.Clock) webhook.Store {
		return newStore(t, clock)
	})

	// No request path may scan the table, and dynalite has no
	// transactions (so neither may production code rely on them).
	ops := allOps.counts()
	for _, op := range []string{"Scan", "TransactWriteItems", "TransactGetItems", "ExecuteStatement"} {
		if ops[op] > 0 {
			t.Errorf("the suite sent %d %s requests, want none", ops[op], op)
		}
	}
	t.Logf("operations sent by the suite: %v", ops)
}

// fixture is an app with an endpoint on a fresh store, for the tests of
// DynamoDB specifics.
type fixture struct {
	*testStore
	t     *testing.T
	ctx   context.Context
	clock *storetest.Clock
	app   *webhook.App
	ep    *webhook.Endpoint
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clock := storetest.NewClock(storetest.Epoch)
	f := &fixture{testStore: newStore(t, clock), t: t, ctx: t.Context(), clock: clock}
	now := clock.Now()
	f.app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "app", CreatedAt: now, UpdatedAt: now}
	if err := f.CreateApp(f.ctx, f.app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	f.ep = f.endpoint()
	return f
}

func (f *fixture) endpoint() *webhook.Endpoint {
	f.t.Helper()
	now := f.clock.Now()
	ep := &webhook.Endpoint{
		ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/hook",
		Keys: []webhook.SigningKey{{Key: []byte("secret")}}, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := f.CreateEndpoint(f.ctx, ep); err != nil {
		f.t.Fatalf("CreateEndpoint: %v", err)
	}
	return ep
}

// newMessage returns a message of the fixture's app, timestamped now.
func (f *fixture) newMessage(retention time.Duration) *webhook.Message {
	now := f.clock.Now()
	return &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: []byte(`{"user":"u1"}`), Timestamp: now, ExpiresAt: now.Add(retention),
	}
}

// message stores a message, living for the retention, delivered to the
// endpoints.
func (f *fixture) message(retention time.Duration, endpointIDs ...string) *webhook.Message {
	f.t.Helper()
	msg := f.newMessage(retention)
	var ds []webhook.Delivery
	for _, id := range endpointIDs {
		ds = append(ds, webhook.Delivery{EndpointID: id})
	}
	if err := f.CreateMessage(f.ctx, msg, ds); err != nil {
		f.t.Fatalf("CreateMessage: %v", err)
	}
	return msg
}

func (f *fixture) attempt(msg *webhook.Message, endpointID string, status webhook.Status) webhook.Attempt {
	now := f.clock.Now()
	code := 200
	if status != webhook.StatusSuccess {
		code = 500
	}
	return webhook.Attempt{
		ID: webhook.NewID(webhook.PrefixAttempt), AppID: msg.AppID, MsgID: msg.ID, EndpointID: endpointID,
		EventType: msg.EventType, URL: "https://example.com/hook", Response: `{"ok":true}`,
		ResponseStatusCode: code, ResponseDurationMs: 12, Status: status, Timestamp: now, ExpiresAt: msg.ExpiresAt,
	}
}

// rawItem reads an item as stored, bypassing the Store.
func (f *fixture) rawItem(k key) (item, bool) {
	f.t.Helper()
	out, err := f.client.GetItem(f.ctx, &dynamodb.GetItemInput{TableName: &f.table, Key: k.item(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		f.t.Fatalf("GetItem %v: %v", k, err)
	}
	return out.Item, out.Item != nil
}

// TestExpiredItemsIgnored checks that reads hide expired items that are
// still in the table (DynamoDB's TTL deletes lazily, dynalite never), and
// that the items carry the TTL attribute in epoch seconds.
func TestExpiredItemsIgnored(t *testing.T) {
	f := newFixture(t)
	msg := f.message(time.Hour, f.ep.ID)
	att := f.attempt(msg, f.ep.ID, webhook.StatusFail)
	if _, err := f.RecordAttempt(f.ctx, webhook.AttemptResult{Attempt: att, Attempts: 1, Status: webhook.StatusSending}); err != nil {
		t.Fatalf("RecordAttempt: %v", err)
	}
	idemExp := f.clock.Now().Add(time.Hour + 500*time.Millisecond)
	if rec, err := f.BeginIdempotent(f.ctx, "key", "", idemExp, time.Time{}); err != nil || rec != nil {
		t.Fatalf("BeginIdempotent = %v, %v; want a claim", rec, err)
	}

	for _, tc := range []struct {
		name string
		k    key
		exp  time.Time
	}{
		{"message", messageKey(f.app.ID, msg.ID), msg.ExpiresAt},
		{"delivery", deliveryKey(f.app.ID, msg.ID, f.ep.ID), msg.ExpiresAt},
		{"attempt", attemptKey(f.app.ID, msg.ID, att.ID), att.ExpiresAt},
		{"idempotency", idempotencyKey("key"), idemExp},
	} {
		it, ok := f.rawItem(tc.k)
		if !ok {
			t.Fatalf("%s item missing", tc.name)
		}
		want := (tc.exp.UnixMilli() + 999) / 1000 // the second at or after the expiry
		if got := numAttr(it, TTLAttribute); got != want {
			t.Errorf("%s %s = %d, want %d (epoch seconds, rounded up)", tc.name, TTLAttribute, got, want)
		}
	}

	f.clock.Set(idemExp.Add(time.Millisecond))
	for _, k := range []key{messageKey(f.app.ID, msg.ID), attemptKey(f.app.ID, msg.ID, att.ID)} {
		if _, ok := f.rawItem(k); !ok {
			t.Fatalf("item %v was deleted; the test needs it to stay", k)
		}
	}
	_, err := f.GetMessage(f.ctx, f.app.ID, msg.ID)
	wantKind(t, "GetMessage(expired)", err, webhook.KindNotFound)
	_, err = f.GetAttempt(f.ctx, f.app.ID, msg.ID, att.ID)
	wantKind(t, "GetAttempt(expired)", err, webhook.KindNotFound)
	_, err = f.GetDelivery(f.ctx, f.app.ID, msg.ID, f.ep.ID)
	wantKind(t, "GetDelivery(of expired message)", err, webhook.KindNotFound)
	if rec, err := f.BeginIdempotent(f.ctx, "key", "", f.clock.Now().Add(time.Hour), time.Time{}); err != nil || rec != nil {
		t.Errorf("BeginIdempotent(expired key) = %+v, %v; want a fresh claim", rec, err)
	}
}

// TestRecordAttemptConditional races several results for the same
// attempt: exactly one applies, every attempt is logged.
func TestRecordAttemptConditional(t *testing.T) {
	f := newFixture(t)
	msg := f.message(time.Hour, f.ep.ID)
	const n = 8
	var wg sync.WaitGroup
	start := make(chan struct{})
	got := make([]*webhook.Delivery, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			status := webhook.StatusSuccess
			if i%2 == 1 {
				status = webhook.StatusFail
			}
			res := webhook.AttemptResult{Attempt: f.attempt(msg, f.ep.ID, status), Attempts: 1, Status: webhook.StatusSuccess}
			if status != webhook.StatusSuccess {
				res.Status, res.NextAttemptAt = webhook.StatusSending, f.clock.Now().Add(time.Minute)
			}
			<-start
			got[i], errs[i] = f.RecordAttempt(f.ctx, res)
		})
	}
	close(start)
	wg.Wait()
	final, err := f.GetDelivery(f.ctx, f.app.ID, msg.ID, f.ep.ID)
	if err != nil {
		t.Fatalf("GetDelivery: %v", err)
	}
	if final.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1: exactly one of %d racing results applies", final.Attempts, n)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("RecordAttempt %d: %v", i, errs[i])
		}
		if got[i].Attempts != 1 || got[i].Status != final.Status {
			t.Errorf("RecordAttempt %d returned %+v, want the final delivery %+v", i, got[i], final)
		}
	}
	atts, err := f.ListAttempts(f.ctx, webhook.AttemptFilter{AppID: f.app.ID, MsgID: msg.ID})
	if err != nil {
		t.Fatalf("ListAttempts: %v", err)
	}
	if len(atts.Items) != n {
		t.Errorf("got %d attempts logged, want %d", len(atts.Items), n)
	}
}

// TestRecordAttemptRacesCancel races an attempt's result against the
// sweeper's cancel and a dispatcher's finish: the delivery ends in the
// state of exactly one of them.
func TestRecordAttemptRacesCancel(t *testing.T) {
	f := newFixture(t)
	for round := range 10 {
		msg := f.message(time.Hour, f.ep.ID)
		ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: f.ep.ID}
		now := f.clock.Now()
		var wg sync.WaitGroup
		start := make(chan struct{})
		var recorded *webhook.Delivery
		var errs [3]error
		var canceled int
		wg.Go(func() {
			<-start
			res := webhook.AttemptResult{Attempt: f.attempt(msg, f.ep.ID, webhook.StatusSuccess), Attempts: 1, Status: webhook.StatusSuccess}
			recorded, errs[0] = f.RecordAttempt(f.ctx, res)
		})
		wg.Go(func() {
			<-start
			canceled, errs[1] = f.CancelDeliveries(f.ctx, f.app.ID, f.ep.ID, now)
		})
		wg.Go(func() {
			<-start
			errs[2] = f.FinishDelivery(f.ctx, ref, webhook.StatusFail, now)
		})
		close(start)
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		d, err := f.GetDelivery(f.ctx, f.app.ID, msg.ID, f.ep.ID)
		if err != nil {
			t.Fatalf("GetDelivery: %v", err)
		}
		switch d.Status {
		case webhook.StatusSuccess:
			if d.Attempts != 1 || canceled != 0 {
				t.Errorf("round %d: success with %d attempts and %d canceled, want 1 and 0", round, d.Attempts, canceled)
			}
		case webhook.StatusCanceled:
			if d.Attempts != 0 || canceled != 1 {
				t.Errorf("round %d: canceled with %d attempts and %d canceled, want 0 and 1", round, d.Attempts, canceled)
			}
		case webhook.StatusFail:
			if d.Attempts != 0 || canceled != 0 {
				t.Errorf("round %d: failed with %d attempts and %d canceled, want 0 and 0", round, d.Attempts, canceled)
			}
		default:
			t.Errorf("round %d: status %v, want a final one", round, d.Status)
		}
		if recorded.Status != d.Status {
			t.Errorf("round %d: RecordAttempt returned status %v, want the final %v", round, recorded.Status, d.Status)
		}
		f.clock.Advance(time.Second)
	}
}

// TestDisableRacesSuccess races the sweeper's disable against a success
// that clears FailingSince: either the disable wins (and the endpoint is
// disabled) or it is refused (and the endpoint is enabled and healthy).
func TestDisableRacesSuccess(t *testing.T) {
	f := newFixture(t)
	for round := range 10 {
		ep := f.endpoint()
		failed := f.message(time.Hour, ep.ID)
		res := webhook.AttemptResult{Attempt: f.attempt(failed, ep.ID, webhook.StatusFail), Attempts: 1, Status: webhook.StatusSending}
		if _, err := f.RecordAttempt(f.ctx, res); err != nil {
			t.Fatalf("RecordAttempt: %v", err)
		}
		since := f.clock.Now()
		msg := f.message(time.Hour, ep.ID)
		f.clock.Advance(8 * 24 * time.Hour)

		var wg sync.WaitGroup
		start := make(chan struct{})
		var disableErr, recordErr error
		wg.Go(func() {
			<-start
			disableErr = f.DisableEndpoint(f.ctx, f.app.ID, ep.ID, since, f.clock.Now())
		})
		wg.Go(func() {
			<-start
			ok := webhook.AttemptResult{Attempt: f.attempt(msg, ep.ID, webhook.StatusSuccess), Attempts: 1, Status: webhook.StatusSuccess}
			_, recordErr = f.RecordAttempt(f.ctx, ok)
		})
		close(start)
		wg.Wait()
		if recordErr != nil {
			t.Fatalf("round %d: RecordAttempt: %v", round, recordErr)
		}
		got, err := f.GetEndpoint(f.ctx, f.app.ID, ep.ID)
		if err != nil {
			t.Fatalf("GetEndpoint: %v", err)
		}
		switch {
		case disableErr == nil && !got.Disabled:
			t.Errorf("round %d: DisableEndpoint succeeded but the endpoint is enabled", round)
		case webhook.IsConflict(disableErr) && (got.Disabled || !got.FailingSince.IsZero()):
			t.Errorf("round %d: DisableEndpoint refused but the endpoint is disabled=%v, failing since %v", round, got.Disabled, got.FailingSince)
		case disableErr != nil && !webhook.IsConflict(disableErr):
			t.Errorf("round %d: DisableEndpoint: %v", round, disableErr)
		}
		if !got.FailingSince.IsZero() {
			t.Errorf("round %d: FailingSince = %v after a success, want zero", round, got.FailingSince)
		}
	}
}

// TestHappyPathCost pins what RecordAttempt sends for a successful attempt
// of a dispatched delivery to a healthy endpoint: one BatchGetItem, two
// writes (the attempt and the delivery), no endpoint write. dynalite
// reports table capacity only, so the two writes show as 2 units; each
// also writes its IndexEndpoint entry, which makes 4 on DynamoDB.
func TestHappyPathCost(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name       string
		failing    bool // the endpoint is failing before the attempt
		status     webhook.Status
		wantOps    map[string]int
		wantWrites float64
	}{
		{"SuccessHealthy", false, webhook.StatusSuccess, map[string]int{"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 1}, 2},
		{"FailureFailing", true, webhook.StatusFail, map[string]int{"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 1}, 2},
		{"FirstFailure", false, webhook.StatusFail, map[string]int{"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 2}, 3},
		{"Recovery", true, webhook.StatusSuccess, map[string]int{"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 2}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := f.endpoint()
			if tc.failing {
				earlier := f.message(time.Hour, ep.ID)
				res := webhook.AttemptResult{Attempt: f.attempt(earlier, ep.ID, webhook.StatusFail), Attempts: 1, Status: webhook.StatusSending}
				if _, err := f.RecordAttempt(f.ctx, res); err != nil {
					t.Fatalf("RecordAttempt: %v", err)
				}
			}
			msg := f.message(time.Hour, ep.ID)
			if err := f.MarkDispatched(f.ctx, webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}); err != nil {
				t.Fatalf("MarkDispatched: %v", err)
			}
			res := webhook.AttemptResult{Attempt: f.attempt(msg, ep.ID, tc.status), Attempts: 1, Status: webhook.StatusSuccess}
			if tc.status != webhook.StatusSuccess {
				res.Status, res.NextAttemptAt = webhook.StatusSending, f.clock.Now().Add(time.Minute)
			}
			// What the deliver function reads before it sends.
			reads := f.Consumed()
			if _, err := f.GetDelivery(f.ctx, f.app.ID, msg.ID, ep.ID); err != nil {
				t.Fatalf("GetDelivery: %v", err)
			}
			if _, err := f.GetEndpoint(f.ctx, f.app.ID, ep.ID); err != nil {
				t.Fatalf("GetEndpoint: %v", err)
			}
			if _, err := f.GetMessage(f.ctx, f.app.ID, msg.ID); err != nil {
				t.Fatalf("GetMessage: %v", err)
			}
			loads := f.Consumed().Sub(reads)

			f.rec.reset()
			before := f.Consumed()
			if _, err := f.RecordAttempt(f.ctx, res); err != nil {
				t.Fatalf("RecordAttempt: %v", err)
			}
			used := f.Consumed().Sub(before)
			if got := f.rec.counts(); !maps.Equal(got, tc.wantOps) {
				t.Errorf("RecordAttempt sent %v, want %v", got, tc.wantOps)
			}
			if used.WriteUnits != tc.wantWrites {
				t.Errorf("RecordAttempt consumed %v table write units, want %v", used.WriteUnits, tc.wantWrites)
			}
			if loads.WriteUnits != 0 {
				t.Errorf("the deliver function's reads wrote %v units", loads.WriteUnits)
			}
			t.Logf("%s: loads %.1f read units; RecordAttempt %.1f read units, %.1f table write units",
				tc.name, loads.ReadUnits, used.ReadUnits, used.WriteUnits)
		})
	}
}

// TestDeferredFirstAttemptCost pins the AWS happy path: a message whose
// delivery was dispatched before it was stored writes the message alone
// (no delivery item, no id check); the deliver function reads the run in
// one BatchGetItem and records a success to a healthy endpoint with two
// puts and no read — the attempt and the delivery, final, in no
// IndexSweep entry. A failure on the first attempt writes the endpoint's
// health too, and puts the delivery in IndexSweep for its retry.
func TestDeferredFirstAttemptCost(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name    string
		status  webhook.Status
		wantOps map[string]int
	}{
		{"Success", webhook.StatusSuccess, map[string]int{"PutItem": 2}},
		{"Failure", webhook.StatusFail, map[string]int{"PutItem": 2, "UpdateItem": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := f.endpoint()
			msg := f.newMessage(time.Hour)
			f.rec.reset()
			if err := f.CreateMessage(f.ctx, msg, []webhook.Delivery{{EndpointID: ep.ID, Dispatched: true}}); err != nil {
				t.Fatal(err)
			}
			if got := f.rec.counts(); !maps.Equal(got, map[string]int{"PutItem": 1}) {
				t.Errorf("CreateMessage sent %v, want the message's put alone", got)
			}
			ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID}
			f.rec.reset()
			d, gotEp, gotMsg, err := f.LoadRun(f.ctx, ref)
			if err != nil || !d.Deferred || gotEp == nil || gotMsg == nil {
				t.Fatalf("LoadRun: %+v, %v, %v, %v; want the deferred delivery, its endpoint and message", d, gotEp, gotMsg, err)
			}
			if got := f.rec.counts(); !maps.Equal(got, map[string]int{"BatchGetItem": 1}) {
				t.Errorf("LoadRun sent %v, want one BatchGetItem", got)
			}
			res := webhook.AttemptResult{Attempt: f.attempt(msg, ep.ID, tc.status), Attempts: 1, Status: webhook.StatusSuccess, From: d, Endpoint: gotEp}
			if tc.status != webhook.StatusSuccess {
				res.Status, res.NextAttemptAt = webhook.StatusSending, f.clock.Now().Add(time.Minute)
			}
			f.rec.reset()
			after, err := f.RecordAttempt(f.ctx, res)
			if err != nil || after.Status != res.Status || after.Attempts != 1 || after.Deferred {
				t.Fatalf("RecordAttempt: %+v, %v", after, err)
			}
			if got := f.rec.counts(); !maps.Equal(got, tc.wantOps) {
				t.Errorf("RecordAttempt sent %v, want %v", got, tc.wantOps)
			}
			overdue, err := f.ListOverdue(f.ctx, f.clock.Now().Add(time.Hour), 100)
			inSweep := slices.ContainsFunc(overdue, func(o webhook.Delivery) bool { return o.Ref() == ref })
			if err != nil || inSweep != (tc.status != webhook.StatusSuccess) {
				t.Errorf("in IndexSweep after the attempt: %v (%v); want it there only while a retry is due", inSweep, err)
			}
		})
	}
}

// errCrash stands for the process dying at a request.
var errCrash = errors.New("injected crash")

// crashOn fails every PutItem whose item has the sort key sk.
func crashOn(sk string) func(params any) error {
	return func(params any) error {
		if in, ok := params.(*dynamodb.PutItemInput); ok && stringAttr(in.Item, AttrSK) == sk {
			return errCrash
		}
		return nil
	}
}

// TestCreateMessageCrash dies between the deliveries and the message, the
// crash window of CreateMessage: nothing becomes visible, the sweeper does
// not re-drive the deliveries and removes them once they are old, and the
// event id is free again after claimGrace.
func TestCreateMessageCrash(t *testing.T) {
	f := newFixture(t)
	msg := f.newMessage(24 * time.Hour)
	msg.EventID = "order-1"
	f.rec.failWith(crashOn("M"))
	err := f.CreateMessage(f.ctx, msg, []webhook.Delivery{{EndpointID: f.ep.ID}})
	f.rec.failWith(nil)
	if !errors.Is(err, errCrash) {
		t.Fatalf("CreateMessage: got %v, want the injected crash", err)
	}
	_, err = f.GetMessage(f.ctx, f.app.ID, msg.ID)
	wantKind(t, "GetMessage(never committed)", err, webhook.KindNotFound)
	_, err = f.GetMessage(f.ctx, f.app.ID, msg.EventID)
	wantKind(t, "GetMessage(event id of a message never committed)", err, webhook.KindNotFound)
	msgs, err := f.ListMessages(f.ctx, webhook.MessageFilter{AppID: f.app.ID})
	if err != nil || len(msgs.Items) != 0 {
		t.Errorf("ListMessages = %d items, %v; want none", len(msgs.Items), err)
	}

	// Within claimGrace the claim may belong to a writer still at work.
	retry := f.newMessage(24 * time.Hour)
	retry.EventID = msg.EventID
	wantKind(t, "CreateMessage(event id claimed moments ago)", f.CreateMessage(f.ctx, retry, nil), webhook.KindConflict)
	later := f.clock.Now().Add(time.Minute)
	if ds, err := f.ListUndispatched(f.ctx, later, 10); err != nil || len(ds) != 0 {
		t.Errorf("ListUndispatched = %v, %v; want no delivery of the uncommitted message", ds, err)
	}
	if _, ok := f.rawItem(deliveryKey(f.app.ID, msg.ID, f.ep.ID)); !ok {
		t.Errorf("a young delivery without message was deleted; it may belong to a CreateMessage still at work")
	}

	f.clock.Advance(claimGrace + time.Second)
	retry = f.newMessage(24 * time.Hour)
	retry.EventID = msg.EventID
	if err := f.CreateMessage(f.ctx, retry, []webhook.Delivery{{EndpointID: f.ep.ID}}); err != nil {
		t.Fatalf("CreateMessage(event id of a crashed create, after claimGrace): %v", err)
	}
	if got, err := f.GetMessage(f.ctx, f.app.ID, msg.EventID); err != nil || got.ID != retry.ID {
		t.Errorf("GetMessage(event id) = %v, %v; want %s", got, err, retry.ID)
	}
	ds, err := f.ListUndispatched(f.ctx, f.clock.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatalf("ListUndispatched: %v", err)
	}
	if len(ds) != 1 || ds[0].MsgID != retry.ID {
		t.Errorf("ListUndispatched = %v; want only the committed message's delivery", ds)
	}
	if _, ok := f.rawItem(deliveryKey(f.app.ID, msg.ID, f.ep.ID)); ok {
		t.Errorf("the old delivery without message is still stored; want it deleted by ListUndispatched")
	}
}

// TestUIDClaimCrash dies between an app's uid claim and the app: the uid
// reads as absent, stays taken for claimGrace, and is then taken over.
func TestUIDClaimCrash(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), UID: "acme", Name: "Acme", CreatedAt: now, UpdatedAt: now}
	f.rec.failWith(crashOn("APP"))
	err := f.CreateApp(f.ctx, app)
	f.rec.failWith(nil)
	if !errors.Is(err, errCrash) {
		t.Fatalf("CreateApp: got %v, want the injected crash", err)
	}
	_, err = f.GetApp(f.ctx, "acme")
	wantKind(t, "GetApp(uid of an app never written)", err, webhook.KindNotFound)

	other := *app
	other.ID = webhook.NewID(webhook.PrefixApp)
	wantKind(t, "CreateApp(uid claimed moments ago)", f.CreateApp(f.ctx, &other), webhook.KindConflict)
	f.clock.Advance(claimGrace + time.Second)
	if err := f.CreateApp(f.ctx, &other); err != nil {
		t.Fatalf("CreateApp(uid of a crashed create, after claimGrace): %v", err)
	}
	if got, err := f.GetApp(f.ctx, "acme"); err != nil || got.ID != other.ID {
		t.Errorf("GetApp(acme) = %v, %v; want %s", got, err, other.ID)
	}
}

// TestTableSchema checks the schema against DynamoDB's limits and that the
// table it describes is what a Store works on.
func TestTableSchema(t *testing.T) {
	in := TableSchema("t")
	defined := map[string]bool{}
	for _, d := range in.AttributeDefinitions {
		defined[*d.AttributeName] = true
	}
	projected := 0
	for _, gsi := range in.GlobalSecondaryIndexes {
		for _, k := range gsi.KeySchema {
			if !defined[*k.AttributeName] {
				t.Errorf("index %s: key %s has no attribute definition", *gsi.IndexName, *k.AttributeName)
			}
		}
		projected += len(gsi.Projection.NonKeyAttributes)
		if slices.Contains(gsi.Projection.NonKeyAttributes, "payload") || slices.Contains(gsi.Projection.NonKeyAttributes, "response") {
			t.Errorf("index %s projects a payload or response; index entries must stay small", *gsi.IndexName)
		}
	}
	if projected > 100 {
		t.Errorf("the indexes project %d non-key attributes, DynamoDB allows 100", projected)
	}
	if len(defined) != len(in.AttributeDefinitions) {
		t.Errorf("duplicate attribute definitions: %v", in.AttributeDefinitions)
	}
}

func wantKind(t *testing.T, call string, err error, kind webhook.Kind) {
	t.Helper()
	if got := webhook.ErrorKind(err); err == nil || got != kind {
		t.Errorf("%s: got error %v (kind %d), want kind %d", call, err, got, kind)
	}
}
