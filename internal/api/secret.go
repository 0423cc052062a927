package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Secret rotation limits (webhook.RotateKey), in the API's seconds.
const (
	maxGracePeriod = int(webhook.MaxRotationGrace / time.Second)
	defaultGrace   = int(webhook.DefaultRotationGrace / time.Second)
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
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	if key == nil {
		if key, err = signing.GenerateSecret(); err != nil {
			return err
		}
	}
	ep, err = s.changeEndpoint(ctx, app, ep, func(ep *webhook.Endpoint) (bool, error) {
		return false, ep.RotateKey(key, time.Duration(grace)*time.Second, s.now())
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
