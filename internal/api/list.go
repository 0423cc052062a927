package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookstep/hookstep/internal/webhook"
)

// listResponse is the Svix list envelope. iterator continues forwards
// after the last item, prevIterator backwards before the first one (see
// encodeIterator). Both are null on an empty page.
type listResponse[T any] struct {
	Data         []T     `json:"data"`
	Iterator     *string `json:"iterator"`
	PrevIterator *string `json:"prevIterator"`
	Done         bool    `json:"done"`
}

// newList builds the envelope for a page; data holds the page's items
// converted for output, and key gives each stored item's cursor.
func newList[T, O any](page webhook.Page[T], key func(*T) string, data []O) listResponse[O] {
	if data == nil {
		data = []O{}
	}
	l := listResponse[O]{Data: data, Done: !page.More}
	if n := len(page.Items); n > 0 {
		next := encodeIterator(key(&page.Items[n-1]), false)
		prev := encodeIterator(key(&page.Items[0]), true)
		l.Iterator, l.PrevIterator = &next, &prev
	}
	return l
}

// Iterators are opaque to clients, which only echo them: iteratorMark,
// then the unpadded base64url of a direction byte and the key. No key can
// contain '~' (ids and event type names are letters, digits and -_.), so
// an iterator never reads as a key; the earlier forms — the key itself
// (forwards) and "-" + the key (backwards) — are still accepted, but they
// are ambiguous for event type names that start with '-', which is why
// they are no longer given out.
const (
	iteratorMark     = "~"
	iteratorForward  = 'f'
	iteratorBackward = 'b'
)

// encodeIterator returns the iterator that continues from key, forwards
// (the items after it) or backwards (the items before it).
func encodeIterator(key string, backward bool) string {
	dir := byte(iteratorForward)
	if backward {
		dir = iteratorBackward
	}
	return iteratorMark + base64.RawURLEncoding.EncodeToString(append([]byte{dir}, key...))
}

// decodeIterator reads an iterator; valid checks that its key can be a key
// of the list.
func decodeIterator(it string, valid func(string) bool) (key string, backward, ok bool) {
	enc, opaque := strings.CutPrefix(it, iteratorMark)
	if !opaque {
		key, backward = strings.CutPrefix(it, "-") // the earlier form
		return key, backward, valid(key)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) < 2 || (raw[0] != iteratorForward && raw[0] != iteratorBackward) {
		return "", false, false
	}
	key = string(raw[1:])
	return key, raw[0] == iteratorBackward, valid(key)
}

// maxPageBytes is the most a list response may weigh, counted as
// pageSize counts it: 5 MiB. A page stops filling before it would pass
// this and answers done false, so a client just follows the iterator.
// Why: on AWS the response leaves the api Lambda as the body string of an
// API Gateway proxy response, and Lambda refuses a synchronous response
// over 6 MB (the client then gets a 502): 250 messages of 256 KiB would be
// 64 MB. The MiB left over holds the proxy envelope and headers (under
// 1 KiB), and still leaves room if AWS's 6 MB means 6,000,000 bytes. Local
// mode has no such limit but pages the same way, so clients see one
// behaviour.
const maxPageBytes = 5 << 20

// pageEnvelopeBytes is counted for the envelope around a page's items:
// its keys, done, and two iterators (an iterator of a 256-character event
// type name is 344 characters).
const pageEnvelopeBytes = 1 << 10

// pageSize adds up the weight of a response as it leaves Lambda, an upper
// bound of its weight anywhere else. The body travels as a JSON string
// (aws-lambda-go's encoding/json, HTML escaping off), where '"' and '\'
// take two bytes, control characters two or six, and U+2028 and U+2029
// six; a body that is not valid UTF-8 travels base64-encoded instead
// (lambdafn.Proxy), 4 bytes per 3 — a payload's strings may hold invalid
// UTF-8, which json.Compact lets through.
type pageSize struct {
	raw, escaped int
	binary       bool
}

// add counts b, a part of the body.
func (z *pageSize) add(b []byte) {
	z.raw += len(b)
	z.escaped += escapedLen(b)
	z.binary = z.binary || !utf8.Valid(b)
}

// wire is the weight of what was added, as it leaves Lambda.
func (z pageSize) wire() int {
	if z.binary {
		return base64.StdEncoding.EncodedLen(z.raw)
	}
	return z.escaped
}

// escapedLen is the length of b inside a JSON string, without the quotes,
// as encoding/json writes it with HTML escaping off (invalid UTF-8 aside:
// such a body is sent base64-encoded).
func escapedLen(b []byte) int {
	n := len(b)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
			n++
		case c < 0x20:
			n += 5 // \u00XX
		case c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9):
			n += 3 // U+2028, U+2029 as \u2028, \u2029
			i += 2
		}
	}
	return n
}

// pageBudget is the most a list response may weigh: maxPageBytes, or a
// test's smaller budget.
func (s *Server) pageBudget() int {
	if s.pageBytes > 0 {
		return s.pageBytes
	}
	return maxPageBytes
}

// writeList writes one page of a list read with opts. It converts the
// page's items in the direction of travel — conv may leave an item out
// (ok false: gone since it was listed), and is not called for items past
// the cut — and stops before the response would weigh more than the page
// budget, keeping at least one item whatever its size. A page cut short
// answers done false, its iterator (or, read backwards, its prevIterator)
// continuing right after the last item it kept, so following iterators
// neither skips nor repeats an item.
func writeList[T, O any](s *Server, w http.ResponseWriter, r *http.Request, opts webhook.ListOptions, page webhook.Page[T], key func(*T) string, conv func(*T) (O, bool, error)) error {
	backward := opts.Backward && opts.Cursor != "" // the stores read forwards without a cursor
	budget := s.pageBudget()
	size := pageSize{raw: pageEnvelopeBytes, escaped: pageEnvelopeBytes}
	var data []json.RawMessage
	kept := len(page.Items)
	for n := range page.Items {
		i := n
		if backward {
			i = len(page.Items) - 1 - n
		}
		out, ok, err := conv(&page.Items[i])
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		b, err := encodeItem(out)
		if err != nil {
			return err
		}
		next := size
		next.add(b)
		if len(data) > 0 {
			next.add(comma)
			if next.wire() > budget {
				kept = n
				break
			}
		}
		size, data = next, append(data, b)
	}
	if kept < len(page.Items) {
		if backward {
			page.Items = page.Items[len(page.Items)-kept:]
		} else {
			page.Items = page.Items[:kept]
		}
		page.More = true
	}
	if backward {
		slices.Reverse(data) // back to the list's order
	}
	s.writeJSON(w, r, http.StatusOK, newList(page, key, data))
	return nil
}

var comma = []byte{','}

// encodeItem encodes one item of a list as writeJSON would.
func encodeItem(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// each converts every item with f, leaving none out, for writeList.
func each[T, O any](f func(*T) O) func(*T) (O, bool, error) {
	return func(t *T) (O, bool, error) { return f(t), true, nil }
}

// query reads query parameters, collecting problems at ["query", name].
type query struct {
	v url.Values
	p *webhook.Problems
}

func newQuery(r *http.Request, p *webhook.Problems) query {
	return query{v: r.URL.Query(), p: p}
}

func (q query) str(name string) string { return q.v.Get(name) }

// bool reads a boolean parameter ("true"/"false", also 1/0), def when absent.
func (q query) bool(name string, def bool) bool {
	s := q.v.Get(name)
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		q.p.Add(loc("query", name), "must be true or false")
		return def
	}
	return b
}

// time reads an RFC 3339 parameter; zero when absent.
func (q query) time(name string) time.Time {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := parseTime(s)
	if err != nil {
		q.p.Add(loc("query", name), "must be an RFC 3339 date-time")
		return time.Time{}
	}
	return t
}

// list reads an array parameter, given either comma-joined
// (event_types=a,b) or repeated (event_types=a&event_types=b).
func (q query) list(name string) []string {
	var out []string
	for _, v := range q.v[name] {
		for part := range strings.SplitSeq(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// eventTypes reads the event_types filter, checking each name's syntax.
func (q query) eventTypes() []string {
	names := q.list("event_types")
	if len(names) > webhook.MaxFilterTypes {
		q.p.Add(loc("query", "event_types"), "at most %d event types", webhook.MaxFilterTypes)
		return nil
	}
	for _, n := range names {
		var p webhook.Problems
		webhook.ValidateEventTypeName(&p, nil, n)
		if p.Err() != nil {
			q.p.Add(loc("query", "event_types"), "%q is not a valid event type name", n)
			return nil
		}
	}
	return names
}

// channel reads the channel filter.
func (q query) channel() string {
	c := q.v.Get("channel")
	if c != "" {
		var p webhook.Problems
		webhook.ValidateChannels(&p, nil, []string{c}, false)
		if p.Err() != nil {
			q.p.Add(loc("query", "channel"), "not a valid channel name")
			return ""
		}
	}
	return c
}

// status reads a MessageStatus parameter (0..4); nil when absent.
func (q query) status(name string) *webhook.Status {
	s := q.v.Get(name)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < int(webhook.StatusSuccess) || n > int(webhook.StatusCanceled) {
		q.p.Add(loc("query", name), "must be a message status: 0, 1, 2, 3 or 4")
		return nil
	}
	st := webhook.Status(n)
	return &st
}

// statusCodeClass reads status_code_class (0, 100, 200, 300, 400 or 500).
func (q query) statusCodeClass() *int {
	s := q.v.Get("status_code_class")
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 500 || n%100 != 0 {
		q.p.Add(loc("query", "status_code_class"), "must be 0, 100, 200, 300, 400 or 500")
		return nil
	}
	return &n
}

// listOptions reads limit, iterator and order. valid checks that an
// iterator is a key of this list, so a garbled one is a 422, not an empty
// page.
func (q query) listOptions(ascendingByDefault bool, valid func(string) bool) webhook.ListOptions {
	opts := webhook.ListOptions{Limit: 50, Ascending: ascendingByDefault}
	if s := q.v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > webhook.MaxLimit {
			q.p.Add(loc("query", "limit"), "must be an integer from 1 to %d", webhook.MaxLimit)
		} else {
			opts.Limit = n
		}
	}
	switch q.v.Get("order") {
	case "":
	case "ascending":
		opts.Ascending = true
	case "descending":
		opts.Ascending = false
	default:
		q.p.Add(loc("query", "order"), "must be ascending or descending")
	}
	if it := q.v.Get("iterator"); it != "" {
		cursor, backward, ok := decodeIterator(it, valid)
		if !ok {
			q.p.Add(loc("query", "iterator"), "not an iterator of this list")
		} else {
			opts.Cursor, opts.Backward = cursor, backward
		}
	}
	return opts
}

// isID reports whether s is a hookstep id with the given prefix: the prefix
// and a 27-character base62 KSUID.
func isID(prefix string) func(string) bool {
	return func(s string) bool {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok || len(rest) != 27 {
			return false
		}
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
		return true
	}
}

// isEventTypeName reports whether s is a valid event type name.
func isEventTypeName(s string) bool {
	var p webhook.Problems
	webhook.ValidateEventTypeName(&p, nil, s)
	return p.Err() == nil
}
