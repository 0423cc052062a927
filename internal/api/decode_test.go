package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
)

// TestParseObject: a body is parsed once, and its errors still tell
// invalid JSON from JSON that is not an object.
func TestParseObject(t *testing.T) {
	for _, tc := range []struct {
		body, want string // want: the problem, "" if parsed
	}{
		{`{"a": 1, "payload": {"b": [1, 2]}}`, ""},
		{`  {}  `, ""},
		{``, "a JSON object is required"},
		{`{"a": 1`, "the body is not valid JSON"},
		{`{"a": 1}}`, "the body is not valid JSON"},
		{`[1, 2]`, "the body must be a JSON object"},
		{`null`, "the body must be a JSON object"},
		{`"text"`, "the body must be a JSON object"},
	} {
		var p webhook.Problems
		f, err := parseObject([]byte(tc.body), &p)
		switch {
		case tc.want == "" && (err != nil || f == nil):
			t.Errorf("parseObject(%q) = %v, want parsed", tc.body, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("parseObject(%q) = %v, want %q", tc.body, err, tc.want)
		}
	}
	var p webhook.Problems
	f, _ := parseObject([]byte(`{"payload": {"b": [1, 2]}}`), &p)
	if got, ok := required[json.RawMessage](f, "payload"); !ok || string(got) != `{"b": [1, 2]}` {
		t.Errorf("payload: %s, %v", got, ok)
	}
}
