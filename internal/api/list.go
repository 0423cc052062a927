package api

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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

// mapItems converts every item of a page.
func mapItems[T, O any](items []T, conv func(*T) O) []O {
	out := make([]O, len(items))
	for i := range items {
		out[i] = conv(&items[i])
	}
	return out
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
