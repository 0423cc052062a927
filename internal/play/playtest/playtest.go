// Package playtest is the contract suite for play.Store. Every Store
// implementation calls Run from its own tests; a behaviour the suite does
// not check is not guaranteed.
//
// # Time
//
// The suite owns time: it passes a Clock to newStore, and the store must
// read "now" from it, never from the wall clock. It writes ReceivedAt
// times that are whole milliseconds in UTC and compares them with
// time.Time.Equal, so a store must round-trip them at millisecond
// precision and may return them in any location. Expiry is checked 1 ms
// either side of the instant, never at it. Nil and empty slices are
// treated as equal.
//
// # Details the Store doc comments leave open
//
//   - Requests added at the same instant of the store's clock are
//     returned newest (added last) first.
//   - An expired link is not renewed by a later Add; only Link makes a
//     new one.
//   - Add does not keep the caller's body: changing it afterwards does
//     not change what Requests returns.
package playtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// Run runs the contract suite. newStore must return an empty store that
// reads the time from clock; it is called once per subtest and should
// register its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T, clock webhook.Clock) play.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"Link", testLink},
		{"RoundTrip", testRoundTrip},
		{"NewestFirst", testNewestFirst},
		{"Keep", testKeep},
		{"KeepBytes", testKeepBytes},
		{"Tokens", testTokens},
		{"Expiry", testExpiry},
		{"LinkExpiry", testLinkExpiry},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := storetest.NewClock(storetest.Epoch)
			e := &env{ctx: t.Context(), s: newStore(t, clock), clock: clock}
			tt.fn(t, e)
		})
	}
}

// env is what every test works with: the store under test and its clock.
type env struct {
	ctx   context.Context
	s     play.Store
	clock *storetest.Clock
}

// newToken returns a token shaped like the dashboard's: 32 random bytes,
// base64url.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// request returns a signed-looking request received now, told apart by n.
func (e *env) request(n int) play.Request {
	return play.Request{
		ReceivedAt: e.clock.Now(),
		Method:     "POST",
		Headers: []play.Header{
			{Name: "content-type", Value: "application/json"},
			{Name: "webhook-id", Value: fmt.Sprint("msg_", n)},
			{Name: "x-repeated", Value: "a"},
			{Name: "x-repeated", Value: "b"},
		},
		Body:      fmt.Appendf(nil, `{"n":%d}`, n),
		Signature: play.SignatureCheck{Checked: true, Verified: n%2 == 0, Detail: fmt.Sprint("detail ", n)},
	}
}

func (e *env) add(t *testing.T, token string, reqs ...play.Request) {
	t.Helper()
	for _, r := range reqs {
		if err := e.s.Add(e.ctx, token, r); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
}

func (e *env) link(t *testing.T, token string, link play.Link) {
	t.Helper()
	if err := e.s.Link(e.ctx, token, link); err != nil {
		t.Fatalf("Link: %v", err)
	}
}

// wantRequests fails the test unless token's requests are want.
func (e *env) wantRequests(t *testing.T, when, token string, want ...play.Request) {
	t.Helper()
	got, err := e.s.Requests(e.ctx, token)
	if err != nil {
		t.Fatalf("%s: Requests: %v", when, err)
	}
	if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("%s: Requests mismatch (-want +got):\n%s", when, d)
	}
}

// wantLink fails the test unless token is linked to want.
func (e *env) wantLink(t *testing.T, when, token string, want play.Link) {
	t.Helper()
	got, err := e.s.LinkOf(e.ctx, token)
	if err != nil || got != want {
		t.Errorf("%s: LinkOf = %+v, %v; want %+v", when, got, err, want)
	}
}

// wantNoLink fails the test unless LinkOf(token) is NotFound.
func (e *env) wantNoLink(t *testing.T, when, token string) {
	t.Helper()
	got, err := e.s.LinkOf(e.ctx, token)
	if !webhook.IsNotFound(err) {
		t.Errorf("%s: LinkOf = %+v, %v; want a NotFound error", when, got, err)
	}
}

func testLink(t *testing.T, e *env) {
	tok := newToken()
	e.wantNoLink(t, "never linked", tok)
	e.wantRequests(t, "never used", tok)

	first := play.Link{AppID: "app_1", EndpointID: "ep_1"}
	e.link(t, tok, first)
	e.wantLink(t, "linked", tok, first)
	e.wantRequests(t, "linked, no request yet", tok)

	second := play.Link{AppID: "app_2", EndpointID: "ep_2"}
	e.link(t, tok, second)
	e.wantLink(t, "linked again", tok, second)

	// A token that only received requests has no link.
	unlinked := newToken()
	e.add(t, unlinked, e.request(1))
	e.wantNoLink(t, "only Add", unlinked)
}

func testRoundTrip(t *testing.T, e *env) {
	tok := newToken()
	full := e.request(2)
	full.Truncated = true // cut by the caller: kept as it is
	bare := play.Request{ReceivedAt: e.clock.Now(), Method: "PUT"}
	unchecked := play.Request{
		ReceivedAt: e.clock.Now(), Method: "POST", Body: []byte(`{}`),
		Signature: play.SignatureCheck{Detail: "not checked: no endpoint was created with this Play URL"},
	}
	e.add(t, tok, full, bare, unchecked)
	e.wantRequests(t, "after Add", tok, unchecked, bare, full)

	// Add copies the body.
	tok2 := newToken()
	r := e.request(3)
	want := e.request(3)
	e.add(t, tok2, r)
	copy(r.Body, "XXXX")
	e.wantRequests(t, "after the caller changed the body", tok2, want)
}

func testNewestFirst(t *testing.T, e *env) {
	tok := newToken()
	var want []play.Request
	// Three at the same instant, then two a millisecond and a minute later.
	for i, step := range []time.Duration{0, 0, 0, time.Millisecond, time.Minute} {
		e.clock.Advance(step)
		r := e.request(i)
		e.add(t, tok, r)
		want = append([]play.Request{r}, want...)
	}
	e.wantRequests(t, "five requests", tok, want...)
}

func testKeep(t *testing.T, e *env) {
	tok := newToken()
	var all []play.Request // newest first
	for i := range play.Keep + 5 {
		if i%10 == 0 {
			e.clock.Advance(time.Millisecond) // some at the same instant, some not
		}
		r := e.request(i)
		e.add(t, tok, r)
		all = append([]play.Request{r}, all...)
	}
	e.wantRequests(t, fmt.Sprintf("after %d requests", len(all)), tok, all[:play.Keep]...)

	r := e.request(1000)
	e.add(t, tok, r)
	all = append([]play.Request{r}, all...)
	e.wantRequests(t, "after one more", tok, all[:play.Keep]...)
}

func testKeepBytes(t *testing.T, e *env) {
	body := []byte(strings.Repeat("0123456789abcdef", play.KeepBytes/16+1))
	for _, tc := range []struct {
		name string
		size int
		cut  bool
	}{
		{"AtTheLimit", play.KeepBytes, false},
		{"OneByteOver", play.KeepBytes + 1, true},
		{"Over", len(body), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := newToken()
			r := e.request(1)
			r.Body = body[:tc.size]
			e.add(t, tok, r)
			want := r
			want.Body, want.Truncated = body[:min(tc.size, play.KeepBytes)], tc.cut
			e.wantRequests(t, fmt.Sprintf("a body of %d bytes", tc.size), tok, want)
		})
	}
}

func testTokens(t *testing.T, e *env) {
	a, b := newToken(), newToken()
	ra, rb := e.request(1), e.request(2)
	e.link(t, a, play.Link{AppID: "app_a", EndpointID: "ep_a"})
	e.add(t, a, ra)
	e.add(t, b, rb)
	e.wantRequests(t, "token a", a, ra)
	e.wantRequests(t, "token b", b, rb)
	e.wantLink(t, "token a", a, play.Link{AppID: "app_a", EndpointID: "ep_a"})
	e.wantNoLink(t, "token b", b)
	// A token that extends another is another token.
	e.wantRequests(t, "a prefix of token a", a[:len(a)-1])
	e.wantRequests(t, "token a extended", a+"x")
}

func testExpiry(t *testing.T, e *env) {
	tok := newToken()
	link := play.Link{AppID: "app_1", EndpointID: "ep_1"}
	t0 := e.clock.Now()
	e.link(t, tok, link)
	r1 := e.request(1)
	e.add(t, tok, r1)

	t1 := e.clock.Advance(play.TTL / 2)
	r2 := e.request(2)
	e.add(t, tok, r2) // renews the link

	e.clock.Set(t0.Add(play.TTL - time.Millisecond))
	e.wantRequests(t, "just before the first request's TTL", tok, r2, r1)
	e.clock.Set(t0.Add(play.TTL + time.Millisecond))
	e.wantRequests(t, "just after the first request's TTL", tok, r2)
	e.wantLink(t, "after the link's first TTL, renewed by Add", tok, link)

	e.clock.Set(t1.Add(play.TTL - time.Millisecond))
	e.wantRequests(t, "just before the last request's TTL", tok, r2)
	e.wantLink(t, "just before the TTL after the last Add", tok, link)
	e.clock.Set(t1.Add(play.TTL + time.Millisecond))
	e.wantRequests(t, "just after the last request's TTL", tok)
	e.wantNoLink(t, "just after the TTL after the last Add", tok)

	// The token works again; its old link does not come back.
	r3 := e.request(3)
	e.add(t, tok, r3)
	e.wantRequests(t, "a new request after expiry", tok, r3)
	e.wantNoLink(t, "Add after the link expired", tok)
}

func testLinkExpiry(t *testing.T, e *env) {
	tok := newToken()
	link := play.Link{AppID: "app_1", EndpointID: "ep_1"}
	t0 := e.clock.Now()
	e.link(t, tok, link)
	e.clock.Set(t0.Add(play.TTL - time.Millisecond))
	e.wantLink(t, "just before the TTL", tok, link)
	e.clock.Set(t0.Add(play.TTL + time.Millisecond))
	e.wantNoLink(t, "just after the TTL", tok)

	e.link(t, tok, link)
	e.wantLink(t, "linked again after expiry", tok, link)
}

func testConcurrent(t *testing.T, e *env) {
	tok := newToken()
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	for i := range n {
		wg.Go(func() {
			if err := e.s.Add(e.ctx, tok, e.request(i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() {
		if err := e.s.Link(e.ctx, tok, play.Link{AppID: "app_1", EndpointID: "ep_1"}); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
	got, err := e.s.Requests(e.ctx, tok)
	if err != nil {
		t.Fatalf("Requests: %v", err)
	}
	if len(got) != n {
		t.Errorf("kept %d of %d concurrent requests", len(got), n)
	}
	e.wantLink(t, "linked concurrently", tok, play.Link{AppID: "app_1", EndpointID: "ep_1"})
}
