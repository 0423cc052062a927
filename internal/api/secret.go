package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Secret rotation limits, as in Svix.
const (
	maxOldKeys     = 10               // previous keys still in their grace period
	maxGracePeriod = 7 * 24 * 60 * 60 // seconds
	defaultGrace   = 24 * 60 * 60     // seconds
)

// secretOut is EndpointSecretOut: the current signing key.
type secretOut struct {
	Key string `json:"key"`
}

// getEndpointSecret returns the endpoint's current signing key.
func (s *Server) getEndpointSecret(w http.ResponseWriter, r *http.Request) error {
	_, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	if len(ep.Keys) == 0 {
		return fmt.Errorf("endpoint %s has no signing key", ep.ID)
	}
	s.writeJSON(w, r, http.StatusOK, secretOut{Key: signing.FormatSecret(ep.Keys[0].Key)})
	return nil
}

// rotateEndpointSecret makes a new current key. The old current key keeps
// signing for the grace period; keys whose grace period has ended are
// dropped.
func (s *Server) rotateEndpointSecret(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeOptionalObject(w, r, &p)
	if err != nil {
		return err
	}
	keyIn := field[string](f, "key")
	var key []byte
	if keyIn.Value() {
		if key, err = signing.ParseSecret(keyIn.V); err != nil {
			p.Add(loc("body", "key"), "must be whsec_ followed by the base64 of %d to %d bytes",
				signing.MinSecretBytes, signing.MaxSecretBytes)
		}
	}
	grace := defaultGrace
	if g := field[int](f, "gracePeriodSeconds"); g.Value() {
		if g.V < 0 || g.V > maxGracePeriod {
			p.Add(loc("body", "gracePeriodSeconds"), "must be from 0 to %d", maxGracePeriod)
		}
		grace = g.V
	}
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	_, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	if key == nil {
		if key, err = signing.GenerateSecret(); err != nil {
			return err
		}
	}
	_, err = s.changeEndpoint(ctx, ep, func(ep *webhook.Endpoint) (bool, error) {
		now := s.now()
		var old []webhook.SigningKey
		for i, k := range ep.Keys {
			if i == 0 {
				k.ExpiresAt = now.Add(time.Duration(grace) * time.Second)
			}
			if k.ExpiresAt.IsZero() || k.ExpiresAt.After(now) {
				old = append(old, k)
			}
		}
		if len(old) > maxOldKeys {
			return false, webhook.BadRequest("limit_reached",
				"the endpoint already has %d previous secrets in their grace period; wait for one to expire or rotate with gracePeriodSeconds 0",
				len(old)-1)
		}
		ep.Keys = append([]webhook.SigningKey{{Key: key}}, old...)
		return false, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
