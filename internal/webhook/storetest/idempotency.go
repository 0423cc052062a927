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
		got, err := e.s.BeginIdempotent(e.ctx, key, expiresAt)
		if err != nil {
			t.Fatalf("BeginIdempotent(%q): %v", key, err)
		}
		if d := diff(want, got); d != "" {
			t.Errorf("BeginIdempotent(%q) mismatch (-want +got):\n%s", key, d)
		}
	}
	day := e.clock.Now().Add(24 * time.Hour)

	t.Run("Claim", func(t *testing.T) {
		begin(t, "k1", day, nil)
		inFlight := &webhook.IdempotencyRecord{Key: "k1", ExpiresAt: day}
		begin(t, "k1", day.Add(time.Hour), inFlight)
		begin(t, "k2", day, nil) // keys are independent
	})

	t.Run("Finish", func(t *testing.T) {
		body := []byte(`{"id":"msg_1"}` + "\n")
		if err := e.s.FinishIdempotent(e.ctx, "k1", 202, body); err != nil {
			t.Fatalf("FinishIdempotent: %v", err)
		}
		begin(t, "k1", day, &webhook.IdempotencyRecord{Key: "k1", Done: true, StatusCode: 202, Body: body, ExpiresAt: day})
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
		exp := e.clock.Now().Add(time.Hour)
		begin(t, "k3", exp, nil)
		if err := e.s.FinishIdempotent(e.ctx, "k3", 201, []byte("{}")); err != nil {
			t.Fatalf("FinishIdempotent: %v", err)
		}
		e.clock.Set(exp.Add(-time.Millisecond))
		begin(t, "k3", exp, &webhook.IdempotencyRecord{Key: "k3", Done: true, StatusCode: 201, Body: []byte("{}"), ExpiresAt: exp})
		e.clock.Set(exp.Add(time.Millisecond))
		next := e.clock.Now().Add(time.Hour)
		begin(t, "k3", next, nil) // expired: claimed afresh
		begin(t, "k3", next, &webhook.IdempotencyRecord{Key: "k3", ExpiresAt: next})
	})
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
				rec, err := e.s.BeginIdempotent(e.ctx, key, exp)
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
