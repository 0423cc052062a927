// Package play keeps what Play URLs receive. Play is the dashboard's test
// receiver: a URL of the dashboard itself (/play/{token}) that can be
// given to an endpoint, keeps the requests hookstep sends it, checks
// their signatures against the endpoint's secrets, and shows them on a
// page. It is for trying hookstep out, not for production traffic.
//
// The dashboard (internal/dashboard) makes and checks the tokens and
// serves the pages; this package defines what it stores (Request, Link),
// how much (Keep, KeepBytes, TTL), and the Store it stores it in. Memory
// is the Store of local mode, which is one process. On AWS every Lambda
// instance has its own memory, so the Store there is internal/dynamo's,
// in the service's table. Both pass the conformance suite in playtest.
//
// Play is deliberately not part of webhook.Store: a testing aid should
// not be something every backend and the Store suite have to carry.
package play

import (
	"context"
	"time"
)

// Limits of what Play keeps.
const (
	// Keep is how many requests a token keeps: the newest ones.
	Keep = 50
	// KeepBytes is how much of each request body is kept (the dashboard
	// reads the whole body to check its signature).
	KeepBytes = 64 << 10
	// TTL is how long a request is kept after it arrived, and an endpoint
	// link after the last Link or Add of its token.
	TTL = 7 * 24 * time.Hour
)

// Request is one request a Play URL received.
type Request struct {
	ReceivedAt time.Time
	Method     string
	Headers    []Header // sorted by name
	Body       []byte   // at most KeepBytes
	Truncated  bool     // the body was longer and is cut
	// Signature is the result of checking the request's signature
	// headers against the linked endpoint's secrets when it arrived.
	Signature SignatureCheck
}

// Header is one request header.
type Header struct {
	Name, Value string
}

// SignatureCheck says whether a Play request was signed by hookstep for
// the endpoint the Play URL belongs to.
type SignatureCheck struct {
	Checked  bool   // false when no endpoint is linked to the Play URL
	Verified bool   // the signature matches one of the endpoint's current secrets
	Detail   string // why it was not checked or did not verify
}

// Link names the endpoint a Play URL was created for.
type Link struct {
	AppID      string
	EndpointID string
}

// Store keeps what Play URLs received, by token. Callers check tokens
// before they call it; a Store treats a token as an opaque key. Errors
// other than LinkOf's NotFound are failures of the storage itself. A
// Store is safe for concurrent use and reads "now" from the clock it was
// built with.
type Store interface {
	// Link records that token's Play URL is the URL of an endpoint, whose
	// secrets then check the signatures of its requests. It replaces an
	// earlier link of token. The link expires TTL after the last Link or
	// Add of token.
	Link(ctx context.Context, token string, link Link) error
	// LinkOf returns the endpoint linked to token; an error for which
	// webhook.IsNotFound holds if there is none or it expired.
	LinkOf(ctx context.Context, token string) (Link, error)
	// Add keeps req as token's newest request, for TTL, dropping the
	// oldest beyond Keep. A body longer than KeepBytes is cut to
	// KeepBytes and marked Truncated. It renews token's link, if any.
	// An Add that fails may still have kept the request.
	Add(ctx context.Context, token string, req Request) error
	// Requests returns token's kept requests, newest first: at most Keep,
	// none (and no error) for a token that never received one or whose
	// requests expired.
	Requests(ctx context.Context, token string) ([]Request, error)
}

// Cut applies KeepBytes to req's body: a longer body is cut to its first
// KeepBytes and marked Truncated. The body is copied either way, so that
// the request does not hold on to the caller's buffer.
func Cut(req Request) Request {
	if len(req.Body) > KeepBytes {
		req.Body, req.Truncated = req.Body[:KeepBytes], true
	}
	if req.Body != nil {
		req.Body = append([]byte(nil), req.Body...)
	}
	return req
}
