package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
)

func TestIdempotencyReplaysByteForByte(t *testing.T) {
	h := newHarness(t)
	key := "auto_6c1e3f54-2b7a-4c8e-9d1f-3a5b7c9e1f20"
	first := h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "once"}, "Idempotency-Key", key)
	h.clock.Advance(time.Hour)
	// A repeat — even with another body — gets the stored response.
	again := h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "twice"}, "idempotency-key", key)
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("replay differs:\n%s\n%s", first.Body, again.Body)
	}
	if again.Header.Get("Content-Type") != "application/json" {
		t.Errorf("replay content-type %q", again.Header.Get("Content-Type"))
	}
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/app", nil).Data(t)); n != 1 {
		t.Errorf("%d apps, want 1", n)
	}
	// The same key on another URI (query included) is another request.
	h.must(http.StatusCreated, "POST", "/api/v1/app?get_if_exists=false", map[string]any{"name": "other"}, "Idempotency-Key", key)
	// After 24 hours the key is free again.
	h.clock.Advance(24 * time.Hour)
	h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "later"}, "Idempotency-Key", key)
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/app", nil).Data(t)); n != 3 {
		t.Errorf("%d apps, want 3", n)
	}
}

func TestIdempotencyReplays204(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	path := "/api/v1/app/" + app + "/endpoint/" + ep
	h.must(http.StatusNoContent, "POST", path+"/secret/rotate", nil, "Idempotency-Key", "k")
	secret := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]
	res := h.must(http.StatusNoContent, "POST", path+"/secret/rotate", nil, "Idempotency-Key", "k")
	if len(res.Body) != 0 {
		t.Errorf("replayed 204 has body %q", res.Body)
	}
	if got := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]; got != secret {
		t.Errorf("the replay rotated again")
	}
}

func TestIdempotencyErrorsAreNotStored(t *testing.T) {
	h := newHarness(t)
	wantValidation(t, h.do("POST", "/api/v1/app", map[string]any{}, "Idempotency-Key", "k"), []string{"body", "name"})
	// The key was released: a corrected request with it succeeds.
	h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "fixed"}, "Idempotency-Key", "k")
	// Keys are scoped to the token hash: an unauthenticated repeat is 401.
	wantError(t, h.do("POST", "/api/v1/app", map[string]any{"name": "x"}, "Idempotency-Key", "k", "Authorization", "Bearer other"),
		http.StatusUnauthorized, "authentication_failed")
	wantError(t, h.do("POST", "/api/v1/app", map[string]any{"name": "x"}, "Idempotency-Key", string(bytes.Repeat([]byte("k"), 257))),
		http.StatusBadRequest, "generic_error")
}

// TestIdempotencyConcurrentInFlight: over a store that claims keys
// before the message (the claim is a write of its own), a repeat that
// comes while the first request runs gets 409.
func TestIdempotencyConcurrentInFlight(t *testing.T) {
	h := newHarnessOn(t, func(t testing.TB, clock webhook.Clock) webhook.Store { return unkeyed{openSQLite(t, clock)} })
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.dels.block = make(chan struct{})
	h.dels.entered = make(chan struct{}, 1)
	path := "/api/v1/app/" + app + "/msg"
	body := map[string]any{"eventType": "a", "payload": map[string]any{}}

	done := make(chan response)
	go func() { done <- h.do("POST", path, body, "Idempotency-Key", "same") }()
	<-h.dels.entered

	wantError(t, h.do("POST", path, body, "Idempotency-Key", "same"), http.StatusConflict, "conflict")

	close(h.dels.block)
	first := <-done
	if first.Status != http.StatusAccepted {
		t.Fatalf("first request: %d %s", first.Status, first.Body)
	}
	h.dels.block = nil
	replay := h.must(http.StatusAccepted, "POST", path, body, "Idempotency-Key", "same")
	if !bytes.Equal(first.Body, replay.Body) {
		t.Errorf("replay differs:\n%s\n%s", first.Body, replay.Body)
	}
	if n := len(h.must(http.StatusOK, "GET", path, nil).Data(t)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// unkeyed hides the store's CreateMessageKeyed, as a store without it.
type unkeyed struct{ webhook.Store }

// TestIdempotencyConcurrentKeyedMessages: over a store that claims the
// key in the write that stores the message (SQLite), requests with one
// key that run at the same time all store their message in a write that
// claims the key; one wins, and the others answer from its message, 202
// with the same body. One message is stored, and nothing is claimed
// before that write.
func TestIdempotencyConcurrentKeyedMessages(t *testing.T) {
	counted := &countingStore{}
	h := newHarnessOn(t, func(t testing.TB, clock webhook.Clock) webhook.Store {
		counted.Store = openSQLite(t, clock).(*sqlite.Store)
		return counted
	})
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	const n = 4
	h.dels.block = make(chan struct{})
	h.dels.entered = make(chan struct{}, n)
	path := "/api/v1/app/" + app + "/msg"
	body := map[string]any{"eventType": "a", "payload": map[string]any{"k": 1}}

	done := make(chan response, n)
	for range n {
		go func() { done <- h.do("POST", path, body, "Idempotency-Key", "same") }()
	}
	for i := range n {
		select {
		case <-h.dels.entered: // past the middleware, and nothing written
		case r := <-done:
			close(h.dels.block)
			t.Fatalf("request %d answered %d before any message was stored: %s", i, r.Status, r.Body)
		}
	}
	close(h.dels.block)
	var first response
	for i := range n {
		r := <-done
		if r.Status != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
		}
		if i == 0 {
			first = r
		} else if !bytes.Equal(first.Body, r.Body) {
			t.Errorf("answers differ:\n%s\n%s", first.Body, r.Body)
		}
	}
	if got := len(h.must(http.StatusOK, "GET", path, nil).Data(t)); got != 1 {
		t.Errorf("%d messages, want 1", got)
	}
	if c := counted.begun.Load(); c != 0 {
		t.Errorf("BeginIdempotent called %d times; the key is claimed with the message", c)
	}
	h.dels.block = nil
	replay := h.must(http.StatusAccepted, "POST", path, body, "Idempotency-Key", "same")
	if !bytes.Equal(first.Body, replay.Body) {
		t.Errorf("replay differs:\n%s\n%s", first.Body, replay.Body)
	}
}

// countingStore counts BeginIdempotent calls.
type countingStore struct {
	*sqlite.Store
	begun atomic.Int32
}

func (s *countingStore) BeginIdempotent(ctx context.Context, key, resource string, expiresAt, staleBefore time.Time) (*webhook.IdempotencyRecord, error) {
	s.begun.Add(1)
	return s.Store.BeginIdempotent(ctx, key, resource, expiresAt, staleBefore)
}

// TestIdempotencyStaleClaimIsTakenOver is a key claimed by a request whose
// process died (the claim is never finished nor released): repeats get
// 409 for a minute, then the next one runs, and its response is the one
// replayed.
func TestIdempotencyStaleClaimIsTakenOver(t *testing.T) {
	h := newHarness(t)
	const clientKey = "auto_5b0e7a4c-7f55-4c8e-9a44-0c7b3a1d2e6f"
	req := httptest.NewRequest("POST", "http://hookstep.test/api/v1/app", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	key := idempotencyKey(req, clientKey)
	if rec, err := h.store.BeginIdempotent(context.Background(), key, "", h.clock.Now().Add(idempotencyTTL), time.Time{}); err != nil || rec != nil {
		t.Fatalf("claim the key as the dead request: %+v, %v", rec, err)
	}

	h.clock.Advance(30 * time.Second)
	wantError(t, h.do("POST", "/api/v1/app", map[string]any{"name": "retry"}, "Idempotency-Key", clientKey), http.StatusConflict, "conflict")
	h.clock.Advance(31 * time.Second)
	first := h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "retry"}, "Idempotency-Key", clientKey)
	h.clock.Advance(time.Hour)
	again := h.must(http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "retry"}, "Idempotency-Key", clientKey)
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("replay differs:\n%s\n%s", first.Body, again.Body)
	}
	if n := len(h.must(http.StatusOK, "GET", "/api/v1/app", nil).Data(t)); n != 1 {
		t.Errorf("%d apps, want 1", n)
	}
}

// TestIdempotentMessageAnswersFromTheMessage: a keyed create-message
// stores no response: its claim names the message id, repeats (even with
// another body) are answered from the message, byte for byte; a claim
// whose request died before storing its message answers 409 for a
// minute, then the repeat stores the message under the id the claim
// names, once.
func TestIdempotentMessageAnswersFromTheMessage(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	path := "/api/v1/app/" + app + "/msg"
	first := h.must(http.StatusAccepted, "POST", path, map[string]any{"eventType": "a", "payload": map[string]any{"n": 1}}, "Idempotency-Key", "k1")
	id := str(first.JSON(t)["id"])
	req := httptest.NewRequest("POST", "http://hookstep.test"+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec, err := h.store.BeginIdempotent(context.Background(), idempotencyKey(req, "k1"), "msg_other", h.clock.Now().Add(time.Hour), h.clock.Now())
	if err != nil || rec == nil || rec.Done || rec.Resource != id || len(rec.Body) != 0 {
		t.Fatalf("the key's record: %+v, %v; want an unfinished claim naming %s, no body", rec, err, id)
	}
	h.clock.Advance(time.Hour)
	again := h.must(http.StatusAccepted, "POST", path, map[string]any{"eventType": "b", "payload": map[string]any{"n": 2}}, "Idempotency-Key", "k1")
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("repeat differs:\n%s\n%s", first.Body, again.Body)
	}

	// The request that claimed k2 died before it stored its message.
	req = httptest.NewRequest("POST", "http://hookstep.test"+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	const lost = "msg_2pLostMessageKSUID00000000"
	if rec, err := h.store.BeginIdempotent(context.Background(), idempotencyKey(req, "k2"), lost, h.clock.Now().Add(idempotencyTTL), time.Time{}); err != nil || rec != nil {
		t.Fatalf("claim k2 as the dead request: %+v, %v", rec, err)
	}
	body := map[string]any{"eventType": "a", "payload": map[string]any{"n": 3}}
	wantError(t, h.do("POST", path, body, "Idempotency-Key", "k2"), http.StatusConflict, "conflict")
	h.clock.Advance(2 * time.Minute)
	taken := h.must(http.StatusAccepted, "POST", path, body, "Idempotency-Key", "k2")
	if got := str(taken.JSON(t)["id"]); got != lost {
		t.Errorf("the repeat stored %s, want the id the claim names, %s", got, lost)
	}
	if again := h.must(http.StatusAccepted, "POST", path, body, "Idempotency-Key", "k2"); !bytes.Equal(taken.Body, again.Body) {
		t.Errorf("repeat differs:\n%s\n%s", taken.Body, again.Body)
	}
	if n := len(h.must(http.StatusOK, "GET", path, nil).Data(t)); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// TestKeyedMessageTakesOverAStaleClaim: a create-message key claimed the
// other way (BeginIdempotent, naming no message: a request from before
// keys were claimed with messages, whose process died) answers 409 while
// it may run, and is taken over once stale; repeats then answer from the
// message stored.
func TestKeyedMessageTakesOverAStaleClaim(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	path := "/api/v1/app/" + app + "/msg"
	const clientKey = "legacy"
	req := httptest.NewRequest("POST", "http://hookstep.test"+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	key := idempotencyKey(req, clientKey)
	if rec, err := h.store.BeginIdempotent(context.Background(), key, "", h.clock.Now().Add(idempotencyTTL), time.Time{}); err != nil || rec != nil {
		t.Fatalf("claim the key as the dead request: %+v, %v", rec, err)
	}
	body := map[string]any{"eventType": "a", "payload": map[string]any{"n": 1}}
	h.clock.Advance(30 * time.Second)
	wantError(t, h.do("POST", path, body, "Idempotency-Key", clientKey), http.StatusConflict, "conflict")
	h.clock.Advance(31 * time.Second)
	first := h.must(http.StatusAccepted, "POST", path, body, "Idempotency-Key", clientKey)
	again := h.must(http.StatusAccepted, "POST", path, body, "Idempotency-Key", clientKey)
	if !bytes.Equal(first.Body, again.Body) {
		t.Errorf("repeat differs:\n%s\n%s", first.Body, again.Body)
	}
	if n := len(h.must(http.StatusOK, "GET", path, nil).Data(t)); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}
