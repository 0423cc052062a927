package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/hookstep/hookstep/internal/authtoken"
)

// Cookie and form field names.
const (
	sessionCookie = "hookstep_session" // the admin token itself
	csrfCookie    = "hookstep_csrf"    // a random nonce, one per browser session
	csrfField     = "csrf_token"       // HMAC of the nonce, in every form
	maxFormBytes  = 64 << 10
)

// signedIn reports whether the request carries the admin token in its
// session cookie.
func (h *handler) signedIn(r *http.Request) bool {
	c, err := r.Cookie(sessionCookie)
	return err == nil && c.Value != "" && authtoken.Matches(h.tokenHash, c.Value)
}

// toSignIn sends the browser to the sign-in page, to come back to the
// page it asked for (a GET) or to the page a form was posted from.
func (h *handler) toSignIn(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Path
	if r.Method == http.MethodGet && r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	if r.Method != http.MethodGet {
		next = "/"
	}
	http.Redirect(w, r, basePath(r.Context())+"/signin?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// safeNext returns next if it is a path of the dashboard, else "/": a
// sign-in link must not redirect to another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

type signInData struct {
	layout
	Next  string
	Error string
}

func (h *handler) signInPage(w http.ResponseWriter, r *http.Request) error {
	if h.signedIn(r) {
		return redirect(w, r, safeNext(r.URL.Query().Get("next")))
	}
	data := signInData{layout: h.newPage(w, r, "Sign in", ""), Next: safeNext(r.URL.Query().Get("next"))}
	data.SignedIn = false
	return h.render(w, r, http.StatusOK, "signin.html", &data)
}

// signIn checks the token typed in and, if it is the admin token, keeps it
// in an HttpOnly, SameSite=Strict session cookie and starts a new CSRF
// nonce for the session.
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) error {
	if err := h.checkForm(w, r); err != nil {
		return err
	}
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" || !authtoken.Matches(h.tokenHash, token) {
		data := signInData{layout: h.newPage(w, r, "Sign in", ""), Next: next,
			Error: "That is not the admin token. Use the token printed when hookstep first started (or HOOKSTEP_ADMIN_TOKEN)."}
		data.SignedIn = false
		return h.render(w, r, http.StatusUnauthorized, "signin.html", &data)
	}
	h.setCookie(w, r, sessionCookie, token, 0)
	h.setCookie(w, r, csrfCookie, newNonce(), 0)
	return redirect(w, r, next)
}

func (h *handler) signOut(w http.ResponseWriter, r *http.Request) error {
	h.setCookie(w, r, sessionCookie, "", -1)
	h.setCookie(w, r, csrfCookie, "", -1)
	return redirect(w, r, "/signin?done=signedout")
}

// setCookie sets (maxAge 0: for the browser session) or deletes (maxAge
// -1) a dashboard cookie. The admin dashboard's are scoped to the base
// path, SameSite=Strict, and Secure when the browser reached us over
// https, directly or through API Gateway. The portal's are scoped to the
// portal and made to work inside another site's frame, where browsers
// block third-party cookies: Partitioned (CHIPS: kept per top-level site,
// so the platform's page gets its own jar), which needs Secure and
// SameSite=None. Browsers take Secure cookies from http://localhost and
// 127.0.0.1 too (secure contexts), so local mode works over http.
func (h *handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     basePath(r.Context()) + "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   isHTTPS(r),
		SameSite: http.SameSiteStrictMode,
	}
	if portalOf(r.Context()) != nil {
		c.Path = basePath(r.Context()) + portalPrefix
		c.Secure = true
		c.SameSite = http.SameSiteNoneMode
		c.Partitioned = true
	}
	http.SetCookie(w, c)
}

// csrfCookieOf is the name of the CSRF nonce cookie: the portal keeps its
// own, renewed when a link starts a session.
func csrfCookieOf(r *http.Request) string {
	if portalOf(r.Context()) != nil {
		return portalCSRFCookie
	}
	return csrfCookie
}

// isHTTPS reports whether the browser's request came over TLS, to us or
// to the proxy in front (API Gateway sets X-Forwarded-Proto).
func isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

func newNonce() string {
	b := make([]byte, 24)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the form token of the browser's CSRF nonce, setting a
// new nonce cookie when there is none. The token is an HMAC of the nonce
// keyed by the admin token's hash, so a nonce planted by another site
// (cookie tossing) is useless without the matching token, and no state is
// kept on the server (several Lambda instances agree).
func (h *handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	name := csrfCookieOf(r)
	nonce := ""
	if c, err := r.Cookie(name); err == nil && c.Value != "" {
		nonce = c.Value
	} else {
		nonce = newNonce()
		h.setCookie(w, r, name, nonce, 0)
		// The page being rendered may set it again; later cookies win.
		r.AddCookie(&http.Cookie{Name: name, Value: nonce})
	}
	return h.csrfFor(r, nonce)
}

// csrfFor is the form token of a nonce. A portal session's is also bound
// to its app token (by hash), so a form of one session does not work in
// another.
func (h *handler) csrfFor(r *http.Request, nonce string) string {
	m := hmac.New(sha256.New, h.tokenHash[:])
	if p := portalOf(r.Context()); p != nil {
		session := ""
		if p.token != nil {
			session = p.token.Hash
		}
		m.Write([]byte("hookstep portal csrf\x00" + session + "\x00" + nonce))
	} else {
		m.Write([]byte("hookstep dashboard csrf\x00" + nonce))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkForm parses a form POST (at most maxFormBytes) and checks its CSRF
// token against the nonce cookie: 403 when either is missing or they do
// not match.
func (h *handler) checkForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return &userError{status: http.StatusBadRequest, msg: "The form could not be read."}
	}
	c, err := r.Cookie(csrfCookieOf(r))
	got := r.PostFormValue(csrfField)
	if err != nil || c.Value == "" || got == "" || !hmac.Equal([]byte(got), []byte(h.csrfFor(r, c.Value))) {
		return &userError{status: http.StatusForbidden,
			msg: "This form has expired or did not come from this dashboard. Go back, reload the page and try again."}
	}
	return nil
}
