package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/hookstep/hookstep/internal/webhook"
)

// portalOrigin is the platform's dashboard that may frame the portal in
// this test (HOOKSTEP_PORTAL_FRAME_ANCESTORS; the api function's suite
// sets the same value through HOOKSTEP_E2E_FRAME_ANCESTORS).
const portalOrigin = "https://platform.example"

// TestSvixSDKAppPortal is the platform's side of the customers' portal, as
// a Svix user writes it: the SDK asks for an access link for a customer's
// app (creating the app), the customer's token works on that app only,
// the link opens a session of the portal that shows that app and may be
// framed by the platform's dashboard only, and logout and expire-all end
// it. It runs against local mode and, through HOOKSTEP_E2E_URL, against
// the api function.
func TestSvixSDKAppPortal(t *testing.T) {
	ctx := context.Background()
	var s *server
	basePath := os.Getenv("HOOKSTEP_E2E_BASE_PATH") // the stage the api function's links carry
	if os.Getenv("HOOKSTEP_E2E_URL") == "" {
		s = startServer(t, map[string]string{"HOOKSTEP_PORTAL_FRAME_ANCESTORS": portalOrigin})
	} else {
		if os.Getenv("HOOKSTEP_E2E_FRAME_ANCESTORS") != portalOrigin {
			t.Fatalf("HOOKSTEP_E2E_FRAME_ANCESTORS=%q: the deployment must let %s frame the portal", os.Getenv("HOOKSTEP_E2E_FRAME_ANCESTORS"), portalOrigin)
		}
		s = startServer(t, nil)
	}
	admin := s.Client
	uid := "portal-" + webhook.NewID("")
	other, err := admin.Application.Create(ctx, models.ApplicationIn{Name: "Someone else"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The link: for an app that does not exist yet, created with it.
	access, err := admin.Authentication.AppPortalAccess(ctx, uid, models.AppPortalAccessIn{
		Application: &models.ApplicationIn{Name: "Acme", Uid: ptr(uid)},
		SessionId:   ptr("user-1"),
		Expiry:      ptr(uint64(3600)),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	app, err := admin.Application.Get(ctx, uid)
	if err != nil || app.Name != "Acme" {
		t.Fatalf("the link's app: got %+v, %v", app, err)
	}
	link, err := url.Parse(access.Url)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(s.URL)
	if link.Host != base.Host || link.Path != basePath+"/portal" || link.RawQuery != "" || link.Fragment != "key="+access.Token {
		t.Fatalf("access link %s: want %s%s/portal#key=<token>, the token in the fragment only", access.Url, s.URL, basePath)
	}

	// The customer's token drives the SDK on its app, and on no other.
	customer := newClient(t, s.URL, access.Token)
	rcv := newReceiver(t, nil)
	ep, err := customer.Endpoint.Create(ctx, uid, models.EndpointIn{Url: rcv.URL + "/acme"}, nil)
	if err != nil {
		t.Fatalf("the customer adds an endpoint: %v", err)
	}
	if list, err := customer.Endpoint.List(ctx, app.Id, nil); err != nil || len(list.Data) != 1 || list.Data[0].Id != ep.Id {
		t.Fatalf("the customer lists its endpoints: got %+v, %v", list, err)
	}
	wantStatus(t, "another app", 404, func() error { _, err := customer.Endpoint.List(ctx, other.Id, nil); return err }())
	wantStatus(t, "the app list", 403, func() error { _, err := customer.Application.List(ctx, nil); return err }())
	wantStatus(t, "sending a message", 403, func() error {
		_, err := customer.Message.Create(ctx, uid, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", 1)}, nil)
		return err
	}())

	// The link opens the portal, which the platform's dashboard may frame.
	b := &portalBrowser{t: t, base: s.URL, cookies: map[string]*http.Cookie{}}
	res, _ := b.do("GET", "/portal", nil)
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.Contains(csp, "frame-ancestors "+portalOrigin) {
		t.Fatalf("GET /portal: %d, CSP %q; want 200 and frame-ancestors %s", res.StatusCode, csp, portalOrigin)
	}
	if res, _ := b.do("GET", "/", nil); strings.Contains(res.Header.Get("Content-Security-Policy"), portalOrigin) ||
		!strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("the admin dashboard's CSP %q: it must stay unframeable", res.Header.Get("Content-Security-Policy"))
	}
	res, body := b.do("POST", "/portal/session", map[string]string{"token": access.Token})
	var started struct{ Location string }
	if err := json.Unmarshal(body, &started); err != nil || res.StatusCode != 200 {
		t.Fatalf("POST /portal/session: %d %s", res.StatusCode, body)
	}
	if want := basePath + "/portal/app/" + app.Id; started.Location != want {
		t.Fatalf("the session opens %q, want %q", started.Location, want)
	}
	for _, c := range res.Cookies() {
		if c.Value != "" && (!c.Secure || !c.Partitioned || c.SameSite != http.SameSiteNoneMode) {
			t.Errorf("cookie %s: Secure=%v Partitioned=%v SameSite=%v; a cross-site frame needs all three", c.Name, c.Secure, c.Partitioned, c.SameSite)
		}
	}
	res, body = b.do("GET", strings.TrimPrefix(started.Location, basePath), nil)
	if res.StatusCode != 200 || !bytes.Contains(body, []byte(rcv.URL+"/acme")) {
		t.Fatalf("the portal's page of the app: %d, endpoint URL shown: %v", res.StatusCode, bytes.Contains(body, []byte(rcv.URL)))
	}
	if res, _ := b.do("GET", "/portal/app/"+other.Id, nil); res.StatusCode != 404 {
		t.Errorf("the portal's page of another app: %d, want 404", res.StatusCode)
	}

	// Logout ends the token and the portal's session at once.
	if err := customer.Authentication.Logout(ctx, nil); err != nil {
		t.Fatalf("logout: %v", err)
	}
	wantStatus(t, "a logged-out token", 401, func() error { _, err := customer.Endpoint.List(ctx, app.Id, nil); return err }())
	if _, body := b.do("GET", "/portal/app/"+app.Id, nil); !bytes.Contains(body, []byte("expired")) {
		t.Errorf("the portal after logout does not say the link expired:\n%s", body)
	}

	// Expire-all of one session ends that session's tokens, not others.
	mint := func(session string) *svix.Svix {
		out, err := admin.Authentication.AppPortalAccess(ctx, uid, models.AppPortalAccessIn{SessionId: ptr(session)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return newClient(t, s.URL, out.Token)
	}
	first, second := mint("user-1"), mint("user-2")
	if err := admin.Authentication.ExpireAll(ctx, uid, models.ApplicationTokenExpireIn{SessionIds: []string{"user-1"}}, nil); err != nil {
		t.Fatalf("expire-all: %v", err)
	}
	wantStatus(t, "a token of the expired session", 401, func() error { _, err := first.Endpoint.List(ctx, app.Id, nil); return err }())
	if _, err := second.Endpoint.List(ctx, app.Id, nil); err != nil {
		t.Errorf("a token of another session: %v", err)
	}
}

func wantStatus(t *testing.T, what string, want int, err error) {
	t.Helper()
	var apiErr *svix.Error
	if !errors.As(err, &apiErr) || apiErr.Status() != want {
		t.Errorf("%s: got %v, want HTTP %d", what, err, want)
	}
}

// portalBrowser makes the portal's requests as its page does, keeping its
// cookies by hand: net/http/cookiejar would not send Secure cookies to
// http://127.0.0.1, which browsers treat as a secure context.
type portalBrowser struct {
	t       *testing.T
	base    string
	cookies map[string]*http.Cookie
}

func (b *portalBrowser) do(method, path string, jsonBody any) (*http.Response, []byte) {
	b.t.Helper()
	var body io.Reader
	if jsonBody != nil {
		raw, _ := json.Marshal(jsonBody)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if jsonBody != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	return res, out
}
