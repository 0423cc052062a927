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
	"sync"
	"time"

	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Play limits.
const (
	// PlayKeep is how many requests a Play URL keeps, newest first.
	PlayKeep = 50
	// PlayTTL is how long a Play URL's requests and endpoint link are
	// kept after its last request (or the endpoint's creation).
	PlayTTL = 7 * 24 * time.Hour
	// PlayKeepBytes is how much of each request body is kept (the whole
	// body is read to check its signature).
	PlayKeepBytes = 64 << 10
	// maxPlayBody is the largest request body Play reads; larger ones are
	// refused with 413. Message payloads are at most 256 KiB.
	maxPlayBody = webhook.MaxPayloadBytes + 1024
	// maxPlayTokens bounds the in-memory store (with PlayKeep and
	// PlayKeepBytes, to about 300 MiB at worst): beyond it the Play URL
	// used least recently is forgotten.
	maxPlayTokens = 100
)

// PlayRequest is one request a Play URL received.
type PlayRequest struct {
	ReceivedAt time.Time
	Method     string
	Headers    []PlayHeader // sorted by name
	Body       []byte       // at most PlayKeepBytes
	Truncated  bool         // the body was longer and is cut
	// Signature is the result of checking the request's signature
	// headers against the linked endpoint's secrets when it arrived.
	Signature SignatureCheck
}

// PlayHeader is one request header.
type PlayHeader struct {
	Name, Value string
}

// SignatureCheck says whether a Play request was signed by hookstep for
// the endpoint the Play URL belongs to.
type SignatureCheck struct {
	Checked  bool   // false when no endpoint is linked to the Play URL
	Verified bool   // the signature matches one of the endpoint's current secrets
	Detail   string // why it was not checked or did not verify
}

// PlayLink names the endpoint a Play URL was created for.
type PlayLink struct {
	AppID      string
	EndpointID string
}

// PlayStore keeps what Play URLs received. Local mode uses MemoryPlay; on
// AWS, where each Lambda instance has its own memory, an implementation
// backed by the table is needed (see doc.go). Tokens are checked before
// any method is called.
type PlayStore interface {
	// Link records that token's Play URL is the URL of an endpoint, whose
	// secrets then check the signatures of its requests.
	Link(ctx context.Context, token string, link PlayLink) error
	// LinkOf returns the endpoint linked to token; NotFound if none.
	LinkOf(ctx context.Context, token string) (PlayLink, error)
	// Add keeps req as token's newest request, dropping the oldest beyond
	// PlayKeep.
	Add(ctx context.Context, token string, req PlayRequest) error
	// Requests returns token's kept requests, newest first; none for a
	// token that never received one or whose requests expired.
	Requests(ctx context.Context, token string) ([]PlayRequest, error)
}

// MemoryPlay is a PlayStore in memory, for local mode: what Play received
// is lost when the process stops (the Play URLs keep working).
type MemoryPlay struct {
	clock webhook.Clock
	mu    sync.Mutex
	bins  map[string]*playBin
}

type playBin struct {
	link      PlayLink
	linked    bool
	requests  []PlayRequest // newest first
	expiresAt time.Time
}

var _ PlayStore = (*MemoryPlay)(nil)

// NewMemoryPlay returns an empty MemoryPlay that expires entries by clock.
func NewMemoryPlay(clock webhook.Clock) *MemoryPlay {
	return &MemoryPlay{clock: clock, bins: map[string]*playBin{}}
}

// bin returns token's live bin, creating it if create; it renews the
// bin's expiry and forgets expired bins. The caller holds mu.
func (m *MemoryPlay) bin(token string, create bool) *playBin {
	now := m.clock.Now()
	b, ok := m.bins[token]
	if ok && !now.Before(b.expiresAt) {
		delete(m.bins, token)
		ok = false
	}
	if !ok {
		if !create {
			return nil
		}
		m.evict(now)
		b = &playBin{}
		m.bins[token] = b
	}
	if create {
		b.expiresAt = now.Add(PlayTTL)
	}
	return b
}

// evict makes room for one more bin: it drops expired bins and, if the
// store is still full, the one closest to expiry (the least recently used).
func (m *MemoryPlay) evict(now time.Time) {
	if len(m.bins) < maxPlayTokens {
		return
	}
	oldest := ""
	for t, b := range m.bins {
		if !now.Before(b.expiresAt) {
			delete(m.bins, t)
			continue
		}
		if oldest == "" || b.expiresAt.Before(m.bins[oldest].expiresAt) {
			oldest = t
		}
	}
	if len(m.bins) >= maxPlayTokens && oldest != "" {
		delete(m.bins, oldest)
	}
}

// Link implements PlayStore.
func (m *MemoryPlay) Link(_ context.Context, token string, link PlayLink) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.bin(token, true)
	b.link, b.linked = link, true
	return nil
}

// LinkOf implements PlayStore.
func (m *MemoryPlay) LinkOf(_ context.Context, token string) (PlayLink, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.bin(token, false); b != nil && b.linked {
		return b.link, nil
	}
	return PlayLink{}, webhook.NotFound("play: no endpoint linked")
}

// Add implements PlayStore.
func (m *MemoryPlay) Add(_ context.Context, token string, req PlayRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.bin(token, true)
	b.requests = slices.Insert(b.requests, 0, req)
	if len(b.requests) > PlayKeep {
		b.requests = slices.Clip(b.requests[:PlayKeep])
	}
	return nil
}

// Requests implements PlayStore.
func (m *MemoryPlay) Requests(_ context.Context, token string) ([]PlayRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.bin(token, false); b != nil {
		return slices.Clone(b.requests), nil
	}
	return nil, nil
}

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
	req := PlayRequest{
		ReceivedAt: now,
		Method:     r.Method,
		Body:       body,
		Signature:  h.checkPlaySignature(r.Context(), token, r.Header, body, now),
	}
	if len(body) > PlayKeepBytes {
		req.Body, req.Truncated = slices.Clone(body[:PlayKeepBytes]), true
	}
	for name, values := range r.Header {
		for _, v := range values {
			req.Headers = append(req.Headers, PlayHeader{Name: strings.ToLower(name), Value: v})
		}
	}
	slices.SortStableFunc(req.Headers, func(a, b PlayHeader) int { return strings.Compare(a.Name, b.Name) })
	if err := h.play.Add(r.Context(), token, req); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = io.WriteString(w, `{"received":true,"note":"hookstep Play, for testing only"}`)
	return err
}

// checkPlaySignature verifies a Play request with signing.Verify against
// the current secrets of the endpoint linked to token.
func (h *handler) checkPlaySignature(ctx context.Context, token string, header http.Header, body []byte, now time.Time) SignatureCheck {
	link, err := h.play.LinkOf(ctx, token)
	if webhook.IsNotFound(err) {
		return SignatureCheck{Detail: "not checked: no endpoint was created with this Play URL in the dashboard"}
	}
	if err != nil {
		h.log.WarnContext(ctx, "play: read link", "err", err)
		return SignatureCheck{Detail: "not checked: the endpoint link could not be read"}
	}
	ep, err := h.store.GetEndpoint(ctx, link.AppID, link.EndpointID)
	if webhook.IsNotFound(err) {
		return SignatureCheck{Detail: "not checked: the endpoint of this Play URL was deleted"}
	}
	if err != nil {
		h.log.WarnContext(ctx, "play: read endpoint", "endpoint_id", link.EndpointID, "err", err)
		return SignatureCheck{Detail: "not checked: the endpoint could not be read"}
	}
	if err := signing.Verify(ep.CurrentKeys(now), header, body, now, 0); err != nil {
		return SignatureCheck{Checked: true, Detail: strings.TrimPrefix(err.Error(), "signing: ")}
	}
	return SignatureCheck{Checked: true, Verified: true}
}

type playData struct {
	layout
	Token    string
	URL      string
	Endpoint *webhook.Endpoint // nil when no endpoint is linked (or it is gone)
	Requests []PlayRequest
	Keep     int
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
	data := &playData{layout: h.newPage(w, r, "Play", ""), Token: token, URL: playURL(r, token), Requests: reqs, Keep: PlayKeep}
	if link, err := h.play.LinkOf(ctx, token); err == nil {
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
