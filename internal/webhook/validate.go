package webhook

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits, as in API.md and RELIABILITY.md.
const (
	MaxPayloadBytes    = 256 << 10
	MaxNameLen         = 256
	MaxUIDLen          = 256
	MaxURLLen          = 2048
	MaxChannels        = 10
	MaxChannelLen      = 128
	MaxTags            = 5
	MaxTagLen          = 128
	MaxHeaderValueLen  = 4096
	MaxHeaders         = 50
	MaxDescriptionLen  = 1024
	MaxMetadataEntries = 50
	MaxMetadataLen     = 1024
	MaxEventIDLen      = 256
	MaxFilterTypes     = 100
	MinRetentionDays   = 1
	MaxRetentionDays   = 90
)

// DefaultRetention is a configured default retention of messages: d, or
// MaxRetentionDays when d is zero (Svix keeps payloads 90 days unless a
// message says otherwise).
func DefaultRetention(d time.Duration) time.Duration {
	if d <= 0 {
		return MaxRetentionDays * 24 * time.Hour
	}
	return d
}

var (
	uidPattern       = regexp.MustCompile(`^[a-zA-Z0-9\-_.]+$`)
	eventNamePattern = regexp.MustCompile(`^[a-zA-Z0-9\-_.]+$`)
	channelPattern   = regexp.MustCompile(`^[a-zA-Z0-9\-_.:+]+$`)
	headerNameRe     = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// Length limits of text are in characters (runes), as the messages say;
// limits in bytes (payloads, header values) say bytes.

// ValidateUID checks an app or endpoint uid at loc.
func ValidateUID(p *Problems, loc []string, uid string) {
	switch {
	case uid == "" || utf8.RuneCountInString(uid) > MaxUIDLen:
		p.Add(loc, "uid must be 1 to %d characters", MaxUIDLen)
	case !uidPattern.MatchString(uid):
		p.Add(loc, "uid may contain only letters, digits, '-', '_' and '.'")
	case HasIDPrefix(uid):
		p.Add(loc, "uid must not start with an id prefix")
	}
}

// ValidateEventTypeName checks an event type name at loc.
func ValidateEventTypeName(p *Problems, loc []string, name string) {
	switch {
	case name == "" || utf8.RuneCountInString(name) > MaxNameLen:
		p.Add(loc, "name must be 1 to %d characters", MaxNameLen)
	case !eventNamePattern.MatchString(name):
		p.Add(loc, "name may contain only letters, digits, '-', '_' and '.'")
	}
}

// ValidateChannels checks a channel list at loc.
func ValidateChannels(p *Problems, loc []string, channels []string, allowEmpty bool) {
	if len(channels) > MaxChannels || (!allowEmpty && len(channels) == 0) {
		p.Add(loc, "channels must hold 1 to %d entries", MaxChannels)
		return
	}
	for i, c := range channels {
		if c == "" || utf8.RuneCountInString(c) > MaxChannelLen || !channelPattern.MatchString(c) {
			p.Add(append(append([]string(nil), loc...), strconv.Itoa(i)), "channel must be 1 to %d characters of letters, digits and -_.:+", MaxChannelLen)
		}
	}
}

// ValidateMetadata checks a metadata map at loc.
func ValidateMetadata(p *Problems, loc []string, md map[string]string) {
	if len(md) > MaxMetadataEntries {
		p.Add(loc, "metadata may hold at most %d entries", MaxMetadataEntries)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(md)) { // sorted: problems in a stable order
		v := md[k]
		if k == "" || utf8.RuneCountInString(k) > MaxMetadataLen || utf8.RuneCountInString(v) > MaxMetadataLen {
			p.Add(append(append([]string(nil), loc...), k), "metadata keys must be 1 to %d characters and values at most %d", MaxMetadataLen, MaxMetadataLen)
		}
	}
}

// ValidateName checks a required display name (apps) at loc.
func ValidateName(p *Problems, loc []string, name string) {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > MaxNameLen {
		p.Add(loc, "name must be 1 to %d characters", MaxNameLen)
	}
}

// ValidateDescription checks a description (endpoints, event types) at
// loc; "" is allowed.
func ValidateDescription(p *Problems, loc []string, description string) {
	if utf8.RuneCountInString(description) > MaxDescriptionLen {
		p.Add(loc, "must be at most %d characters", MaxDescriptionLen)
	}
}

// reservedHeaders may not be set as endpoint custom headers: hop-by-hop
// headers, headers the sender owns, and the signature namespaces.
var reservedHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "trailers": true,
	"transfer-encoding": true, "upgrade": true, "host": true, "user-agent": true,
	"proxy-connection": true, "expect": true, "accept-encoding": true,
}

var reservedHeaderPrefixes = []string{"content-", "webhook-", "svix-", "x-amz-", "x-amzn-"}

// ValidateHeaders checks endpoint custom headers at loc. A nil value (in a
// PATCH) means "remove" and is checked only for its name.
func ValidateHeaders(p *Problems, loc []string, headers map[string]*string) {
	if len(headers) > MaxHeaders {
		p.Add(loc, "at most %d headers", MaxHeaders)
		return
	}
	for _, name := range slices.Sorted(maps.Keys(headers)) { // sorted: problems in a stable order
		v := headers[name]
		l := append(append([]string(nil), loc...), name)
		lower := strings.ToLower(name)
		switch {
		case !headerNameRe.MatchString(name):
			p.Add(l, "invalid header name")
			continue
		case reservedHeaders[lower] || hasAnyPrefix(lower, reservedHeaderPrefixes):
			p.Add(l, "header %q is reserved and cannot be set", name)
			continue
		}
		if v == nil {
			continue
		}
		if len(*v) > MaxHeaderValueLen {
			p.Add(l, "header value must be at most %d bytes", MaxHeaderValueLen)
		} else if strings.ContainsAny(*v, "\r\n\x00") || !utf8.ValidString(*v) {
			p.Add(l, "header value must not contain CR, LF or NUL")
		}
	}
}

// sensitiveHeaders are not echoed back by GET .../headers.
var sensitiveHeaders = map[string]bool{
	"authorization": true, "x-api-key": true, "api-key": true, "x-auth-token": true,
	"cookie": true, "x-access-token": true, "x-secret": true,
}

// IsSensitiveHeader reports whether a custom header's value is a secret.
func IsSensitiveHeader(name string) bool {
	return sensitiveHeaders[strings.ToLower(textproto.CanonicalMIMEHeaderKey(name))] ||
		sensitiveHeaders[strings.ToLower(name)]
}

// ValidatePayload checks a message payload: a JSON object of at most
// MaxPayloadBytes once serialized. It returns the compacted bytes that are
// stored, signed and sent.
func ValidatePayload(p *Problems, loc []string, raw json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		p.Add(loc, "payload must be a JSON object")
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		p.Add(loc, "payload must be a JSON object")
		return nil
	}
	if buf.Len() > MaxPayloadBytes {
		p.TooLarge("payload is %d bytes, over the limit of %d", buf.Len(), MaxPayloadBytes)
		return nil
	}
	return buf.Bytes()
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}
