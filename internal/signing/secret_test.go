package signing

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestGenerateSecret(t *testing.T) {
	a, err := GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	b, err := GenerateSecret()
	if err != nil {
		t.Fatalf("GenerateSecret: %v", err)
	}
	if len(a) != SecretBytes {
		t.Errorf("len = %d, want %d", len(a), SecretBytes)
	}
	if bytes.Equal(a, b) {
		t.Errorf("two generated secrets are equal: %x", a)
	}
	got, err := ParseSecret(FormatSecret(a))
	if err != nil {
		t.Fatalf("ParseSecret(FormatSecret(generated)): %v", err)
	}
	if !bytes.Equal(got, a) {
		t.Errorf("round trip = %x, want %x", got, a)
	}
}

func TestParseSecret(t *testing.T) {
	enc := func(n int) string {
		return SecretPrefix + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xA5}, n))
	}
	tests := []struct {
		name    string
		in      string
		wantLen int    // when valid
		wantErr string // substring of the error; "" = valid
	}{
		{name: "API.md vector", in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", wantLen: 24},
		{name: "23 bytes", in: enc(23), wantErr: "decodes to 23 bytes"},
		{name: "24 bytes", in: enc(24), wantLen: 24},
		{name: "32 bytes", in: enc(32), wantLen: 32},
		{name: "64 bytes", in: enc(64), wantLen: 64},
		{name: "65 bytes", in: enc(65), wantErr: "decodes to 65 bytes"},
		{name: "empty", in: "", wantErr: "must start with"},
		{name: "prefix only", in: SecretPrefix, wantErr: "decodes to 0 bytes"},
		{name: "missing prefix", in: strings.TrimPrefix(enc(24), SecretPrefix), wantErr: "must start with"},
		{name: "wrong prefix case", in: "WHSEC_" + strings.TrimPrefix(enc(24), SecretPrefix), wantErr: "must start with"},
		{name: "url-safe alphabet", in: SecretPrefix + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xFB}, 24)), wantErr: "not valid standard base64"},
		{name: "missing padding", in: strings.TrimRight(enc(25), "="), wantErr: "not valid standard base64"},
		{name: "bad character", in: SecretPrefix + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS!", wantErr: "not valid standard base64"},
		{name: "non-canonical trailing bits", in: SecretPrefix + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAB==", wantErr: "not valid standard base64"},
		{name: "embedded newline", in: SecretPrefix + "MfKQ9r8GKYqrTwjUPD8I\nLPZIo2LaLaSw", wantErr: "line breaks"},
		{name: "trailing space", in: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ", wantErr: "not valid standard base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParseSecret(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseSecret(%q) = %x, want error containing %q", tt.in, key, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidSecret) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSecret(%q) error = %q, want ErrInvalidSecret containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecret(%q): %v", tt.in, err)
			}
			if len(key) != tt.wantLen {
				t.Errorf("len = %d, want %d", len(key), tt.wantLen)
			}
			if got := FormatSecret(key); got != tt.in {
				t.Errorf("FormatSecret = %q, want %q", got, tt.in)
			}
		})
	}
}

// FuzzParseSecret checks that ParseSecret never panics, that every error is
// an ErrInvalidSecret, and that every accepted secret has a valid size and
// exactly one spelling. Seeds are in testdata/fuzz/FuzzParseSecret.
func FuzzParseSecret(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecret(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("ParseSecret(%q) error %v does not wrap ErrInvalidSecret", s, err)
			}
			return
		}
		if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
			t.Fatalf("ParseSecret(%q) accepted %d bytes", s, len(key))
		}
		if got := FormatSecret(key); got != s {
			t.Fatalf("FormatSecret(ParseSecret(%q)) = %q", s, got)
		}
	})
}
