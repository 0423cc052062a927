package signing

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	svix "github.com/svix/svix-webhooks/go"
)

// The test vector of API.md (and of the Svix and Standard Webhooks docs).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorUnix      = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func mustParse(t *testing.T, s string) []byte {
	t.Helper()
	key, err := ParseSecret(s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return key
}

func mustGenerate(t *testing.T) []byte {
	t.Helper()
	key, err := GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	return key
}

func TestSignVector(t *testing.T) {
	key := mustParse(t, vectorSecret)
	got := Sign([][]byte{key}, vectorMsgID, time.Unix(vectorUnix, 0), []byte(vectorBody))
	if got != vectorSignature {
		t.Errorf("Sign = %q, want %q", got, vectorSignature)
	}
}

func TestSignOneSignaturePerKey(t *testing.T) {
	k1, k2 := mustParse(t, vectorSecret), mustGenerate(t)
	ts := time.Unix(vectorUnix, 999_000_000) // sub-second part is not signed
	got := strings.Split(Sign([][]byte{k1, k2}, vectorMsgID, ts, []byte(vectorBody)), " ")
	want := []string{
		vectorSignature,
		Sign([][]byte{k2}, vectorMsgID, ts, []byte(vectorBody)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signatures (-want +got):\n%s", diff)
	}
}

func TestSetHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("svix-id", "stale")
	SetHeaders(h, vectorMsgID, time.Unix(vectorUnix, 0), vectorSignature)
	want := http.Header{
		"Webhook-Id":        {vectorMsgID},
		"Webhook-Timestamp": {"1614265330"},
		"Webhook-Signature": {vectorSignature},
		"Svix-Id":           {vectorMsgID},
		"Svix-Timestamp":    {"1614265330"},
		"Svix-Signature":    {vectorSignature},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// TestSvixSDKVerifies checks what we sign against the official Svix Go SDK,
// as a receiver would run it: with two keys (a rotation in its grace
// period), a receiver holding either secret accepts the message.
func TestSvixSDKVerifies(t *testing.T) {
	oldKey, newKey, otherKey := mustGenerate(t), mustGenerate(t), mustGenerate(t)
	body := []byte(`{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}`)
	ts := time.Now()
	h := http.Header{}
	SetHeaders(h, "msg_2a8SNrh3ZmSp1LbMFLm4ANgs2Ej", ts, Sign([][]byte{newKey, oldKey}, "msg_2a8SNrh3ZmSp1LbMFLm4ANgs2Ej", ts, body))

	onlyWebhook := h.Clone()
	for _, name := range []string{"svix-id", "svix-timestamp", "svix-signature"} {
		onlyWebhook.Del(name)
	}
	onlySvix := h.Clone()
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		onlySvix.Del(name)
	}

	tests := []struct {
		name    string
		key     []byte
		header  http.Header
		body    []byte
		wantErr bool
	}{
		{name: "new key", key: newKey, header: h, body: body},
		{name: "old key", key: oldKey, header: h, body: body},
		{name: "webhook headers only", key: oldKey, header: onlyWebhook, body: body},
		{name: "svix headers only", key: newKey, header: onlySvix, body: body},
		{name: "unrelated key", key: otherKey, header: h, body: body, wantErr: true},
		{name: "tampered body", key: newKey, header: h, body: append(body[:len(body):len(body)], ' '), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wh, err := svix.NewWebhook(FormatSecret(tt.key))
			if err != nil {
				t.Fatalf("svix.NewWebhook: %v", err)
			}
			err = wh.Verify(tt.body, tt.header)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Errorf("svix Verify error = %v, want error: %t", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyAcceptsSvixSDKSignature is the other direction: what the Svix
// SDK signs, our Verify accepts.
func TestVerifyAcceptsSvixSDKSignature(t *testing.T) {
	wh, err := svix.NewWebhook(vectorSecret)
	if err != nil {
		t.Fatalf("svix.NewWebhook: %v", err)
	}
	ts := time.Unix(vectorUnix, 0)
	sig, err := wh.Sign(vectorMsgID, ts, []byte(vectorBody))
	if err != nil {
		t.Fatalf("svix Sign: %v", err)
	}
	h := http.Header{}
	h.Set("svix-id", vectorMsgID)
	h.Set("svix-timestamp", "1614265330")
	h.Set("svix-signature", sig)
	if err := Verify([][]byte{mustParse(t, vectorSecret)}, h, []byte(vectorBody), ts, 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestVerify(t *testing.T) {
	key, rotated, other := mustParse(t, vectorSecret), mustGenerate(t), mustGenerate(t)
	ts := time.Unix(vectorUnix, 0)
	body := []byte(vectorBody)
	signed := func(keys ...[]byte) http.Header {
		h := http.Header{}
		SetHeaders(h, vectorMsgID, ts, Sign(keys, vectorMsgID, ts, body))
		return h
	}
	with := func(h http.Header, name, value string) http.Header {
		h = h.Clone()
		if value == "" {
			h.Del(name)
		} else {
			h.Set(name, value)
		}
		return h
	}
	without := func(h http.Header, names ...string) http.Header {
		h = h.Clone()
		for _, n := range names {
			h.Del(n)
		}
		return h
	}

	tests := []struct {
		name      string
		keys      [][]byte
		header    http.Header
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil = verifies
	}{
		{name: "vector", keys: [][]byte{key}, header: signed(key), body: body, now: ts},
		{name: "verifier holds two keys", keys: [][]byte{other, key}, header: signed(key), body: body, now: ts},
		{name: "signed with two keys", keys: [][]byte{rotated}, header: signed(key, rotated), body: body, now: ts},
		{name: "unknown versions ignored", keys: [][]byte{key}, header: with(signed(key), "webhook-signature", "v2,abc v1,!!! "+vectorSignature), body: body, now: ts},
		{name: "svix set only", keys: [][]byte{key}, header: without(signed(key), "webhook-id", "webhook-timestamp", "webhook-signature"), body: body, now: ts},
		{name: "incomplete webhook set falls back to svix", keys: [][]byte{key}, header: without(signed(key), "webhook-signature"), body: body, now: ts},
		{name: "at tolerance, past", keys: [][]byte{key}, header: signed(key), body: body, now: ts.Add(DefaultTolerance)},
		{name: "at tolerance, future", keys: [][]byte{key}, header: signed(key), body: body, now: ts.Add(-DefaultTolerance)},
		{name: "tampered body", keys: [][]byte{key}, header: signed(key), body: []byte(`{"test": 2432232315}`), now: ts, want: ErrNoMatch},
		{name: "tampered id", keys: [][]byte{key}, header: with(with(signed(key), "webhook-id", "msg_other"), "svix-id", "msg_other"), body: body, now: ts, want: ErrNoMatch},
		{name: "wrong key", keys: [][]byte{other}, header: signed(key), body: body, now: ts, want: ErrNoMatch},
		{name: "no keys", keys: nil, header: signed(key), body: body, now: ts, want: ErrNoMatch},
		{name: "v2 only", keys: [][]byte{key}, header: with(with(signed(key), "webhook-signature", "v2"+vectorSignature[2:]), "svix-signature", ""), body: body, now: ts, want: ErrNoMatch},
		{name: "too old", keys: [][]byte{key}, header: signed(key), body: body, now: ts.Add(DefaultTolerance + time.Second), want: ErrTooOld},
		{name: "too new", keys: [][]byte{key}, header: signed(key), body: body, now: ts.Add(-DefaultTolerance - time.Second), want: ErrTooNew},
		{name: "custom tolerance", keys: [][]byte{key}, header: signed(key), body: body, now: ts.Add(2 * time.Second), tolerance: time.Second, want: ErrTooOld},
		{name: "timestamp not a number", keys: [][]byte{key}, header: with(with(signed(key), "webhook-timestamp", "2021-02-25T15:02:10Z"), "svix-timestamp", ""), body: body, now: ts, want: ErrInvalidTimestamp},
		{name: "no headers", keys: [][]byte{key}, header: http.Header{}, body: body, now: ts, want: ErrMissingHeaders},
		{name: "both sets incomplete", keys: [][]byte{key}, header: without(signed(key), "webhook-id", "svix-signature"), body: body, now: ts, want: ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.keys, tt.header, tt.body, tt.now, tt.tolerance)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}
