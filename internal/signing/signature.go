package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a signed timestamp may be from the verifier's
// clock, in either direction, when Verify is given no tolerance. It matches
// the Svix SDKs.
const DefaultTolerance = 5 * time.Minute

// Header names. Both sets are sent with identical values.
const (
	headerWebhookID        = "webhook-id"
	headerWebhookTimestamp = "webhook-timestamp"
	headerWebhookSignature = "webhook-signature"
	headerSvixID           = "svix-id"
	headerSvixTimestamp    = "svix-timestamp"
	headerSvixSignature    = "svix-signature"
)

const signatureVersion = "v1"

// Errors returned by Verify.
var (
	ErrMissingHeaders   = errors.New("signing: missing id, timestamp or signature header")
	ErrInvalidTimestamp = errors.New("signing: timestamp header is not unix seconds")
	ErrTooOld           = errors.New("signing: timestamp too old")
	ErrTooNew           = errors.New("signing: timestamp too new")
	ErrNoMatch          = errors.New("signing: no matching signature")
)

// Sign returns the signature header value for one message: one
// "v1,<base64 HMAC-SHA256>" per key, space-separated, in the order of keys.
// ts is truncated to unix seconds, as it is sent.
func Sign(keys [][]byte, msgID string, ts time.Time, body []byte) string {
	sigs := make([]string, len(keys))
	for i, key := range keys {
		sigs[i] = signatureVersion + "," + base64.StdEncoding.EncodeToString(mac(key, msgID, ts.Unix(), body))
	}
	return strings.Join(sigs, " ")
}

// SetHeaders sets webhook-id, webhook-timestamp and webhook-signature, and
// svix-id, svix-timestamp and svix-signature to the same values, replacing
// any values h held for them. signature is what Sign returned.
func SetHeaders(h http.Header, msgID string, ts time.Time, signature string) {
	unix := strconv.FormatInt(ts.Unix(), 10)
	h.Set(headerWebhookID, msgID)
	h.Set(headerWebhookTimestamp, unix)
	h.Set(headerWebhookSignature, signature)
	h.Set(headerSvixID, msgID)
	h.Set(headerSvixTimestamp, unix)
	h.Set(headerSvixSignature, signature)
}

// Verify checks that header signs body with one of keys and that its
// timestamp is within tolerance of now (DefaultTolerance if tolerance is not
// positive). It reads the webhook-* headers, or the svix-* ones when the
// webhook-* set is incomplete. Signatures of versions other than v1 are
// ignored. The error is one of ErrMissingHeaders, ErrInvalidTimestamp,
// ErrTooOld, ErrTooNew or ErrNoMatch, possibly wrapped.
func Verify(keys [][]byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id, rawTS, sigs := header.Get(headerWebhookID), header.Get(headerWebhookTimestamp), header.Get(headerWebhookSignature)
	if id == "" || rawTS == "" || sigs == "" {
		id, rawTS, sigs = header.Get(headerSvixID), header.Get(headerSvixTimestamp), header.Get(headerSvixSignature)
	}
	if id == "" || rawTS == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrInvalidTimestamp, rawTS)
	}
	ts := time.Unix(unix, 0)
	switch {
	case now.Sub(ts) > tolerance:
		return fmt.Errorf("%w: %s before now", ErrTooOld, now.Sub(ts).Truncate(time.Second))
	case ts.Sub(now) > tolerance:
		return fmt.Errorf("%w: %s after now", ErrTooNew, ts.Sub(now).Truncate(time.Second))
	}
	expected := make([][]byte, len(keys))
	for i, key := range keys {
		expected[i] = mac(key, id, unix, body)
	}
	for _, versioned := range strings.Fields(sigs) {
		version, encoded, ok := strings.Cut(versioned, ",")
		if !ok || version != signatureVersion {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			continue
		}
		for _, want := range expected {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrNoMatch
}

// mac is HMAC-SHA256(key, "{msgID}.{unix}.{body}").
func mac(key []byte, msgID string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msgID))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
