package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// maxBodyBytes caps every request body. A message payload may be up to
// webhook.MaxPayloadBytes once compacted; the rest is room for whitespace
// and the other fields.
const maxBodyBytes = 1 << 20

// readBody reads the request body through a size cap. A body over the cap
// is TooLarge (413).
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, webhook.TooLarge("request body is over the limit of %d bytes", maxBodyBytes)
		}
		return nil, webhook.BadRequest("generic_error", "could not read the request body")
	}
	return data, nil
}

// fields is a request body decoded one level deep, so that each field can
// be told apart as absent, null or set (PATCH semantics), and a field of the
// wrong type is reported at its own location. Unknown fields are ignored:
// SDKs send fields that hookstep does not implement.
type fields struct {
	raw map[string]json.RawMessage
	p   *webhook.Problems
}

// decodeObject reads the request body as a JSON object. A body that is
// empty, not JSON, or JSON but not an object is a 422 at ["body"].
func decodeObject(w http.ResponseWriter, r *http.Request, p *webhook.Problems) (*fields, error) {
	data, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	return parseObject(data, p)
}

// decodeOptionalObject is decodeObject for endpoints whose body may be
// omitted entirely (it then reads as {}).
func decodeOptionalObject(w http.ResponseWriter, r *http.Request, p *webhook.Problems) (*fields, error) {
	data, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &fields{raw: map[string]json.RawMessage{}, p: p}, nil
	}
	return parseObject(data, p)
}

func parseObject(data []byte, p *webhook.Problems) (*fields, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, webhook.Invalid(loc("body"), "a JSON object is required")
	}
	// One pass (Unmarshal validates first): a syntax error is not JSON,
	// any other failure not an object.
	var raw map[string]json.RawMessage
	err := json.Unmarshal(trimmed, &raw)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return nil, webhook.Invalid(loc("body"), "the body is not valid JSON")
	case err != nil || trimmed[0] != '{' || raw == nil:
		return nil, webhook.Invalid(loc("body"), "the body must be a JSON object")
	}
	return &fields{raw: raw, p: p}, nil
}

// opt is a decoded field: absent (!Set), null (Set && Null) or a value.
type opt[T any] struct {
	Set  bool
	Null bool
	V    T
}

// Value reports whether the field holds a value (set and not null).
func (o opt[T]) Value() bool { return o.Set && !o.Null }

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// has reports whether the body has the field, null or not.
func (f *fields) has(name string) bool {
	_, ok := f.raw[name]
	return ok
}

// field decodes one field into T. A value of the wrong type is a problem at
// ["body", name] and reads as absent.
func field[T any](f *fields, name string) opt[T] {
	raw, ok := f.raw[name]
	if !ok {
		return opt[T]{}
	}
	if isNull(raw) {
		return opt[T]{Set: true, Null: true}
	}
	v, ok := decodeValue[T](raw)
	if !ok {
		f.p.Add(loc("body", name), "must be %s", describe[T]())
		return opt[T]{}
	}
	return opt[T]{Set: true, V: v}
}

// aliased decodes the first of names present in the body (v2 and v1 field
// names of the same thing, e.g. throttleRate and rateLimit), and returns
// the name it used (names[0] when none is present).
func aliased[T any](f *fields, names ...string) (opt[T], string) {
	for _, n := range names {
		if f.has(n) {
			return field[T](f, n), n
		}
	}
	return opt[T]{}, names[0]
}

// required decodes a field that must be present and not null.
func required[T any](f *fields, name string) (T, bool) {
	o := field[T](f, name)
	if !o.Set && !f.has(name) {
		f.p.Add(loc("body", name), "field required")
	} else if o.Null {
		f.p.Add(loc("body", name), "must not be null")
	}
	return o.V, o.Value()
}

// decodeValue decodes raw into T strictly: maps and lists of strings may not
// hold nulls (encoding/json would turn them into "").
func decodeValue[T any](raw json.RawMessage) (T, bool) {
	var v T
	switch p := any(&v).(type) {
	case *json.RawMessage:
		*p = raw // valid JSON already: it was parsed with the body
		return v, true
	case *map[string]string:
		var m map[string]*string
		if json.Unmarshal(raw, &m) != nil {
			return v, false
		}
		out := make(map[string]string, len(m))
		for k, s := range m {
			if s == nil {
				return v, false
			}
			out[k] = *s
		}
		*p = out
		return v, true
	case *[]string:
		var l []*string
		if json.Unmarshal(raw, &l) != nil {
			return v, false
		}
		out := make([]string, len(l))
		for i, s := range l {
			if s == nil {
				return v, false
			}
			out[i] = *s
		}
		*p = out
		return v, true
	case *time.Time:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return v, false
		}
		t, err := parseTime(s)
		if err != nil {
			return v, false
		}
		*p = t
		return v, true
	}
	if json.Unmarshal(raw, &v) != nil {
		return v, false
	}
	return v, true
}

func describe[T any]() string {
	var v T
	switch any(v).(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64:
		return "an integer"
	case []string:
		return "an array of strings"
	case map[string]string:
		return "an object with string values"
	case map[string]*string:
		return "an object with string or null values"
	case time.Time:
		return "an RFC 3339 date-time string"
	}
	return "of the right type"
}

// parseTime reads an RFC 3339 timestamp. A '+' in a query string that was
// not percent-encoded arrives as a space; it is read as the '+' it was.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t2, err2 := time.Parse(time.RFC3339Nano, replaceSpacePlus(s))
		if err2 != nil {
			return time.Time{}, err
		}
		t = t2
	}
	return t.UTC(), nil
}

func replaceSpacePlus(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' {
			b[i] = '+'
		}
	}
	return string(b)
}
