package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookstep/hookstep/internal/webhook"
)

// lambdaResponseLimit is Lambda's limit on a synchronous response, 6 MB
// (read as the smaller 6,000,000 bytes); the api function's response is
// the list body inside API Gateway's proxy envelope.
const lambdaResponseLimit = 6_000_000

// lambdaBodyLen is how many bytes body takes in the api Lambda's response:
// a JSON string as aws-lambda-go writes it (encoding/json, HTML escaping
// off), quotes excluded, or base64 when it is not valid UTF-8 (as
// lambdafn.Proxy sends such a body).
func lambdaBodyLen(t testing.TB, body []byte) int {
	t.Helper()
	if !utf8.Valid(body) {
		return base64.StdEncoding.EncodedLen(len(body))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(body)); err != nil {
		t.Fatal(err)
	}
	return buf.Len() - len(`""`+"\n")
}

// TestPageSizeCountsTheLambdaResponse checks pageSize against
// encoding/json itself: the weight it counts for a part of a body is what
// that part takes in the api Lambda's response.
func TestPageSizeCountsTheLambdaResponse(t *testing.T) {
	tests := []struct {
		name  string
		parts []string
	}{
		{"plain JSON", []string{`{"a":1,"b":[true,null]}`}},
		{"quotes and backslashes", []string{`{"a":"say \"hi\" \\ bye"}`}},
		{"newline, tab, carriage return", []string{"{}\n", "\t\r"}},
		{"other control characters", []string{"\x00\x01\x1f"}},
		{"line and paragraph separators", []string{"a\u2028b\u2029c"}},
		{"other non-ASCII", []string{"héllo ✓ 日本 \U0001F600", "\u2027\u202a"}},
		{"HTML characters, not escaped", []string{"<a href='x'>&amp;</a>"}},
		{"invalid UTF-8 makes the body base64", []string{`{"a":"ok"}`, "{\"b\":\"\xff\"}"}},
		{"a truncated separator is invalid UTF-8", []string{"\xe2\x80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var z pageSize
			for _, p := range tt.parts {
				z.add([]byte(p))
			}
			body := []byte(strings.Join(tt.parts, ""))
			if got, want := z.wire(), lambdaBodyLen(t, body); got != want {
				t.Errorf("wire() = %d, want %d (raw %d bytes)", got, want, len(body))
			}
		})
	}
}

// bigPayload is a message payload of nearly webhook.MaxPayloadBytes with
// many quotes, which weigh double in the Lambda response: each `ab\"` is 4
// bytes, 6 once escaped. (One long string: the test decodes it quickly.)
func bigPayload(t testing.TB) json.RawMessage {
	t.Helper()
	n := (webhook.MaxPayloadBytes - len(`{"q":""}`)) / len(`ab\"`)
	p := json.RawMessage(`{"q":"` + strings.Repeat(`ab\"`, n) + `"}`)
	if len(p) > webhook.MaxPayloadBytes || len(p) < webhook.MaxPayloadBytes-8 {
		t.Fatalf("payload is %d bytes, want just under %d", len(p), webhook.MaxPayloadBytes)
	}
	return p
}

// walk reads the list at base (a path with a query) forwards to its end,
// then from its last page back to the start through prevIterator. Every
// page must hold an item and weigh at most budget in the Lambda response.
// It returns the ids in list order as each walk saw them, and the pages of
// the forward walk.
func (h *harness) walk(base string, budget int) (forward, backward []string, pages []page) {
	h.t.Helper()
	check := func(p page) {
		h.t.Helper()
		if len(p.ids) == 0 {
			h.t.Fatalf("%s: an empty page (done %v) in a list with items", base, p.done)
		}
		if n := lambdaBodyLen(h.t, p.body); n > budget {
			h.t.Fatalf("%s: page of %d items weighs %d bytes in the Lambda response, over the budget of %d", base, len(p.ids), n, budget)
		}
	}
	p := h.page(base)
	for {
		check(p)
		pages = append(pages, p)
		forward = append(forward, p.ids...)
		if p.done {
			break
		}
		if len(pages) > 300 {
			h.t.Fatalf("%s: the forward walk does not end", base)
		}
		p = h.page(withIterator(base, p.iterator))
	}
	backward = slices.Clone(p.ids)
	for steps := 0; ; steps++ {
		if steps > 300 {
			h.t.Fatalf("%s: the backward walk does not end", base)
		}
		p = h.page(withIterator(base, p.prevIterator))
		check(p)
		backward = append(slices.Clone(p.ids), backward...)
		if p.done {
			break
		}
	}
	return forward, backward, pages
}

// wantEachOnce fails unless got is want: every item once, in list order.
func wantEachOnce(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %d ids %v, want each of %d once, in order %v", what, len(got), got, len(want), want)
	}
}

// sortedIDs returns ids in a list's order: ascending, or newest first.
func sortedIDs(ids []string, ascending bool) []string {
	out := slices.Sorted(slices.Values(ids))
	if !ascending {
		slices.Reverse(out)
	}
	return out
}

// TestListPagesStopAtByteBudget stores 30 messages of 256 KiB and lists
// them, 250 at a time, with their content — 7.5 MB of payloads, more once
// escaped, where Lambda answers at most 6 MB. Each page stops before
// maxPageBytes as the Lambda response counts bytes, says done false, and
// following the iterators (both ways) gives every message once. The same
// for the lists that embed messages: an endpoint's messages, and attempts
// with_msg. (TestEveryListPagesByBytes covers both orders.)
func TestListPagesStopAtByteBudget(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open)
		app := str(h.createApp(map[string]any{"name": "big"})["id"])
		ep := str(h.createEndpoint(app, map[string]any{})["id"])
		payload := bigPayload(t)
		var msgs, attempts []string
		for range 30 {
			m := str(h.sendMessage(app, map[string]any{"payload": payload})["id"])
			msgs = append(msgs, m)
			attempts = append(attempts, h.recordAttempt(app, m, ep, 200, webhook.StatusSuccess))
		}

		A := "/api/v1/app/" + app
		for _, tc := range []struct {
			name, path string
			want       []string
		}{
			{"messages", A + "/msg?limit=250&with_content=true", sortedIDs(msgs, false)},
			{"an endpoint's messages", A + "/endpoint/" + ep + "/msg?limit=250&with_content=true", sortedIDs(msgs, false)},
			{"attempts with their message", A + "/attempt/endpoint/" + ep + "?limit=250&with_msg=true", sortedIDs(attempts, false)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h.t = t
				forward, backward, pages := h.walk(tc.path, maxPageBytes)
				first := pages[0]
				if first.done || len(first.ids) < 2 || len(first.ids) >= len(tc.want) {
					t.Errorf("first page: %d of %d items, done %v; want several, not all, and done false",
						len(first.ids), len(tc.want), first.done)
				}
				if n := lambdaBodyLen(t, first.body); n > lambdaResponseLimit {
					t.Errorf("first page weighs %d bytes in the Lambda response, over Lambda's %d", n, lambdaResponseLimit)
				}
				wantEachOnce(t, "forwards", forward, tc.want)
				wantEachOnce(t, "backwards", backward, tc.want)
			})
		}
	})
}

// TestEveryListPagesByBytes walks every list of the API with small page
// budgets: one item per page (a budget below any item: a page still holds
// one), and about half the list per page. Every item comes once, in
// order, forwards and backwards, in both orders.
func TestEveryListPagesByBytes(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open)
		var apps, eventTypes, endpoints, msgs, epAttempts, msgAttempts []string
		for i := range 4 {
			name := fmt.Sprintf("type.%d", i)
			h.createEventType(name)
			eventTypes = append(eventTypes, name)
		}
		for i := range 3 {
			apps = append(apps, str(h.createApp(map[string]any{"name": fmt.Sprint("other ", i)})["id"]))
		}
		app := str(h.createApp(map[string]any{"name": "main", "metadata": map[string]any{"k": strings.Repeat("v", 100)}})["id"])
		apps = append(apps, app)
		for i := range 4 {
			endpoints = append(endpoints, str(h.createEndpoint(app, map[string]any{"description": fmt.Sprint("endpoint ", i)})["id"]))
		}
		for i := range 4 {
			msgs = append(msgs, str(h.sendMessage(app, map[string]any{"payload": map[string]any{"n": i, "s": `"quoted"`}})["id"]))
		}
		for _, m := range msgs {
			for _, ep := range endpoints {
				id := h.recordAttempt(app, m, ep, 500, webhook.StatusSending)
				if ep == endpoints[0] {
					epAttempts = append(epAttempts, id)
				}
				if m == msgs[0] {
					msgAttempts = append(msgAttempts, id)
				}
			}
		}

		A := "/api/v1/app/" + app
		lists := []struct {
			name, path string
			ids        []string
			ascending  bool // the default order
		}{
			{"apps", "/api/v1/app?limit=250", apps, true},
			{"event types", "/api/v1/event-type?limit=250", eventTypes, true},
			{"endpoints", A + "/endpoint?limit=250", endpoints, true},
			{"messages", A + "/msg?limit=250", msgs, false},
			{"attempts by endpoint", A + "/attempt/endpoint/" + endpoints[0] + "?limit=250&with_msg=true", epAttempts, false},
			{"attempts by message", A + "/attempt/msg/" + msgs[0] + "?limit=250", msgAttempts, false},
			{"an endpoint's messages", A + "/endpoint/" + endpoints[0] + "/msg?limit=250", msgs, false},
			{"a message's endpoints", A + "/msg/" + msgs[0] + "/endpoint?limit=250", endpoints, false},
		}
		for _, l := range lists {
			for _, ascending := range []bool{l.ascending, !l.ascending} {
				path := l.path + "&order=descending"
				if ascending {
					path = l.path + "&order=ascending"
				}
				want := sortedIDs(l.ids, ascending)
				h.t, h.srv.pageBytes = t, 0
				all := h.page(path)
				wantEachOnce(t, l.name+": one page of the default budget", all.ids, want)
				whole := lambdaBodyLen(t, all.body)
				for _, b := range []struct {
					name     string
					budget   int
					minPages int
				}{
					{"one item per page", 1, len(want)},
					{"half the list per page", pageEnvelopeBytes + whole/2, 2},
				} {
					t.Run(fmt.Sprintf("%s/ascending=%v/%s", l.name, ascending, b.name), func(t *testing.T) {
						h.t, h.srv.pageBytes = t, b.budget
						weight := b.budget
						if weight < whole/len(want) {
							weight = whole // below any item: the page's one item weighs what it weighs
						}
						forward, backward, pages := h.walk(path, weight)
						if len(pages) < b.minPages {
							t.Errorf("%d pages, want at least %d", len(pages), b.minPages)
						}
						wantEachOnce(t, "forwards", forward, want)
						wantEachOnce(t, "backwards", backward, want)
					})
				}
			}
		}
	})
}
