package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/hookstep/hookstep/internal/webhook"
)

// authenticate checks the request's bearer token against the admin token
// hash, in constant time.
func (s *Server) authenticate(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return unauthorized("Missing Authorization header")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return unauthorized("Authorization header must be 'Bearer <token>'")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 {
		return unauthorized("Invalid token")
	}
	return nil
}

func unauthorized(detail string) error {
	return &webhook.Error{Kind: webhook.KindUnauthorized, Msg: detail}
}

// tokenHashOf returns the SHA-256 of the request's bearer token, which
// scopes idempotency keys. The request has already been authenticated.
func tokenHashOf(r *http.Request) [32]byte {
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return sha256.Sum256([]byte(strings.TrimSpace(token)))
}
