package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

const (
	idempotencyHeader = "Idempotency-Key"
	idempotencyTTL    = 24 * time.Hour
	maxIdempotencyKey = 256
	// idempotencyStaleAfter is how long a key stays claimed by a request
	// that has not finished. A claim older than that belongs to a request
	// whose process died (a request's own work is bounded by
	// idempotentBudget, and its bookkeeping by storeTimeout), and the next
	// request with the key takes it over instead of answering 409 until
	// the record expires.
	idempotencyStaleAfter = time.Minute
	// storeTimeout bounds the bookkeeping after a response has been
	// written, which runs even when the client has gone away.
	storeTimeout = 10 * time.Second
	// idempotentBudget bounds the handling of a request that claimed a
	// key, so that its claim is finished or released before it can be
	// taken for stale. API Gateway gives up after 29 s anyway.
	idempotentBudget = idempotencyStaleAfter - storeTimeout - 5*time.Second
)

// idempotencyKey scopes a client's key to the token and the full request
// URI, so the same key on another route or query is another request.
func idempotencyKey(r *http.Request, clientKey string) string {
	token := tokenHashOf(r)
	h := sha256.New()
	h.Write(token[:])
	h.Write([]byte{0})
	h.Write([]byte(clientKey))
	h.Write([]byte{0})
	h.Write([]byte(r.URL.RequestURI()))
	return hex.EncodeToString(h.Sum(nil))
}

// idempotent serves a POST that carries an idempotency key. The first
// request with a key runs; its 2xx response is stored and replayed byte
// for byte to repeats for 24 hours. A repeat that arrives while the first
// is still running gets 409, unless the first has held the key for
// longer than idempotencyStaleAfter: its process died, and the repeat
// takes the key over. A non-2xx response frees the key, so the client can
// retry.
//
// Creating a message (pattern createMessageRoute) is the exception, on
// the hot path of every Svix SDK, which sends a key with every POST: the
// claim names the message id the request will use, and the response is
// not stored. A repeat answers from the message itself, rendered as the
// first response was: the stored payload is the request's, byte for byte.
// If the message is not there, the repeat gets 409 while the first
// request may still run, and after that stores the message under the
// same id (see createMessage). One write for the key instead of two, and
// the second the size of the message. With a store that can claim the
// key in the write that stores the message (webhook.KeyedMessageCreator:
// SQLite), nothing is written here at all: createMessage claims the key
// with the message, in one commit, and a key found taken there is
// handled as a repeat.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, pattern string, next http.Handler) {
	clientKey := r.Header.Get(idempotencyHeader)
	if len(clientKey) > maxIdempotencyKey {
		s.writeError(w, r, webhook.BadRequest("generic_error", "idempotency-key must be at most %d characters", maxIdempotencyKey))
		return
	}
	key := idempotencyKey(r, clientKey)
	inProgress := errConflict("A request with this idempotency key is still in progress")
	now := s.now()
	var resource string
	if pattern == createMessageRoute {
		resource = webhook.NewID(webhook.PrefixMessage)
		if _, ok := s.store.(webhook.KeyedMessageCreator); ok {
			ctx := withResource(r.Context(), resourceClaim{id: resource, key: key, expiresAt: now.Add(idempotencyTTL)})
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
	}
	rec, err := s.store.BeginIdempotent(r.Context(), key, resource, now.Add(idempotencyTTL), now.Add(-idempotencyStaleAfter))
	if err != nil {
		if webhook.IsConflict(err) {
			err = inProgress // contended by concurrent repeats
		}
		s.writeError(w, r, err)
		return
	}
	if rec != nil {
		switch {
		case rec.Done:
			if len(rec.Body) > 0 {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(rec.StatusCode)
			_, _ = w.Write(rec.Body)
		case rec.Resource != "":
			next.ServeHTTP(w, r.WithContext(withResource(r.Context(), repeatOf(*rec, now))))
		default:
			s.writeError(w, r, inProgress)
		}
		return
	}

	cw := &capture{ResponseWriter: w}
	// The bookkeeping must happen even if the handler panics or the
	// client disconnects; a key left claimed would answer 409 for a day.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), storeTimeout)
	defer cancel()
	finished := false
	defer func() {
		if finished {
			return
		}
		if err := s.store.ReleaseIdempotent(ctx, key); err != nil {
			s.log.ErrorContext(ctx, "release idempotency key", "err", err)
		}
	}()
	handlerCtx, cancelHandler := context.WithTimeout(r.Context(), idempotentBudget)
	defer cancelHandler()
	if resource != "" {
		handlerCtx = withResource(handlerCtx, resourceClaim{id: resource})
	}
	next.ServeHTTP(cw, r.WithContext(handlerCtx))
	if cw.status >= 200 && cw.status < 300 {
		if resource != "" {
			finished = true // the claim names the message: repeats answer from it
			return
		}
		if err := s.store.FinishIdempotent(ctx, key, cw.status, cw.body.Bytes()); err != nil {
			s.log.ErrorContext(ctx, "store idempotent response", "err", err)
			return
		}
		finished = true
	}
}

// resourceClaim is what an idempotency key's claim says about the message
// a create-message request makes: its id, and for a repeat of the
// request, whether the first may still be running (not stale). A claim
// with a key is not stored yet: the message's write claims it
// (webhook.KeyedMessageCreator).
type resourceClaim struct {
	id     string
	repeat bool
	stale  bool

	key       string
	expiresAt time.Time
}

// repeatOf is the claim of a request repeating the one that claimed rec
// (which names a message) at now.
func repeatOf(rec webhook.IdempotencyRecord, now time.Time) resourceClaim {
	return resourceClaim{id: rec.Resource, repeat: true, stale: rec.ClaimedAt.Before(now.Add(-idempotencyStaleAfter))}
}

type resourceKey struct{}

func withResource(ctx context.Context, c resourceClaim) context.Context {
	return context.WithValue(ctx, resourceKey{}, c)
}

// claimedResource returns the request's resourceClaim, if it has one.
func claimedResource(ctx context.Context) (resourceClaim, bool) {
	c, ok := ctx.Value(resourceKey{}).(resourceClaim)
	return c, ok
}

// capture passes a response through and keeps a copy of its status and
// body.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }
