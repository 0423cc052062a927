package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// maxPlayBody is the largest request body Play reads (the whole body, to
// check its signature; play.Store keeps play.KeepBytes of it); larger
// ones are refused with 413. Message payloads are at most 256 KiB.
const maxPlayBody = webhook.MaxPayloadBytes + 1024

// Play tokens are 16 random bytes followed by the first 16 bytes of their
// HMAC under a key derived from the admin token's hash, base64url-encoded:
// unguessable, and recognisable without storing anything, so a Play URL
// made for the Add Endpoint form costs nothing until it is used, and keeps
// working after a restart.
const playTokenBytes = 16

func (h *handler) newPlayToken() string {
	b := make([]byte, playTokenBytes, 2*playTokenBytes)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(append(b, h.playMAC(b)...))
}

func (h *handler) playMAC(random []byte) []byte {
	m := hmac.New(sha256.New, h.tokenHash[:])
	m.Write([]byte("hookstep play\x00"))
	m.Write(random)
	return m.Sum(nil)[:playTokenBytes]
}

// validPlayToken reports whether token is one this dashboard made.
func (h *handler) validPlayToken(token string) bool {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != 2*playTokenBytes {
		return false
	}
	return hmac.Equal(b[playTokenBytes:], h.playMAC(b[:playTokenBytes]))
}

// publicBase returns the URL under which the browser reaches the
// dashboard: scheme, host and base path.
func publicBase(r *http.Request) string {
	scheme := "http"
	if isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + basePath(r.Context())
}

// playURL is the Play URL of token as the browser reaches the dashboard.
func playURL(r *http.Request, token string) string {
	return publicBase(r) + "/play/" + token
}

// playTokenOf returns the token of a URL that is a Play URL of this
// dashboard (whatever host name it uses), or "".
func (h *handler) playTokenOf(r *http.Request, rawURL string) string {
	if h.play == nil {
		return ""
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	token, ok := strings.CutPrefix(u.Path, basePath(r.Context())+"/play/")
	if !ok || !h.validPlayToken(token) {
		return ""
	}
	return token
}

// playReceive is the Play receiver: it keeps the request, with the result
// of checking its signature, and answers 200. It needs no sign-in (the
// token is the credential) and no CSRF token (hookstep's sender posts).
func (h *handler) playReceive(w http.ResponseWriter, r *http.Request) error {
	token := r.PathValue("token")
	if h.play == nil || !h.validPlayToken(token) {
		return notFound()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPlayBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large for Play", http.StatusRequestEntityTooLarge)
			return nil
		}
		return badRequest("The request body could not be read.")
	}
	now := h.clock.Now()
	req := play.Request{
		ReceivedAt: now,
		Method:     r.Method,
		Body:       body,
		Signature:  h.checkPlaySignature(r.Context(), token, r.Header, body, now),
	}
	for name, values := range r.Header {
		for _, v := range values {
			req.Headers = append(req.Headers, play.Header{Name: strings.ToLower(name), Value: v})
		}
	}
	slices.SortStableFunc(req.Headers, func(a, b play.Header) int { return strings.Compare(a.Name, b.Name) })
	if err := h.play.Add(r.Context(), token, req); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = io.WriteString(w, `{"received":true,"note":"Play: a test receiver, for testing only"}`)
	return err
}

// checkPlaySignature verifies a Play request with signing.Verify against
// the current secrets of the endpoint linked to token.
func (h *handler) checkPlaySignature(ctx context.Context, token string, header http.Header, body []byte, now time.Time) play.SignatureCheck {
	link, err := h.play.LinkOf(ctx, token)
	if webhook.IsNotFound(err) {
		return play.SignatureCheck{Detail: "not checked: no endpoint was created with this Play URL in the dashboard"}
	}
	if err != nil {
		h.log.WarnContext(ctx, "play: read link", "err", err)
		return play.SignatureCheck{Detail: "not checked: the endpoint link could not be read"}
	}
	ep, err := h.store.GetEndpoint(ctx, link.AppID, link.EndpointID)
	if webhook.IsNotFound(err) {
		return play.SignatureCheck{Detail: "not checked: the endpoint of this Play URL was deleted"}
	}
	if err != nil {
		h.log.WarnContext(ctx, "play: read endpoint", "endpoint_id", link.EndpointID, "err", err)
		return play.SignatureCheck{Detail: "not checked: the endpoint could not be read"}
	}
	if err := signing.Verify(ep.CurrentKeys(now), header, body, now, 0); err != nil {
		return play.SignatureCheck{Checked: true, Detail: strings.TrimPrefix(err.Error(), "signing: ")}
	}
	return play.SignatureCheck{Checked: true, Verified: true}
}

type playData struct {
	layout
	Token    string
	URL      string
	Endpoint *webhook.Endpoint // nil when no endpoint is linked (or it is gone)
	Requests []play.Request
	Keep     int
}

// playLinkFree reports whether a Play URL may be linked to an endpoint of
// app: one of no endpoint yet, or of the same app. A Play URL linked to
// another app's endpoint stays so, or an endpoint added elsewhere with
// that URL would let its app read what the other app's endpoint received.
func (h *handler) playLinkFree(ctx context.Context, token, appID string) bool {
	link, err := h.play.LinkOf(ctx, token)
	return webhook.IsNotFound(err) || (err == nil && link.AppID == appID)
}

// loadPlay reads what the Play page shows.
func (h *handler) loadPlay(w http.ResponseWriter, r *http.Request) (*playData, error) {
	token := r.PathValue("token")
	if h.play == nil || !h.validPlayToken(token) {
		return nil, notFound()
	}
	ctx := r.Context()
	reqs, err := h.play.Requests(ctx, token)
	if err != nil {
		return nil, err
	}
	data := &playData{layout: h.newPage(w, r, "Play", ""), Token: token, URL: playURL(r, token), Requests: reqs, Keep: play.Keep}
	link, err := h.play.LinkOf(ctx, token)
	if p := portalOf(ctx); p != nil && (webhook.IsNotFound(err) || (err == nil && link.AppID != p.app.ID)) {
		// What a Play URL of another app, or of no endpoint yet (one an
		// API client may have used), received is not this session's to
		// see; its own Play URLs are linked to its endpoints.
		return nil, notFound()
	}
	if err == nil {
		if ep, err := h.store.GetEndpoint(ctx, link.AppID, link.EndpointID); err == nil {
			data.Endpoint = ep
		}
	} else if !webhook.IsNotFound(err) {
		return nil, err
	}
	return data, nil
}

func (h *handler) playPage(w http.ResponseWriter, r *http.Request) error {
	data, err := h.loadPlay(w, r)
	if err != nil {
		return err
	}
	return h.render(w, r, http.StatusOK, "play.html", data)
}

// playRequests renders only the list of requests, which the Play page
// polls to stay live.
func (h *handler) playRequests(w http.ResponseWriter, r *http.Request) error {
	data, err := h.loadPlay(w, r)
	if err != nil {
		return err
	}
	return h.renderFragment(w, "play.html", "play-requests", data)
}
