package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// openTest opens a fresh database file in a temporary directory and closes
// it when the test ends.
func openTest(t *testing.T, clock webhook.Clock) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "hookstep.db"), clock)
}

func openAt(t *testing.T, path string, clock webhook.Clock) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, clock)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock webhook.Clock) webhook.Store {
		return openTest(t, clock)
	})
}

// fixture is an app with one endpoint, for the tests of the local-mode
// extras.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	s     *Store
	clock *storetest.Clock
	app   *webhook.App
	ep    *webhook.Endpoint
}

func newFixture(t *testing.T) *fixture {
	clock := storetest.NewClock(storetest.Epoch)
	f := &fixture{t: t, ctx: t.Context(), s: openTest(t, clock), clock: clock}
	now := clock.Now()
	f.app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "app", CreatedAt: now, UpdatedAt: now}
	if err := f.s.CreateApp(f.ctx, f.app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	f.ep = &webhook.Endpoint{
		ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/hook",
		Keys: []webhook.SigningKey{{Key: []byte("secret")}}, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := f.s.CreateEndpoint(f.ctx, f.ep); err != nil {
		t.Fatalf("CreateEndpoint: %v", err)
	}
	return f
}

// message stores a message, timestamped now and living for the retention,
// delivered to the fixture's endpoint.
func (f *fixture) message(retention time.Duration) *webhook.Message {
	f.t.Helper()
	now := f.clock.Now()
	msg := &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: json.RawMessage(`{"n":1}`), Timestamp: now, ExpiresAt: now.Add(retention),
	}
	if err := f.s.CreateMessage(f.ctx, msg, []webhook.Delivery{{EndpointID: f.ep.ID}}); err != nil {
		f.t.Fatalf("CreateMessage: %v", err)
	}
	return msg
}

// heldMessage stores a message whose delivery is claimed until until, as
// Publish stores those it hands to the local queue in memory.
func (f *fixture) heldMessage(until time.Time) *webhook.Message {
	f.t.Helper()
	now := f.clock.Now()
	msg := &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: json.RawMessage(`{"n":1}`), Timestamp: now, ExpiresAt: now.Add(time.Hour),
	}
	d := webhook.Delivery{EndpointID: f.ep.ID, NextAttemptAt: until, Dispatched: true, Claimed: true}
	if err := f.s.CreateMessage(f.ctx, msg, []webhook.Delivery{d}); err != nil {
		f.t.Fatalf("CreateMessage: %v", err)
	}
	return msg
}

// endpoint adds another endpoint to the fixture's app.
func (f *fixture) endpoint() *webhook.Endpoint {
	f.t.Helper()
	now := f.clock.Now()
	ep := &webhook.Endpoint{
		ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/other",
		Keys: []webhook.SigningKey{{Key: []byte("secret")}}, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if err := f.s.CreateEndpoint(f.ctx, ep); err != nil {
		f.t.Fatalf("CreateEndpoint: %v", err)
	}
	return ep
}

// messageTo stores a message delivered to ep.
func (f *fixture) messageTo(ep *webhook.Endpoint) *webhook.Message {
	f.t.Helper()
	now := f.clock.Now()
	msg := &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: json.RawMessage(`{"n":2}`), Timestamp: now, ExpiresAt: now.Add(time.Hour),
	}
	if err := f.s.CreateMessage(f.ctx, msg, []webhook.Delivery{{EndpointID: ep.ID}}); err != nil {
		f.t.Fatalf("CreateMessage: %v", err)
	}
	return msg
}

// delivery reads the delivery of msg to the fixture's endpoint.
func (f *fixture) delivery(msg *webhook.Message) *webhook.Delivery {
	f.t.Helper()
	d, err := f.s.GetDelivery(f.ctx, f.app.ID, msg.ID, f.ep.ID)
	if err != nil {
		f.t.Fatalf("GetDelivery: %v", err)
	}
	return d
}

func (f *fixture) attempt(msg *webhook.Message, attempts int, status webhook.Status, next time.Time) webhook.Attempt {
	f.t.Helper()
	now := f.clock.Now()
	a := webhook.Attempt{
		ID: webhook.NewID(webhook.PrefixAttempt), AppID: msg.AppID, MsgID: msg.ID, EndpointID: f.ep.ID,
		EventType: msg.EventType, URL: f.ep.URL, Status: status, Timestamp: now, ExpiresAt: msg.ExpiresAt,
	}
	res := webhook.AttemptResult{Attempt: a, Attempts: attempts, Status: webhook.StatusSuccess}
	if status != webhook.StatusSuccess {
		res.Status, res.NextAttemptAt = webhook.StatusSending, next
	}
	if _, err := f.s.RecordAttempt(f.ctx, res); err != nil {
		f.t.Fatalf("RecordAttempt: %v", err)
	}
	return a
}

// claim claims due deliveries, all of them the fixture's endpoint's, and
// returns them as msg/run.
func (f *fixture) claim(now time.Time, lease time.Duration, limit int) []string {
	f.t.Helper()
	refs, err := f.s.ClaimDue(f.ctx, now, lease, limit)
	if err != nil {
		f.t.Fatalf("ClaimDue: %v", err)
	}
	for _, r := range refs {
		if r.AppID != f.app.ID || r.EndpointID != f.ep.ID {
			f.t.Errorf("ClaimDue: got ref %+v, want one of app %s, endpoint %s", r, f.app.ID, f.ep.ID)
		}
	}
	return runs(refs)
}

// runs names refs as msg/run.
func runs(refs []webhook.Ref) []string {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = fmt.Sprintf("%s/%d", r.MsgID, r.Run)
	}
	return ids
}

// claimAll is claim for deliveries to any endpoint.
func (f *fixture) claimAll(now time.Time, lease time.Duration, limit int) []string {
	f.t.Helper()
	refs, err := f.s.ClaimDue(f.ctx, now, lease, limit)
	if err != nil {
		f.t.Fatalf("ClaimDue: %v", err)
	}
	return runs(refs)
}

func ref(msg *webhook.Message, run int) string { return fmt.Sprintf("%s/%d", msg.ID, run) }

func TestClaimDue(t *testing.T) {
	f := newFixture(t)
	const lease = time.Minute
	m0 := f.message(time.Hour)
	f.clock.Advance(time.Second)
	m1 := f.message(time.Hour)
	f.clock.Advance(time.Second)
	m2 := f.message(time.Hour)
	f.clock.Advance(time.Second)
	done := f.message(time.Hour)
	f.attempt(done, 1, webhook.StatusSuccess, time.Time{})
	later := f.message(time.Hour)
	f.attempt(later, 1, webhook.StatusFail, f.clock.Now().Add(time.Hour)) // sending, due in an hour
	// Dispatched or not, a due delivery is claimed.
	if err := f.s.MarkDispatched(f.ctx, webhook.Ref{AppID: f.app.ID, MsgID: m1.ID, EndpointID: f.ep.ID}); err != nil {
		t.Fatalf("MarkDispatched: %v", err)
	}

	now := f.clock.Now()
	if got, want := f.claim(now, lease, 2), []string{ref(m0, 0), ref(m1, 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue(limit 2) = %v, want the two oldest %v", got, want)
	}
	if got, want := f.claim(now, lease, 10), []string{ref(m2, 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue again = %v, want only the unclaimed %v", got, want)
	}
	if got := f.claim(now.Add(lease-time.Millisecond), lease, 10); len(got) != 0 {
		t.Errorf("ClaimDue within the lease = %v, want none", got)
	}
	d, err := f.s.GetDelivery(f.ctx, f.app.ID, m0.ID, f.ep.ID)
	if err != nil {
		t.Fatalf("GetDelivery: %v", err)
	}
	if want := now.Add(lease); !d.NextAttemptAt.Equal(want) {
		t.Errorf("NextAttemptAt of a claimed delivery = %v, want now+lease %v", d.NextAttemptAt, want)
	}

	// The worker that claimed m0 recorded a failure due in 5 s; the one
	// that claimed m1 and m2 died. A new run of m2 is due at once.
	f.attempt(m0, 1, webhook.StatusFail, now.Add(5*time.Second))
	run, err := f.s.StartRun(f.ctx, m2, f.ep.ID, now.Add(10*time.Second))
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if got, want := f.claim(now.Add(10*time.Second), lease, 10), []string{ref(m0, 0), ref(m2, run.Run)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue after a retry and a new run = %v, want %v", got, want)
	}
	if got, want := f.claim(now.Add(lease), lease, 10), []string{ref(m1, 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue after the lease expired = %v, want the dead worker's %v", got, want)
	}
	// Nothing settled the claims: once their leases are over they come
	// back, in NextAttemptAt order, along with the retry due by then.
	if got, want := f.claim(now.Add(time.Hour), lease, 10), []string{ref(m0, 0), ref(m2, run.Run), ref(m1, 0), ref(later, 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue in an hour = %v, want %v", got, want)
	}
}

// TestReleaseClaims: at start, claims a previous process left (by ClaimDue,
// ClaimWaiting or a held new message) and deliveries waiting for their
// endpoint are due at once; a retry scheduled for later keeps its time.
func TestReleaseClaims(t *testing.T) {
	f := newFixture(t)
	const lease = time.Minute
	claimedByWorker := f.message(time.Hour)
	retry := f.message(time.Hour)
	done := f.message(time.Hour)
	now := f.clock.Now()
	if got := f.claim(now, lease, 10); len(got) != 3 {
		t.Fatalf("ClaimDue = %v, want all 3", got)
	}
	later := now.Add(5 * time.Second)
	f.attempt(retry, 1, webhook.StatusFail, later)
	f.attempt(done, 1, webhook.StatusSuccess, time.Time{})
	held := f.heldMessage(now.Add(lease))
	if d := f.delivery(held); !d.Claimed || !d.NextAttemptAt.Equal(now.Add(lease)) {
		t.Errorf("held delivery stored as %+v, want claimed until %v", d, now.Add(lease))
	}
	waiting := f.message(time.Hour)
	if err := f.s.Wait(f.ctx, f.ep.ID, nil, now); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	f.clock.Advance(10 * time.Second) // the retry is due

	n, err := f.s.ReleaseClaims(f.ctx, f.clock.Now())
	if err != nil {
		t.Fatalf("ReleaseClaims: %v", err)
	}
	if n != 3 {
		t.Errorf("ReleaseClaims = %d, want 3 (the live claim, the held one, the waiting one)", n)
	}
	got := f.claim(f.clock.Now(), lease, 10)
	want := []string{ref(retry, 0), ref(waiting, 0), ref(claimedByWorker, 0), ref(held, 0)}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ClaimDue after ReleaseClaims = %v, want %v", got, want)
	}
	if d := f.delivery(done); d.Status != webhook.StatusSuccess {
		t.Errorf("settled delivery after ReleaseClaims: %+v, want it left a success", d)
	}

	// A retry that is not due yet is not a claim: it keeps its time.
	f2 := newFixture(t)
	m := f2.message(time.Hour)
	f2.claim(f2.clock.Now(), lease, 10)
	due := f2.clock.Now().Add(5 * time.Minute)
	f2.attempt(m, 1, webhook.StatusFail, due)
	if n, err := f2.s.ReleaseClaims(f2.ctx, f2.clock.Now()); err != nil || n != 0 {
		t.Errorf("ReleaseClaims with only a scheduled retry = %d, %v; want 0", n, err)
	}
	if d := f2.delivery(m); !d.NextAttemptAt.Equal(due) || d.Claimed {
		t.Errorf("scheduled retry after ReleaseClaims: %+v, want due at %v, not claimed", d, due)
	}
}

// TestWaitForTheEndpoint: deliveries put back to wait for their endpoint
// (with the endpoint's other due ones) are left to ClaimWaiting for that
// endpoint, the longest waiting first; ClaimDue and NextDue pass over them.
func TestWaitForTheEndpoint(t *testing.T) {
	f := newFixture(t)
	const lease = time.Minute
	var ms []*webhook.Message
	for range 5 {
		ms = append(ms, f.message(time.Hour))
		f.clock.Advance(time.Second)
	}
	other := f.endpoint()
	n0 := f.messageTo(other)
	now := f.clock.Now()
	if got, want := f.claimAll(now, lease, 2), []string{ref(ms[0], 0), ref(ms[1], 0)}; !slices.Equal(got, want) {
		t.Fatalf("ClaimDue(2) = %v, want %v", got, want)
	}
	r := func(m *webhook.Message) webhook.Ref {
		return webhook.Ref{AppID: f.app.ID, MsgID: m.ID, EndpointID: f.ep.ID}
	}
	// ms[0] goes back; ms[1] is named with another claim's end (it was
	// claimed again since), so it stays claimed.
	claims := map[webhook.Ref]time.Time{r(ms[0]): now.Add(lease), r(ms[1]): now.Add(lease + time.Millisecond)}
	if err := f.s.Wait(f.ctx, f.ep.ID, claims, now); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if got, want := f.claimAll(now, lease, 10), []string{ref(n0, 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue after Wait = %v, want only the other endpoint's %v", got, want)
	}
	if next, ok, err := f.s.NextDue(f.ctx); err != nil || !ok || !next.After(now) {
		t.Errorf("NextDue after Wait = %v, %v, %v; want the end of a claim, not a waiting delivery", next, ok, err)
	}
	if d := f.delivery(ms[1]); !d.Claimed || !d.NextAttemptAt.Equal(now.Add(lease)) {
		t.Errorf("delivery claimed again since: %+v, want it left claimed until %v", d, now.Add(lease))
	}
	waitingFor := func(endpointID string, limit int) []string {
		t.Helper()
		refs, err := f.s.ClaimWaiting(f.ctx, endpointID, now, lease, limit)
		if err != nil {
			t.Fatalf("ClaimWaiting: %v", err)
		}
		return runs(refs)
	}
	if got := waitingFor(other.ID, 10); len(got) != 0 {
		t.Errorf("ClaimWaiting for the other endpoint = %v, want none", got)
	}
	// Oldest first: the ones that were due all along, then ms[0], put
	// back at now.
	if got, want := waitingFor(f.ep.ID, 2), []string{ref(ms[2], 0), ref(ms[3], 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimWaiting(2) = %v, want %v", got, want)
	}
	if got, want := waitingFor(f.ep.ID, 10), []string{ref(ms[4], 0), ref(ms[0], 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimWaiting(10) = %v, want %v", got, want)
	}
	if got := waitingFor(f.ep.ID, 10); len(got) != 0 {
		t.Errorf("ClaimWaiting once all are claimed = %v, want none", got)
	}
	if d := f.delivery(ms[2]); !d.Claimed || !d.NextAttemptAt.Equal(now.Add(lease)) {
		t.Errorf("delivery claimed from waiting: %+v, want claimed until %v", d, now.Add(lease))
	}
	// The attempt settles the claim: a retry is due at its time.
	f.attempt(ms[2], 1, webhook.StatusFail, now.Add(time.Second))
	if d := f.delivery(ms[2]); d.Claimed {
		t.Errorf("delivery after its attempt: %+v, want no claim", d)
	}
	if got, want := f.claimAll(now.Add(time.Second), lease, 10), []string{ref(ms[2], 0)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue at the retry = %v, want %v", got, want)
	}

	// A new run of a waiting delivery is due like any other.
	if err := f.s.Wait(f.ctx, f.ep.ID, map[webhook.Ref]time.Time{r(ms[3]): now.Add(lease)}, now); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	run, err := f.s.StartRun(f.ctx, ms[3], f.ep.ID, now)
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	if got, want := f.claimAll(now, lease, 10), []string{ref(ms[3], run.Run)}; !slices.Equal(got, want) {
		t.Errorf("ClaimDue after a new run of a waiting delivery = %v, want %v", got, want)
	}
}

// TestClaimDueConcurrent has workers race for due deliveries: each is
// claimed by exactly one of them.
func TestClaimDueConcurrent(t *testing.T) {
	f := newFixture(t)
	const n = 40
	var want []string
	for range n {
		want = append(want, ref(f.message(time.Hour), 0))
	}
	now := f.clock.Now()
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				refs, err := f.s.ClaimDue(f.ctx, now, time.Hour, 3)
				if err != nil {
					t.Errorf("ClaimDue: %v", err)
					return
				}
				if len(refs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range refs {
					got = append(got, fmt.Sprintf("%s/%d", r.MsgID, r.Run))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	slices.Sort(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claimed deliveries, each exactly once (-want +got):\n%s", d)
	}
}

// TestLoadRun checks that LoadRun reads what GetDelivery, GetEndpoint and
// GetMessage read, and reports the same one missing: the delivery first,
// then the endpoint, then the message.
func TestLoadRun(t *testing.T) {
	tests := []struct {
		name    string
		before  func(f *fixture, ref *webhook.Ref)
		missing string // "delivery", "endpoint", "message" or none
	}{
		{name: "all present"},
		{name: "endpoint disabled, run finished", before: func(f *fixture, ref *webhook.Ref) {
			f.ep.Disabled = true
			if err := f.s.UpdateEndpoint(f.ctx, f.ep, f.ep.UpdatedAt); err != nil {
				f.t.Fatalf("UpdateEndpoint: %v", err)
			}
			if err := f.s.FinishDelivery(f.ctx, *ref, webhook.StatusCanceled, f.clock.Now()); err != nil {
				f.t.Fatalf("FinishDelivery: %v", err)
			}
		}},
		{name: "delivery missing", before: func(f *fixture, ref *webhook.Ref) {
			msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
				Payload: json.RawMessage(`{}`), Timestamp: f.clock.Now()}
			if err := f.s.CreateMessage(f.ctx, msg, nil); err != nil {
				f.t.Fatalf("CreateMessage: %v", err)
			}
			ref.MsgID = msg.ID
		}, missing: "delivery"},
		{name: "other app", before: func(f *fixture, ref *webhook.Ref) {
			other := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "other"}
			if err := f.s.CreateApp(f.ctx, other); err != nil {
				f.t.Fatalf("CreateApp: %v", err)
			}
			ref.AppID = other.ID
		}, missing: "delivery"},
		{name: "endpoint deleted", before: func(f *fixture, ref *webhook.Ref) {
			if err := f.s.DeleteEndpoint(f.ctx, f.app.ID, f.ep.ID); err != nil {
				f.t.Fatalf("DeleteEndpoint: %v", err)
			}
		}, missing: "delivery"}, // the delivery goes with it
		{name: "message expired", before: func(f *fixture, ref *webhook.Ref) {
			f.clock.Advance(time.Hour)
		}, missing: "delivery"}, // hidden with its message's expiry
		// Rows the API cannot leave behind, to see which one is reported.
		{name: "endpoint row gone, delivery left", before: func(f *fixture, ref *webhook.Ref) {
			for _, stmt := range []string{"PRAGMA foreign_keys = OFF", "DELETE FROM endpoints", "PRAGMA foreign_keys = ON"} {
				if _, err := f.s.db.ExecContext(f.ctx, stmt); err != nil {
					f.t.Fatalf("%s: %v", stmt, err)
				}
			}
		}, missing: "endpoint"},
		{name: "message expired, delivery not", before: func(f *fixture, ref *webhook.Ref) {
			if _, err := f.s.db.ExecContext(f.ctx, "UPDATE deliveries SET expires_at = NULL"); err != nil {
				f.t.Fatalf("keep the delivery: %v", err)
			}
			f.clock.Advance(time.Hour)
		}, missing: "message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			msg := f.message(time.Hour)
			ref := webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: f.ep.ID}
			if tt.before != nil {
				tt.before(f, &ref)
			}

			// What the three Gets say, each on its own.
			wantD, errD := f.s.GetDelivery(f.ctx, ref.AppID, ref.MsgID, ref.EndpointID)
			wantEp, errEp := f.s.GetEndpoint(f.ctx, ref.AppID, ref.EndpointID)
			wantMsg, errMsg := f.s.GetMessage(f.ctx, ref.AppID, ref.MsgID)
			for what, err := range map[string]error{"delivery": errD, "endpoint": errEp, "message": errMsg} {
				if err != nil && !webhook.IsNotFound(err) {
					t.Fatalf("get %s: %v", what, err)
				}
			}
			// LoadRun stops at the first one missing.
			if errD != nil {
				wantEp, wantMsg = nil, nil
			} else if errEp != nil {
				wantMsg = nil
			}

			d, ep, m, err := f.s.LoadRun(f.ctx, ref)
			missing := ""
			switch {
			case d == nil:
				missing = "delivery"
			case ep == nil:
				missing = "endpoint"
			case m == nil:
				missing = "message"
			}
			if missing != tt.missing {
				t.Errorf("LoadRun: got %q missing, want %q", missing, tt.missing)
			}
			if (missing != "") != webhook.IsNotFound(err) || missing == "" && err != nil {
				t.Errorf("LoadRun: got error %v with %q missing, want NotFound exactly when one is", err, missing)
			}
			// The join alone finds the row exactly when nothing is missing.
			var rows int
			if err := f.s.r.QueryRowContext(f.ctx, "SELECT COUNT(*) FROM ("+loadRun+")",
				ref.AppID, ref.MsgID, ref.EndpointID, f.s.now()).Scan(&rows); err != nil {
				t.Fatalf("LoadRun's query: %v", err)
			}
			if want := map[bool]int{true: 1, false: 0}[tt.missing == ""]; rows != want {
				t.Errorf("LoadRun's query: got %d rows, want %d", rows, want)
			}
			if diff := cmp.Diff(wantD, d); diff != "" {
				t.Errorf("delivery (-Get +LoadRun):\n%s", diff)
			}
			if diff := cmp.Diff(wantEp, ep); diff != "" {
				t.Errorf("endpoint (-Get +LoadRun):\n%s", diff)
			}
			if diff := cmp.Diff(wantMsg, m); diff != "" {
				t.Errorf("message (-Get +LoadRun):\n%s", diff)
			}
		})
	}
}

func TestNextDue(t *testing.T) {
	f := newFixture(t)
	check := func(want time.Time, wantOK bool) {
		t.Helper()
		got, ok, err := f.s.NextDue(f.ctx)
		if err != nil {
			t.Fatalf("NextDue: %v", err)
		}
		if ok != wantOK || !got.Equal(want) {
			t.Errorf("NextDue = %v, %v; want %v, %v", got, ok, want, wantOK)
		}
	}
	check(time.Time{}, false)
	m0 := f.message(time.Hour)
	f.clock.Advance(time.Second)
	m1 := f.message(time.Hour)
	check(m0.Timestamp, true)
	retry := f.clock.Now().Add(5 * time.Minute)
	f.attempt(m0, 1, webhook.StatusFail, retry)
	check(m1.Timestamp, true)
	f.attempt(m1, 1, webhook.StatusSuccess, time.Time{})
	check(retry, true)
	if _, err := f.s.CancelDeliveries(f.ctx, f.app.ID, f.ep.ID, f.clock.Now()); err != nil {
		t.Fatalf("CancelDeliveries: %v", err)
	}
	check(time.Time{}, false)
}

func TestPurgeExpired(t *testing.T) {
	f := newFixture(t)
	var expiring []*webhook.Message
	for range 3 {
		msg := f.message(time.Hour)
		f.attempt(msg, 1, webhook.StatusFail, f.clock.Now().Add(time.Minute))
		expiring = append(expiring, msg)
	}
	kept := f.message(48 * time.Hour)
	keptAttempt := f.attempt(kept, 1, webhook.StatusSuccess, time.Time{})
	// An attempt of a kept message that expires on its own.
	lone := f.attempt(kept, 2, webhook.StatusFail, time.Time{})
	if _, err := f.s.db.ExecContext(f.ctx, "UPDATE attempts SET expires_at = ? WHERE id = ?",
		f.clock.Now().Add(time.Hour).UnixMilli(), lone.ID); err != nil {
		t.Fatalf("shorten the attempt's retention: %v", err)
	}
	if _, err := f.s.BeginIdempotent(f.ctx, "short", "", f.clock.Now().Add(time.Hour), time.Time{}); err != nil {
		t.Fatalf("BeginIdempotent: %v", err)
	}
	if _, err := f.s.BeginIdempotent(f.ctx, "long", "", f.clock.Now().Add(48*time.Hour), time.Time{}); err != nil {
		t.Fatalf("BeginIdempotent: %v", err)
	}
	for _, life := range []time.Duration{time.Hour, 48 * time.Hour} {
		now := f.clock.Now()
		task := &webhook.Task{ID: webhook.NewID(webhook.PrefixTask), AppID: f.app.ID, EndpointID: f.ep.ID,
			Kind: webhook.TaskEndpointRecover, Status: webhook.TaskFinished, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(life)}
		if err := f.s.CreateTask(f.ctx, task); err != nil {
			t.Fatalf("CreateTask: %v", err)
		}
		tok := &webhook.AppToken{Hash: fmt.Sprintf("hash-%v", life), AppID: f.app.ID, ExpiresAt: now.Add(life)}
		if err := f.s.CreateAppToken(f.ctx, tok); err != nil {
			t.Fatalf("CreateAppToken: %v", err)
		}
	}
	// A cut-off lives as long as a token it covers might.
	if err := f.s.ExpireAppTokens(f.ctx, f.app.ID, nil, f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatalf("ExpireAppTokens: %v", err)
	}

	purge := func(now time.Time, limit int) int {
		t.Helper()
		n, err := f.s.PurgeExpired(f.ctx, now, limit)
		if err != nil {
			t.Fatalf("PurgeExpired: %v", err)
		}
		return n
	}
	if n := purge(f.clock.Now(), 100); n != 0 {
		t.Errorf("PurgeExpired before anything expired = %d, want 0", n)
	}
	later := f.clock.Now().Add(2 * time.Hour)
	// 2 at a time: first 2 messages, 2 attempts (the third message's and
	// the lone one), the idempotency record, the task and the app token;
	// then the third message.
	for i, want := range []int{2 + 2 + 1 + 1 + 1, 1, 0} {
		if n := purge(later, 2); n != want {
			t.Errorf("PurgeExpired call %d = %d, want %d", i, n, want)
		}
	}

	counts := map[string]int{}
	for _, table := range []string{"messages", "deliveries", "attempts", "idempotency", "tasks", "app_tokens", "app_token_cutoffs"} {
		var n int
		if err := f.s.db.QueryRowContext(f.ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		counts[table] = n
	}
	want := map[string]int{"messages": 1, "deliveries": 1, "attempts": 1, "idempotency": 1, "tasks": 1, "app_tokens": 1, "app_token_cutoffs": 1}
	if d := cmp.Diff(want, counts); d != "" {
		t.Errorf("rows left after purging (-want +got):\n%s", d)
	}
	if _, err := f.s.GetAttempt(f.ctx, f.app.ID, kept.ID, keptAttempt.ID); err != nil {
		t.Errorf("GetAttempt(kept): %v", err)
	}
	for _, m := range expiring {
		if _, err := f.s.GetDelivery(f.ctx, f.app.ID, m.ID, f.ep.ID); !webhook.IsNotFound(err) {
			t.Errorf("GetDelivery(purged message): got %v, want NotFound", err)
		}
	}
}

// TestDurability closes the database and opens the file again: everything
// written is still there, and opening does not migrate twice.
func TestDurability(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hookstep.db")
	clock := storetest.NewClock(storetest.Epoch)
	s, err := Open(ctx, path, clock)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	now := clock.Now()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), UID: "acme", Name: "Acme", Metadata: map[string]string{"a": "b"}, CreatedAt: now, UpdatedAt: now}
	et := &webhook.EventType{Name: "user.created", Description: "d", Schemas: json.RawMessage(`{"1":{}}`), CreatedAt: now, UpdatedAt: now}
	ep := &webhook.Endpoint{
		ID: webhook.NewID(webhook.PrefixEndpoint), AppID: app.ID, UID: "main", URL: "https://example.com/hook",
		Keys:    []webhook.SigningKey{{Key: []byte("k1")}, {Key: []byte("k0"), ExpiresAt: now.Add(time.Hour)}},
		Headers: map[string]string{"X-A": "1"}, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	msg := &webhook.Message{
		ID: webhook.NewID(webhook.PrefixMessage), AppID: app.ID, EventType: et.Name, EventID: "e1",
		Payload: json.RawMessage(`{"x": 1}`), Timestamp: now, ExpiresAt: now.Add(24 * time.Hour),
	}
	att := webhook.Attempt{
		ID: webhook.NewID(webhook.PrefixAttempt), AppID: app.ID, MsgID: msg.ID, EndpointID: ep.ID, EventType: et.Name,
		URL: ep.URL, ResponseStatusCode: 500, Status: webhook.StatusFail, Timestamp: now, ExpiresAt: msg.ExpiresAt,
	}
	var delivery *webhook.Delivery
	for _, step := range []func() error{
		func() error { return s.CreateApp(ctx, app) },
		func() error { return s.CreateEventType(ctx, et) },
		func() error { return s.CreateEndpoint(ctx, ep) },
		func() error { return s.CreateMessage(ctx, msg, []webhook.Delivery{{EndpointID: ep.ID}}) },
		func() (err error) {
			delivery, err = s.RecordAttempt(ctx, webhook.AttemptResult{
				Attempt: att, Attempts: 1, Status: webhook.StatusSending, NextAttemptAt: now.Add(5 * time.Second)})
			return err
		},
		func() error {
			_, err := s.BeginIdempotent(ctx, "idem", "", now.Add(time.Hour), time.Time{})
			return err
		},
		func() error { return s.FinishIdempotent(ctx, "idem", 202, []byte("{}")) },
		s.Close,
	} {
		if err := step(); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	ep.FailingSince = now // the failed attempt

	s = openAt(t, path, clock)
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("user_version after reopening = %d, %v; want %d", version, err, len(migrations))
	}
	opts := cmpopts.EquateEmpty()
	check := func(what string, want, got any, err error) {
		t.Helper()
		if err != nil {
			t.Errorf("read %s after reopening: %v", what, err)
			return
		}
		if d := cmp.Diff(want, got, opts); d != "" {
			t.Errorf("%s after reopening (-want +got):\n%s", what, d)
		}
	}
	gotApp, err := s.GetApp(ctx, "acme")
	check("app", app, gotApp, err)
	gotET, err := s.GetEventType(ctx, et.Name)
	check("event type", et, gotET, err)
	gotEp, err := s.GetEndpoint(ctx, app.ID, "main")
	check("endpoint", ep, gotEp, err)
	gotMsg, err := s.GetMessage(ctx, app.ID, "e1")
	check("message", msg, gotMsg, err)
	gotDelivery, err := s.GetDelivery(ctx, app.ID, msg.ID, ep.ID)
	check("delivery", delivery, gotDelivery, err)
	gotAtt, err := s.GetAttempt(ctx, app.ID, msg.ID, att.ID)
	check("attempt", &att, gotAtt, err)
	gotRec, err := s.BeginIdempotent(ctx, "idem", "", now.Add(time.Hour), time.Time{})
	check("idempotency record", &webhook.IdempotencyRecord{Key: "idem", Done: true, StatusCode: 202, Body: []byte("{}"), ClaimedAt: now, ExpiresAt: now.Add(time.Hour)}, gotRec, err)
	refs, err := s.ClaimDue(ctx, now.Add(5*time.Second), time.Minute, 10)
	check("due deliveries", []webhook.Ref{delivery.Ref()}, refs, err)
}

func TestOpenPragmas(t *testing.T) {
	s := openTest(t, nil)
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2", "busy_timeout": "10000"} {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hookstep.db")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.db.ExecContext(t.Context(), fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatalf("set user_version: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s, err = Open(t.Context(), path, nil)
	if err == nil {
		s.Close()
		t.Fatalf("Open(database from a newer version): got nil error, want one")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open(database from a newer version): got %v, want an error that says so", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	for _, path := range []string{"", "db?mode=ro", "a#b"} {
		if s, err := Open(t.Context(), path, nil); err == nil {
			s.Close()
			t.Errorf("Open(%q): got nil error, want one", path)
		}
	}
}

func TestMemory(t *testing.T) {
	s := openAt(t, ":memory:", nil)
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "mem"}
	if err := s.CreateApp(t.Context(), app); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	// Several sequential calls see the same private database.
	for range 3 {
		if _, err := s.GetApp(t.Context(), app.ID); err != nil {
			t.Fatalf("GetApp: %v", err)
		}
	}
}

func TestErrorsWrapped(t *testing.T) {
	s := openTest(t, nil)
	_, err := s.ListDeliveries(t.Context(), webhook.DeliveryFilter{AppID: "app_x"})
	if err == nil || !strings.HasPrefix(err.Error(), "sqlite: list deliveries: ") {
		t.Errorf("ListDeliveries(no message, no endpoint): got %v, want an error prefixed %q", err, "sqlite: list deliveries: ")
	}
	_, err = s.GetApp(t.Context(), "app_missing")
	if !webhook.IsNotFound(err) {
		t.Errorf("GetApp(missing): got %v, want NotFound", err)
	}
	ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: "app_missing", URL: "https://example.com"}
	if err := s.CreateEndpoint(t.Context(), ep); !webhook.IsNotFound(err) {
		t.Errorf("CreateEndpoint(missing app): got %v, want NotFound", err)
	}
}

func TestNonPositiveLimits(t *testing.T) {
	f := newFixture(t)
	f.message(time.Hour)
	now := f.clock.Now().Add(48 * time.Hour)
	for _, limit := range []int{0, -1} {
		refs, err := f.s.ClaimDue(f.ctx, now, time.Minute, limit)
		if err != nil || len(refs) != 0 {
			t.Errorf("ClaimDue(limit %d) = %v, %v; want none", limit, refs, err)
		}
		ds, err := f.s.ListUndispatched(f.ctx, now, limit)
		if err != nil || len(ds) != 0 {
			t.Errorf("ListUndispatched(limit %d) = %d deliveries, %v; want none", limit, len(ds), err)
		}
		n, err := f.s.PurgeExpired(f.ctx, now, limit)
		if err != nil || n != 0 {
			t.Errorf("PurgeExpired(limit %d) = %d, %v; want 0", limit, n, err)
		}
	}
}

// TestMigrateIdempotencyClaimedAt opens a database of schema version 1,
// which has no claimed_at: its records survive the migration, and an
// unfinished claim from before it (claim time unknown) counts as stale.
func TestMigrateIdempotencyClaimedAt(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hookstep.db")
	clock := storetest.NewClock(storetest.Epoch)
	now := clock.Now()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	exp := now.Add(time.Hour).UnixMilli()
	for _, stmt := range []string{
		migrations[0],
		"PRAGMA user_version = 1",
		fmt.Sprintf("INSERT INTO idempotency (key, done, status_code, body, expires_at) VALUES ('stuck', 0, 0, NULL, %d)", exp),
		fmt.Sprintf("INSERT INTO idempotency (key, done, status_code, body, expires_at) VALUES ('done', 1, 201, X'7B7D', %d)", exp),
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%.40s: %v", stmt, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s := openAt(t, path, clock)
	staleBefore := now.Add(-time.Minute)
	if rec, err := s.BeginIdempotent(ctx, "stuck", "", now.Add(24*time.Hour), staleBefore); err != nil || rec != nil {
		t.Errorf("BeginIdempotent(unfinished claim from schema 1) = %+v, %v; want it taken over", rec, err)
	}
	want := &webhook.IdempotencyRecord{Key: "done", Done: true, StatusCode: 201, Body: []byte("{}"), ExpiresAt: time.UnixMilli(exp).UTC()}
	rec, err := s.BeginIdempotent(ctx, "done", "", now.Add(24*time.Hour), staleBefore)
	if err != nil {
		t.Fatalf("BeginIdempotent(finished record from schema 1): %v", err)
	}
	if d := cmp.Diff(want, rec); d != "" {
		t.Errorf("BeginIdempotent(finished record from schema 1) (-want +got):\n%s", d)
	}
}

// TestCreateMessageKeyed: the key is claimed in the write that stores the
// message, naming it; a live record of the key (claimed this way or by
// BeginIdempotent) stops the write whole; an expired one is replaced; a
// message that fails (event id taken) leaves the key free.
func TestCreateMessageKeyed(t *testing.T) {
	f := newFixture(t)
	newMsg := func(eventID string) *webhook.Message {
		return &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
			EventID: eventID, Payload: json.RawMessage(`{}`), Timestamp: f.clock.Now(), ExpiresAt: f.clock.Now().Add(48 * time.Hour)}
	}
	claim := func(key string) webhook.KeyClaim {
		return webhook.KeyClaim{Key: key, ExpiresAt: f.clock.Now().Add(24 * time.Hour)}
	}
	first := newMsg("")
	if err := f.s.CreateMessageKeyed(f.ctx, first, []webhook.Delivery{webhook.NewDelivery(first, f.ep.ID)}, claim("k")); err != nil {
		t.Fatalf("CreateMessageKeyed: %v", err)
	}
	// BeginIdempotent sees the claim, naming the message.
	rec, err := f.s.BeginIdempotent(f.ctx, "k", "other", f.clock.Now().Add(time.Hour), f.clock.Now())
	if err != nil || rec == nil || rec.Resource != first.ID || rec.Done {
		t.Fatalf("BeginIdempotent after the keyed write: %+v, %v; want the claim naming %s", rec, err, first.ID)
	}

	// Taken: nothing of the second message is written.
	second := newMsg("")
	err = f.s.CreateMessageKeyed(f.ctx, second, []webhook.Delivery{webhook.NewDelivery(second, f.ep.ID)}, claim("k"))
	var taken *webhook.KeyTakenError
	if !errors.As(err, &taken) || taken.Record.Resource != first.ID {
		t.Fatalf("second CreateMessageKeyed: %v; want KeyTakenError naming %s", err, first.ID)
	}
	if _, err := f.s.GetMessage(f.ctx, f.app.ID, second.ID); !webhook.IsNotFound(err) {
		t.Errorf("the second message was stored: %v", err)
	}
	// A key claimed by BeginIdempotent is taken too.
	if rec, err := f.s.BeginIdempotent(f.ctx, "b", "", f.clock.Now().Add(time.Hour), f.clock.Now()); err != nil || rec != nil {
		t.Fatalf("BeginIdempotent(b): %+v, %v", rec, err)
	}
	if err := f.s.CreateMessageKeyed(f.ctx, second, nil, claim("b")); !errors.As(err, &taken) || taken.Record.Resource != "" {
		t.Fatalf("CreateMessageKeyed over BeginIdempotent's claim: %v", err)
	}

	// A message that fails leaves the key free.
	dup := newMsg("evt")
	if err := f.s.CreateMessage(f.ctx, dup, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateMessageKeyed(f.ctx, newMsg("evt"), nil, claim("e")); !webhook.IsConflict(err) {
		t.Fatalf("event id taken: %v, want Conflict", err)
	}
	if rec, err := f.s.BeginIdempotent(f.ctx, "e", "", f.clock.Now().Add(time.Hour), f.clock.Now()); err != nil || rec != nil {
		t.Errorf("the failed message's key is held: %+v, %v", rec, err)
	}

	// Expired: claimed again, for the new message.
	f.clock.Advance(25 * time.Hour)
	third := newMsg("")
	if err := f.s.CreateMessageKeyed(f.ctx, third, nil, claim("k")); err != nil {
		t.Fatalf("CreateMessageKeyed after the claim expired: %v", err)
	}
	rec, err = f.s.BeginIdempotent(f.ctx, "k", "", f.clock.Now().Add(time.Hour), f.clock.Now())
	if err != nil || rec == nil || rec.Resource != third.ID {
		t.Errorf("after expiry: %+v, %v; want the claim naming %s", rec, err, third.ID)
	}
}
