package webhook

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestDefaultScheduleIsTheSeedPolicy(t *testing.T) {
	want := "0s,5s,5m0s,30m0s,2h0m0s,5h0m0s,10h0m0s,10h0m0s"
	if got := DefaultSchedule.String(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := DefaultSchedule.MaxAttempts(); got != 9 {
		t.Errorf("MaxAttempts: got %d, want 9", got)
	}
	var total time.Duration
	for _, d := range DefaultSchedule {
		total += d
	}
	if total <= 24*time.Hour {
		t.Errorf("retries span %s, want more than a day", total)
	}
}

func TestScheduleNext(t *testing.T) {
	s := Schedule{0, time.Second, 2 * time.Second}
	tests := []struct {
		attempts int
		wait     time.Duration
		more     bool
	}{{0, 0, false}, {1, 0, true}, {2, time.Second, true}, {3, 2 * time.Second, true}, {4, 0, false}}
	for _, tt := range tests {
		wait, more := s.Next(tt.attempts)
		if wait != tt.wait || more != tt.more {
			t.Errorf("Next(%d): got %s, %v; want %s, %v", tt.attempts, wait, more, tt.wait, tt.more)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule(" 0s, 1s ,2m ")
	if err != nil || s.String() != "0s,1s,2m0s" {
		t.Fatalf("got %v, %v", s, err)
	}
	for _, bad := range []string{"", "1s,", "soon", "1s,-2s"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q): want an error", bad)
		}
	}
}

func TestNewIDIsPrefixedAndIncreasing(t *testing.T) {
	prev := NewID(PrefixMessage)
	for range 1000 {
		id := NewID(PrefixMessage)
		if !strings.HasPrefix(id, PrefixMessage) || len(id) != len(PrefixMessage)+27 {
			t.Fatalf("bad id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids not increasing: %s then %s", prev, id)
		}
		prev = id
	}
}

func TestSubscribed(t *testing.T) {
	msg := func(typ string, ch ...string) *Message { return &Message{EventType: typ, Channels: ch} }
	tests := []struct {
		name string
		ep   Endpoint
		msg  *Message
		want bool
	}{
		{"no filters", Endpoint{}, msg("a"), true},
		{"type listed", Endpoint{FilterTypes: []string{"b", "a"}}, msg("a"), true},
		{"type not listed", Endpoint{FilterTypes: []string{"b"}}, msg("a"), false},
		{"channel shared", Endpoint{Channels: []string{"x", "y"}}, msg("a", "y"), true},
		{"channel not shared", Endpoint{Channels: []string{"x"}}, msg("a", "z"), false},
		{"message without channels", Endpoint{Channels: []string{"x"}}, msg("a"), false},
		{"endpoint without channels", Endpoint{}, msg("a", "x"), true},
		{"disabled", Endpoint{Disabled: true}, msg("a"), false},
	}
	for _, tt := range tests {
		if got := Subscribed(&tt.ep, tt.msg); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCurrentKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ep := Endpoint{Keys: []SigningKey{
		{Key: []byte("new")},
		{Key: []byte("grace"), ExpiresAt: now.Add(time.Second)},
		{Key: []byte("expired"), ExpiresAt: now},
	}}
	var got []string
	for _, k := range ep.CurrentKeys(now) {
		got = append(got, string(k))
	}
	if strings.Join(got, ",") != "new,grace" {
		t.Errorf("got %v, want [new grace]", got)
	}
}

func fields(err error) []string {
	e, ok := err.(*Error)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range e.Fields {
		out = append(out, strings.Join(f.Loc, "."))
	}
	sort.Strings(out)
	return out
}

func TestValidators(t *testing.T) {
	loc := []string{"body", "x"}
	long := func(n int) string { return strings.Repeat("a", n) }
	str := func(s string) *string { return &s }
	tests := []struct {
		name  string
		check func(p *Problems)
		bad   bool
	}{
		{"uid ok", func(p *Problems) { ValidateUID(p, loc, "my-app_1.0") }, false},
		{"uid 256", func(p *Problems) { ValidateUID(p, loc, long(256)) }, false},
		{"uid 257", func(p *Problems) { ValidateUID(p, loc, long(257)) }, true},
		{"uid empty", func(p *Problems) { ValidateUID(p, loc, "") }, true},
		{"uid space", func(p *Problems) { ValidateUID(p, loc, "a b") }, true},
		{"uid id prefix", func(p *Problems) { ValidateUID(p, loc, "app_123") }, true},
		{"event name ok", func(p *Problems) { ValidateEventTypeName(p, loc, "v1.end_user.created") }, false},
		{"event name 257", func(p *Problems) { ValidateEventTypeName(p, loc, long(257)) }, true},
		{"event name slash", func(p *Problems) { ValidateEventTypeName(p, loc, "a/b") }, true},
		{"channels 10", func(p *Problems) { ValidateChannels(p, loc, strings.Split("a,b,c,d,e,f,g,h,i,j", ","), false) }, false},
		{"channels 11", func(p *Problems) { ValidateChannels(p, loc, strings.Split("a,b,c,d,e,f,g,h,i,j,k", ","), false) }, true},
		{"channels empty not allowed", func(p *Problems) { ValidateChannels(p, loc, nil, false) }, true},
		{"channels empty allowed", func(p *Problems) { ValidateChannels(p, loc, nil, true) }, false},
		{"channel 128", func(p *Problems) { ValidateChannels(p, loc, []string{long(128)}, false) }, false},
		{"channel 129", func(p *Problems) { ValidateChannels(p, loc, []string{long(129)}, false) }, true},
		{"channel chars", func(p *Problems) { ValidateChannels(p, loc, []string{"eu:west+1"}, false) }, false},
		{"channel space", func(p *Problems) { ValidateChannels(p, loc, []string{"eu west"}, false) }, true},
		{"header ok", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X-Tenant": str("acme")}) }, false},
		{"header 4096", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X-A": str(long(4096))}) }, false},
		{"header 4097", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X-A": str(long(4097))}) }, true},
		{"header CRLF", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X-A": str("a\r\nX-B: c")}) }, true},
		{"header host", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"Host": str("x")}) }, true},
		{"header content-type", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"Content-Type": str("x")}) }, true},
		{"header svix-", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"svix-id": str("x")}) }, true},
		{"header webhook-", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"Webhook-Signature": str("x")}) }, true},
		{"header x-amz-", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X-Amz-Date": str("x")}) }, true},
		{"header hop-by-hop", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"Transfer-Encoding": str("x")}) }, true},
		{"header bad name", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X A": str("x")}) }, true},
		{"header removal", func(p *Problems) { ValidateHeaders(p, loc, map[string]*string{"X-A": nil}) }, false},
		{"name ok", func(p *Problems) { ValidateName(p, loc, "Acme") }, false},
		{"name blank", func(p *Problems) { ValidateName(p, loc, "  ") }, true},
		{"metadata ok", func(p *Problems) { ValidateMetadata(p, loc, map[string]string{"k": "v"}) }, false},
		{"metadata empty key", func(p *Problems) { ValidateMetadata(p, loc, map[string]string{"": "v"}) }, true},
		// Text limits are in characters, not bytes.
		{"name 256 runes", func(p *Problems) { ValidateName(p, loc, strings.Repeat("é", 256)) }, false},
		{"name 257 runes", func(p *Problems) { ValidateName(p, loc, strings.Repeat("é", 257)) }, true},
		{"description 1024 runes", func(p *Problems) { ValidateDescription(p, loc, strings.Repeat("日", 1024)) }, false},
		{"description 1025 runes", func(p *Problems) { ValidateDescription(p, loc, strings.Repeat("日", 1025)) }, true},
		{"description empty", func(p *Problems) { ValidateDescription(p, loc, "") }, false},
		{"metadata 1024 runes", func(p *Problems) { ValidateMetadata(p, loc, map[string]string{"k": strings.Repeat("é", 1024)}) }, false},
		{"metadata 1025 runes", func(p *Problems) { ValidateMetadata(p, loc, map[string]string{"k": strings.Repeat("é", 1025)}) }, true},
	}
	for _, tt := range tests {
		var p Problems
		tt.check(&p)
		err := p.Err()
		if (err != nil) != tt.bad {
			t.Errorf("%s: got %v, want bad=%v", tt.name, err, tt.bad)
		}
		if err != nil && ErrorKind(err) != KindInvalid {
			t.Errorf("%s: kind %v, want invalid", tt.name, ErrorKind(err))
		}
	}
}

// TestValidatorMessagesSayWhatIsWrong checks that a uid or name of
// non-ASCII characters within the length limit is refused for its
// characters, not for a length counted in bytes.
func TestValidatorMessagesSayWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(p *Problems)
		want  string
	}{
		{"uid", func(p *Problems) { ValidateUID(p, nil, strings.Repeat("é", 200)) }, "uid may contain only"},
		{"event type name", func(p *Problems) { ValidateEventTypeName(p, nil, strings.Repeat("é", 200)) }, "name may contain only"},
	} {
		var p Problems
		tc.check(&p)
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s of 200 'é' (400 bytes): got %v, want a problem saying %q", tc.name, err, tc.want)
		}
	}
}

// TestValidatorsReportInNameOrder checks that the problems of a map (one
// per bad header or metadata key) come in the order of the names, not in
// Go's random map order.
func TestValidatorsReportInNameOrder(t *testing.T) {
	x := "x"
	headers := map[string]*string{"Host": &x, "X-Ok": &x, "Content-Type": &x, "Svix-Id": &x, "A B": &x, "Webhook-Id": &x}
	wantHeaders := []string{"A B", "Content-Type", "Host", "Svix-Id", "Webhook-Id"}
	long := strings.Repeat("v", MaxMetadataLen+1)
	metadata := map[string]string{"z": long, "a": long, "ok": "v", "m": long}
	wantMetadata := []string{"a", "m", "z"}
	for range 20 { // map order differs between runs of the loop
		var p Problems
		ValidateHeaders(&p, []string{"body", "headers"}, headers)
		ValidateMetadata(&p, []string{"body", "metadata"}, metadata)
		var got []string
		var e *Error
		if !errors.As(p.Err(), &e) {
			t.Fatalf("got %v, want field problems", p.Err())
		}
		for _, f := range e.Fields {
			got = append(got, f.Loc[2])
		}
		want := append(slices.Clone(wantHeaders), wantMetadata...)
		if !slices.Equal(got, want) {
			t.Fatalf("problems at %v, want %v", got, want)
		}
	}
}

func TestValidatePayload(t *testing.T) {
	loc := []string{"body", "payload"}
	// A payload of exactly the limit passes; one byte more is 413.
	fill := func(n int) json.RawMessage {
		prefix, suffix := `{"a":"`, `"}`
		return json.RawMessage(prefix + strings.Repeat("x", n-len(prefix)-len(suffix)) + suffix)
	}
	var p Problems
	if got := ValidatePayload(&p, loc, fill(MaxPayloadBytes)); p.Err() != nil || len(got) != MaxPayloadBytes {
		t.Errorf("payload at the limit: got %d bytes, %v", len(got), p.Err())
	}
	p = Problems{}
	ValidatePayload(&p, loc, fill(MaxPayloadBytes+1))
	if ErrorKind(p.Err()) != KindTooLarge {
		t.Errorf("payload over the limit: got %v, want too large", p.Err())
	}
	// Whitespace does not count against the limit: the compact form is stored.
	p = Problems{}
	if got := ValidatePayload(&p, loc, json.RawMessage("{ \"a\" :\n 1 }")); string(got) != `{"a":1}` || p.Err() != nil {
		t.Errorf("compact: got %s, %v", got, p.Err())
	}
	for _, bad := range []string{``, `null`, `[]`, `"s"`, `1`, `{`, `{"a":}`} {
		p = Problems{}
		ValidatePayload(&p, loc, json.RawMessage(bad))
		if got := fields(p.Err()); len(got) != 1 || got[0] != "body.payload" {
			t.Errorf("payload %q: got %v, want an error at body.payload", bad, p.Err())
		}
	}
}
