package signing

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Secret sizes and format, as accepted by Svix.
const (
	SecretPrefix   = "whsec_"
	SecretBytes    = 24 // size of generated secrets
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ErrInvalidSecret is wrapped by every error ParseSecret returns. The
// wrapping error's text says what is wrong and is fit to show to the caller
// who supplied the secret.
var ErrInvalidSecret = errors.New("invalid secret")

// secretEncoding is strict so that every accepted secret has exactly one
// spelling: FormatSecret(ParseSecret(s)) == s.
var secretEncoding = base64.StdEncoding.Strict()

// GenerateSecret returns SecretBytes random bytes for a new endpoint secret.
func GenerateSecret() ([]byte, error) {
	key := make([]byte, SecretBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("signing: generate secret: %w", err)
	}
	return key, nil
}

// ParseSecret decodes a secret written as "whsec_" followed by the standard
// (padded) base64 encoding of MinSecretBytes to MaxSecretBytes bytes.
// Errors wrap ErrInvalidSecret.
func ParseSecret(s string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %q", ErrInvalidSecret, SecretPrefix)
	}
	// The decoder skips CR and LF; a secret containing them is a pasting
	// mistake, not a spelling we want to store.
	if strings.ContainsAny(encoded, "\r\n") {
		return nil, fmt.Errorf("%w: must not contain line breaks", ErrInvalidSecret)
	}
	key, err := secretEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: not valid standard base64 after %q", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, fmt.Errorf("%w: decodes to %d bytes, want %d to %d", ErrInvalidSecret, len(key), MinSecretBytes, MaxSecretBytes)
	}
	return key, nil
}

// FormatSecret writes key in the form ParseSecret reads.
func FormatSecret(key []byte) string {
	return SecretPrefix + secretEncoding.EncodeToString(key)
}
