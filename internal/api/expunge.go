package api

import (
	"net/http"

	"github.com/hookstep/hookstep/internal/webhook"
)

// errExpunged refuses to resend a message whose payload was expunged,
// with Svix's code for a payload that is gone: there is nothing left to
// send (Svix: "The message can't be replayed or resent once its payload
// has been deleted or expired").
func errExpunged() error {
	return webhook.BadRequest("missing_payload", "Unable to resend message: its payload was expunged")
}

// expungeContent answers DELETE .../msg/{msg_id}/content (Svix's
// ExpungeContent): the message's payload is deleted for good (204). The
// message, its deliveries and its attempts stay, and every view of the
// payload shows {"expired":true}. Deliveries still pending are stopped
// (canceled) at their next attempt; resends are refused.
func (s *Server) expungeContent(w http.ResponseWriter, r *http.Request) error {
	app, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	if err := s.store.ExpungeContent(r.Context(), app.ID, msg.ID); err != nil {
		if webhook.IsNotFound(err) {
			return errNotFound("Message") // expired meanwhile
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// expungeAttemptContent answers DELETE
// .../msg/{msg_id}/attempt/{attempt_id}/content (Svix's
// MessageAttempt.ExpungeContent): the attempt's response body is replaced
// with "EXPUNGED" for good (204), for an endpoint that answered with
// something it should not have.
func (s *Server) expungeAttemptContent(w http.ResponseWriter, r *http.Request) error {
	app, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	id := r.PathValue("attempt_id")
	if !isID(webhook.PrefixAttempt)(id) {
		return errNotFound("Message attempt")
	}
	if err := s.store.ExpungeAttemptContent(r.Context(), app.ID, msg.ID, id); err != nil {
		if webhook.IsNotFound(err) {
			return errNotFound("Message attempt")
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
