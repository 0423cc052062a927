package api

import (
	"time"
)

// timestampLayout is RFC 3339 in UTC with milliseconds, as Svix writes it.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// timestamp marshals a time in timestampLayout.
type timestamp time.Time

func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(timestampLayout) + `"`), nil
}

// timeOrNull is a nullable timestamp: null for the zero time.
func timeOrNull(t time.Time) *timestamp {
	if t.IsZero() {
		return nil
	}
	ts := timestamp(t)
	return &ts
}

// stringOrNull is null for "".
func stringOrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// listOrNull is null for an empty list.
func listOrNull(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// nonNilMap makes an empty map encode as {} rather than null, for required
// map fields.
func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
