// Package authtoken makes and checks API tokens. Only a token's SHA-256 is
// ever stored; the token itself is shown once, when it is generated.
package authtoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Prefix starts every generated admin token, so a leaked one is
// recognisable.
const Prefix = "hsk_"

// AppPrefix starts every app token (the webhooks portal's, app-scoped and
// short-lived), so that it is told from an admin token at a glance, by
// secret scanners, and by the API before any store lookup.
const AppPrefix = "hsa_"

// Generate returns a new random admin token (32 bytes of entropy).
func Generate() (string, error) { return generate(Prefix) }

// GenerateApp returns a new random app token (32 bytes of entropy).
func GenerateApp() (string, error) { return generate(AppPrefix) }

func generate(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("authtoken: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the SHA-256 of a token.
func Hash(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// Matches reports, in constant time, whether token hashes to hash.
func Matches(hash [32]byte, token string) bool {
	h := Hash(token)
	return subtle.ConstantTimeCompare(h[:], hash[:]) == 1
}

// EncodeHash formats a hash for storage as hex.
func EncodeHash(h [32]byte) string { return hex.EncodeToString(h[:]) }

// DecodeHash parses a hash stored by EncodeHash.
func DecodeHash(s string) ([32]byte, error) {
	var h [32]byte
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("authtoken: not a hex SHA-256")
	}
	copy(h[:], b)
	return h, nil
}
