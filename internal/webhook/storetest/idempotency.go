package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func testIdempotency(t *testing.T, e *env) {
	begin := func(t *testing.T, key string, expiresAt time.Time, want *webhook.IdempotencyRecord) {
		t.Helper()
		got, err := e.s.BeginIdempotent(e.ctx, key, "", expiresAt, time.Time{})
		if err != nil {
			t.Fatalf("BeginIdempotent(%q): %v", key, err)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("BeginIdempotent(%q) mismatch (-want +got):\n%s", key, d)
		}
	}
	claimed := e.clock.Now()
	day := claimed.Add(24 * time.Hour)

	t.Run("Claim", func(t *testing.T) {
		begin(t, "k1", day, nil)
		inFlight := &webhook.IdempotencyRecord{Key: "k1", ClaimedAt: claimed, ExpiresAt: day}
		begin(t, "k1", day.Add(time.Hour), inFlight)
		begin(t, "k2", day, nil) // keys are independent
	})

	t.Run("Finish", func(t *testing.T) {
		body := []byte(`{"id":"msg_1"}` + "\n")
		if err := e.s.FinishIdempotent(e.ctx, "k1", 202, body); err != nil {
			t.Fatalf("FinishIdempotent: %v", err)
		}
		begin(t, "k1", day, &webhook.IdempotencyRecord{Key: "k1", Done: true, StatusCode: 202, Body: body, ClaimedAt: claimed, ExpiresAt: day})
		wantNotFound(t, "FinishIdempotent(unknown key)", e.s.FinishIdempotent(e.ctx, "unknown", 200, nil))
	})

	t.Run("Release", func(t *testing.T) {
		if err := e.s.ReleaseIdempotent(e.ctx, "k2"); err != nil {
			t.Fatalf("ReleaseIdempotent: %v", err)
		}
		begin(t, "k2", day, nil)
		if err := e.s.ReleaseIdempotent(e.ctx, "never-claimed"); err != nil {
			t.Errorf("ReleaseIdempotent(free key): %v", err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		claimed := e.clock.Now()
		exp := claimed.Add(time.Hour)
		begin(t, "k3", exp, nil)
		if err := e.s.FinishIdempotent(e.ctx, "k3", 201, []byte("{}")); err != nil {
			t.Fatalf("FinishIdempotent: %v", err)
		}
		e.clock.Set(exp.Add(-time.Millisecond))
		begin(t, "k3", exp, &webhook.IdempotencyRecord{Key: "k3", Done: true, StatusCode: 201, Body: []byte("{}"), ClaimedAt: claimed, ExpiresAt: exp})
		e.clock.Set(exp.Add(time.Millisecond))
		next := e.clock.Now().Add(time.Hour)
		begin(t, "k3", next, nil) // expired: claimed afresh
		begin(t, "k3", next, &webhook.IdempotencyRecord{Key: "k3", ClaimedAt: e.clock.Now(), ExpiresAt: next})
	})
}

// testIdempotencyStaleClaim checks that a claim left unfinished by a
// request that died is taken over once it is older than staleBefore, and
// that a finished record never is.
func testIdempotencyStaleClaim(t *testing.T, e *env) {
	const staleAfter = time.Minute // the caller's policy
	begin := func(t *testing.T, key string, want *webhook.IdempotencyRecord) {
		t.Helper()
		now := e.clock.Now()
		got, err := e.s.BeginIdempotent(e.ctx, key, "", now.Add(24*time.Hour), now.Add(-staleAfter))
		if err != nil {
			t.Fatalf("BeginIdempotent(%q): %v", key, err)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("BeginIdempotent(%q) at claim%+v mismatch (-want +got):\n%s", key, now.Sub(Epoch), d)
		}
	}
	claimed := e.clock.Now()
	exp := claimed.Add(24 * time.Hour)
	begin(t, "dead", nil)
	begin(t, "done", nil)
	if err := e.s.FinishIdempotent(e.ctx, "done", 202, []byte("{}")); err != nil {
		t.Fatalf("FinishIdempotent: %v", err)
	}

	e.clock.Set(claimed.Add(staleAfter - time.Millisecond))
	begin(t, "dead", &webhook.IdempotencyRecord{Key: "dead", ClaimedAt: claimed, ExpiresAt: exp})
	e.clock.Set(claimed.Add(staleAfter + time.Millisecond))
	begin(t, "dead", nil) // its request died: taken over
	takenAt := e.clock.Now()
	begin(t, "dead", &webhook.IdempotencyRecord{Key: "dead", ClaimedAt: takenAt, ExpiresAt: takenAt.Add(24 * time.Hour)})
	begin(t, "done", &webhook.IdempotencyRecord{Key: "done", Done: true, StatusCode: 202, Body: []byte("{}"), ClaimedAt: claimed, ExpiresAt: exp})

	e.clock.Set(claimed.Add(time.Hour))
	begin(t, "done", &webhook.IdempotencyRecord{Key: "done", Done: true, StatusCode: 202, Body: []byte("{}"), ClaimedAt: claimed, ExpiresAt: exp})
}

// testIdempotencyRace races requests that carry the same key: exactly one
// claims it.
func testIdempotencyRace(t *testing.T, e *env) {
	const n = 8
	exp := e.clock.Now().Add(24 * time.Hour)
	for round := range 10 {
		key := "race-" + string(rune('a'+round))
		claimed := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				rec, err := e.s.BeginIdempotent(e.ctx, key, "", exp, time.Time{})
				claimed[i], errs[i] = err == nil && rec == nil, err
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("BeginIdempotent: %v", errs[i])
			}
			if claimed[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Errorf("round %d: %d of %d concurrent BeginIdempotent calls claimed the key, want exactly 1", round, winners, n)
		}
	}
}

// testIdempotencyResource: a claim that names a resource is returned to
// every repeat, with the resource, and never taken over however stale,
// until it expires.
func testIdempotencyResource(t *testing.T, e *env) {
	claimed := e.clock.Now()
	exp := claimed.Add(time.Hour)
	rec, err := e.s.BeginIdempotent(e.ctx, "kr", "msg_1", exp, time.Time{})
	if err != nil || rec != nil {
		t.Fatalf("first claim: %+v, %v; want it claimed", rec, err)
	}
	want := &webhook.IdempotencyRecord{Key: "kr", ClaimedAt: claimed, ExpiresAt: exp, Resource: "msg_1"}
	e.clock.Advance(30 * time.Minute)
	rec, err = e.s.BeginIdempotent(e.ctx, "kr", "msg_2", e.clock.Now().Add(time.Hour), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(want, rec); d != "" {
		t.Errorf("a repeat of a stale claim that names a resource (-want +got):\n%s", d)
	}
	e.clock.Set(exp.Add(time.Millisecond))
	if rec, err := e.s.BeginIdempotent(e.ctx, "kr", "msg_3", e.clock.Now().Add(time.Hour), time.Time{}); err != nil || rec != nil {
		t.Errorf("after it expired: %+v, %v; want a fresh claim", rec, err)
	}
	rec, _ = e.s.BeginIdempotent(e.ctx, "kr", "msg_4", e.clock.Now().Add(time.Hour), time.Time{})
	if rec == nil || rec.Resource != "msg_3" {
		t.Errorf("the fresh claim: %+v; want it to name msg_3", rec)
	}
}
