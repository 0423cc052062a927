package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/events"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/webhook"
)

// withPortal turns the portal on, over the harness's store, framed by
// the given origins.
func withPortal(name string, ancestors ...string) harnessOption {
	return func(c *Config) {
		c.AppTokens = c.Store.(webhook.AppTokenStore)
		c.PortalFrameAncestors = ancestors
		c.PortalName = name
	}
}

// appToken stores an app token of app, as the access API mints them, and
// returns it.
func (h *harness) appToken(app *webhook.App, readOnly bool, caps ...webhook.Capability) string {
	h.t.Helper()
	token, err := authtoken.Generate()
	if err != nil {
		h.t.Fatal(err)
	}
	tok := &webhook.AppToken{Hash: authtoken.EncodeHash(authtoken.Hash(token)), AppID: app.ID,
		Capabilities: caps, ReadOnly: readOnly, ExpiresAt: h.clock.Now().Add(time.Hour)}
	if err := h.store.CreateAppToken(context.Background(), tok); err != nil {
		h.t.Fatal(err)
	}
	return token
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// adminHandler is a handler with the harness's admin token, to make Play
// tokens the harness's dashboard recognises.
func (h *harness) adminHandler() *handler {
	return &handler{tokenHash: authtoken.Hash(testToken)}
}

// customer is a browser of the portal: its own cookies, no redirects.
type customer struct {
	h      *harness
	client *http.Client
	csrf   string
}

func (h *harness) customer() *customer {
	h.t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &customer{h: h, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *customer) get(path string) (*http.Response, string) {
	c.h.t.Helper()
	resp, err := c.client.Get(c.h.srv.URL + c.h.prefix + path)
	if err != nil {
		c.h.t.Fatal(err)
	}
	return resp, readBody(c.h.t, resp)
}

// post submits a form with the page's CSRF token (unless form has one).
func (c *customer) post(path string, form url.Values) (*http.Response, string) {
	c.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form[csrfField]; !ok {
		form.Set(csrfField, c.csrf)
	}
	resp, err := c.client.PostForm(c.h.srv.URL+c.h.prefix+path, form)
	if err != nil {
		c.h.t.Fatal(err)
	}
	return resp, readBody(c.h.t, resp)
}

// startSession does what the landing page's script does: it posts the
// token and returns the answer and the page it names.
func (c *customer) startSession(token string, header http.Header) (*http.Response, string) {
	c.h.t.Helper()
	b, _ := json.Marshal(map[string]string{"token": token})
	req, err := http.NewRequest(http.MethodPost, c.h.srv.URL+c.h.prefix+"/portal/session", bytes.NewReader(b))
	if err != nil {
		c.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	body := readBody(c.h.t, resp)
	var out struct{ Location string }
	json.Unmarshal([]byte(body), &out)
	return resp, out.Location
}

// open signs the customer in with a link's token and returns the app
// page, keeping its CSRF token.
func (c *customer) open(token string) string {
	c.h.t.Helper()
	resp, loc := c.startSession(token, nil)
	if resp.StatusCode != http.StatusOK {
		c.h.t.Fatalf("POST /portal/session: status %d, want 200", resp.StatusCode)
	}
	resp, body := c.get(strings.TrimPrefix(loc, c.h.prefix))
	wantStatus(c.h.t, resp, body, http.StatusOK)
	if m := csrfRe.FindStringSubmatch(body); m != nil {
		c.csrf = m[1]
	} else {
		// A token without the capabilities of any form sees none; its
		// forged posts still carry a valid CSRF token, so that they are
		// refused for their capability.
		c.csrf = c.forgeCSRF(token)
	}
	return body
}

// forgeCSRF computes the session's CSRF token from its nonce cookie, as
// the dashboard does.
func (c *customer) forgeCSRF(token string) string {
	c.h.t.Helper()
	u, err := url.Parse(c.h.srv.URL + c.h.prefix + "/portal/")
	if err != nil {
		c.h.t.Fatal(err)
	}
	nonce := ""
	for _, ck := range c.client.Jar.Cookies(u) {
		if ck.Name == portalCSRFCookie {
			nonce = ck.Value
		}
	}
	if nonce == "" {
		c.h.t.Fatal("no portal CSRF cookie")
	}
	p := &portalRequest{token: &webhook.AppToken{Hash: authtoken.EncodeHash(authtoken.Hash(token))}}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), portalKey{}, p))
	return c.h.adminHandler().csrfFor(r, nonce)
}

// snapshot is what a refused request must leave as it was: the app's
// endpoints, its messages, and the calls to the delivery engine.
type snapshot struct {
	Endpoints []webhook.Endpoint
	Messages  []string
	Resent    []string
	Recovered int
}

func (h *harness) snapshot(app *webhook.App) snapshot {
	h.t.Helper()
	ctx := context.Background()
	eps, err := h.store.ListEndpoints(ctx, app.ID, webhook.ListOptions{Limit: webhook.MaxLimit})
	if err != nil {
		h.t.Fatal(err)
	}
	msgs, err := h.store.ListMessages(ctx, webhook.MessageFilter{ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit}, AppID: app.ID})
	if err != nil {
		h.t.Fatal(err)
	}
	s := snapshot{Endpoints: eps.Items}
	for _, m := range msgs.Items {
		s.Messages = append(s.Messages, m.ID)
	}
	h.deliveries.mu.Lock()
	defer h.deliveries.mu.Unlock()
	s.Resent = slices.Clone(h.deliveries.resent)
	s.Recovered = len(h.deliveries.recovered)
	return s
}

var linkRe = regexp.MustCompile(`(?:href|action|src|data-poll|data-session|data-home)="([^"]*)"`)

// wantOnlyPortalLinks fails if a page links anywhere outside /portal.
func wantOnlyPortalLinks(t *testing.T, path, body string) {
	t.Helper()
	for _, m := range linkRe.FindAllStringSubmatch(body, -1) {
		if l := m[1]; !strings.HasPrefix(l, "/portal/") && !strings.HasPrefix(l, "#") {
			t.Errorf("%s links to %q, outside /portal", path, l)
		}
	}
}

func TestPortalSignsInFromTheLinkFragment(t *testing.T) {
	var logs bytes.Buffer
	h := newHarness(t, withPortal(""), func(c *Config) { c.Logger = slogTo(&logs) })
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hooks")
	token := h.appToken(app, false, webhook.Capabilities...)
	c := h.customer()

	resp, body := c.get("/portal?primaryColor=%23ff0000")
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{`id="portal-landing"`, `data-session="/portal/session"`, "<title>Opening · Webhooks</title>"} {
		if !strings.Contains(body, want) {
			t.Errorf("landing page lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "hookstep") {
		t.Errorf("the landing page names hookstep to the customer:\n%s", body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("landing Cache-Control = %q, want no-store", got)
	}

	resp, loc := c.startSession(token, http.Header{"Sec-Fetch-Site": {"same-origin"}})
	if resp.StatusCode != http.StatusOK || loc != "/portal/app/"+app.ID {
		t.Fatalf("POST /portal/session: %d, location %q; want 200, /portal/app/%s", resp.StatusCode, loc, app.ID)
	}
	resp, body = c.get(loc)
	wantStatus(t, resp, body, http.StatusOK)
	for _, want := range []string{ep.URL, "Add Endpoint", "<title>Acme · Webhooks</title>", `href="/portal/theme.css?primaryColor=%23ff0000"`} {
		if !strings.Contains(body, want) {
			t.Errorf("app page lacks %q:\n%s", want, body)
		}
	}
	for _, unwanted := range []string{"Sign out", ">Apps<", "hookstep"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("portal page shows %q", unwanted)
		}
	}
	// /portal/ is the session's app, by id or by the uid of the app.
	resp, body = c.get("/portal/")
	wantRedirect(t, resp, body, "/portal/app/"+app.ID)

	// Every page of the session links only inside /portal.
	msg := h.deliver(app, ep, "v1.end_user.created", webhook.StatusFail)
	for _, path := range []string{
		"/portal/app/" + app.ID, "/portal/app/" + app.ID + "/endpoint/new",
		"/portal/app/" + app.ID + "/endpoint/" + ep.ID, "/portal/app/" + app.ID + "/endpoint/" + ep.ID + "/recover",
		"/portal/app/" + app.ID + "/endpoint/" + ep.ID + "/delete", "/portal/app/" + app.ID + "/msg",
		"/portal/app/" + app.ID + "/msg/" + msg.ID, "/portal/event-types", "/portal/no/such/page",
	} {
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusOK && path != "/portal/no/such/page" {
			t.Errorf("GET %s: status %d, want 200", path, resp.StatusCode)
		}
		wantOnlyPortalLinks(t, path, body)
		if strings.Contains(body, "hookstep") {
			t.Errorf("%s names hookstep to the customer", path)
		}
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the token is in the log:\n%s", logs.String())
	}
}

func TestPortalCookies(t *testing.T) {
	h := newHarness(t, withPortal(""))
	app := h.createApp("Acme")
	token := h.appToken(app, false)
	c := h.customer()
	landing, _ := c.get("/portal?primaryColor=%23ff0000&darkMode=true")
	session, _ := c.startSession(token, nil)
	var got []*http.Cookie
	got = append(got, landing.Cookies()...)
	got = append(got, session.Cookies()...)
	names := map[string]bool{}
	for _, ck := range got {
		names[ck.Name] = true
		if !ck.Partitioned || !ck.Secure || ck.SameSite != http.SameSiteNoneMode || !ck.HttpOnly || ck.Path != "/portal" {
			t.Errorf("cookie %s: Partitioned %v, Secure %v, SameSite %v, HttpOnly %v, Path %q; want Partitioned, Secure, SameSite=None, HttpOnly, Path /portal",
				ck.Name, ck.Partitioned, ck.Secure, ck.SameSite, ck.HttpOnly, ck.Path)
		}
	}
	for _, want := range []string{portalSessionCookie, portalCSRFCookie, themeCookie} {
		if !names[want] {
			t.Errorf("no %s cookie set (got %v)", want, names)
		}
	}
	// The cookie holds the token; the token is never in a URL.
	if loc := session.Header.Get("Location"); loc != "" {
		t.Errorf("the session answer redirects to %q", loc)
	}
}

func TestPortalSessionRefusesOtherSites(t *testing.T) {
	h := newHarness(t, withPortal(""))
	app := h.createApp("Acme")
	token := h.appToken(app, false)
	c := h.customer()
	resp, _ := c.startSession(token, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	if resp.StatusCode != http.StatusForbidden || slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == portalSessionCookie }) {
		t.Errorf("cross-site POST /portal/session: %d with cookies %v, want 403 and no session", resp.StatusCode, resp.Cookies())
	}
	// A form of another site cannot send JSON.
	resp, body := c.post("/portal/session", url.Values{"token": {token}})
	wantStatus(t, resp, body, http.StatusUnsupportedMediaType)
}

func TestPortalExpiredLink(t *testing.T) {
	const want = "This link has expired — open Acme Webhooks again from your dashboard."
	wantExpired := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		wantStatus(t, resp, body, http.StatusUnauthorized)
		if !strings.Contains(body, want) || !strings.Contains(body, "<title>This link has expired · Acme Webhooks</title>") {
			t.Errorf("the page does not say the link expired:\n%s", body)
		}
	}
	newCase := func(t *testing.T) (*harness, *webhook.App, *webhook.Endpoint, string, *customer) {
		h := newHarness(t, withPortal("Acme Webhooks"))
		app := h.createApp("Acme")
		ep := h.createEndpoint(app, "https://acme.example/hooks")
		token := h.appToken(app, false)
		c := h.customer()
		c.open(token)
		return h, app, ep, token, c
	}

	t.Run("unknown token at landing", func(t *testing.T) {
		h := newHarness(t, withPortal("Acme Webhooks"))
		c := h.customer()
		resp, loc := c.startSession("hsk_not-a-token", nil)
		if resp.StatusCode != http.StatusUnauthorized || loc != "/portal/expired" {
			t.Fatalf("POST /portal/session: %d, location %q; want 401, /portal/expired", resp.StatusCode, loc)
		}
		resp, body := c.get(loc)
		wantExpired(t, resp, body)
	})
	t.Run("no session", func(t *testing.T) {
		h := newHarness(t, withPortal("Acme Webhooks"))
		app := h.createApp("Acme")
		resp, body := h.customer().get("/portal/app/" + app.ID)
		wantExpired(t, resp, body)
	})
	for name, kill := range map[string]func(h *harness, app *webhook.App, token string){
		"expired mid-session": func(h *harness, _ *webhook.App, _ string) {
			h.clock.Advance(2 * time.Hour)
		},
		"logged out mid-session": func(h *harness, _ *webhook.App, token string) {
			if err := h.store.DeleteAppToken(context.Background(), authtoken.EncodeHash(authtoken.Hash(token))); err != nil {
				t.Fatal(err)
			}
		},
		"expire-all mid-session": func(h *harness, app *webhook.App, _ string) {
			if err := h.store.ExpireAppTokens(context.Background(), app.ID, nil, h.clock.Now()); err != nil {
				t.Fatal(err)
			}
		},
		"app deleted mid-session": func(h *harness, app *webhook.App, _ string) {
			if err := h.store.DeleteApp(context.Background(), app.ID); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			h, app, ep, token, c := newCase(t)
			kill(h, app, token)
			resp, body := c.get("/portal/app/" + app.ID + "/endpoint/" + ep.ID)
			wantExpired(t, resp, body)
			if name == "app deleted mid-session" {
				return
			}
			before := h.snapshot(app)
			resp, body = c.post("/portal/app/"+app.ID+"/endpoint/"+ep.ID+"/disable", nil)
			wantExpired(t, resp, body)
			if after := h.snapshot(app); !reflect.DeepEqual(before, after) {
				t.Errorf("a dead session changed the store:\n before %+v\n after  %+v", before, after)
			}
			// Its link is dead too.
			resp, loc := h.customer().startSession(token, nil)
			if resp.StatusCode != http.StatusUnauthorized || loc != "/portal/expired" {
				t.Errorf("POST /portal/session: %d, %q; want 401, /portal/expired", resp.StatusCode, loc)
			}
		})
	}
}

// TestPortalCapabilities posts every form of the portal with tokens of
// each capability: a token that lacks the route's capability gets a 403
// and the store is left as it was; one that has it gets the action done.
func TestPortalCapabilities(t *testing.T) {
	type route struct {
		name string
		cap  webhook.Capability
		path func(app *webhook.App, ep *webhook.Endpoint, msg *webhook.Message) string
		form url.Values
	}
	epPath := func(suffix string) func(*webhook.App, *webhook.Endpoint, *webhook.Message) string {
		return func(app *webhook.App, ep *webhook.Endpoint, _ *webhook.Message) string {
			return "/portal/app/" + app.ID + "/endpoint/" + ep.ID + suffix
		}
	}
	// Ordered so that each allowed action leaves the next one possible;
	// delete comes last.
	routes := []route{
		{"create endpoint", webhook.CapManageEndpoint, func(app *webhook.App, _ *webhook.Endpoint, _ *webhook.Message) string {
			return "/portal/app/" + app.ID + "/endpoint"
		}, url.Values{"url": {"https://new.example/hooks"}, "event_types": {"v1.end_user.created"}}},
		{"event types", webhook.CapManageEndpoint, epPath("/event-types"), url.Values{"event_types": {"v1.end_user.created"}}},
		{"rotate secret", webhook.CapManageEndpointSecret, epPath("/secret/rotate"), nil},
		{"add header", webhook.CapManageEndpoint, epPath("/headers"), url.Values{"name": {"X-Customer"}, "value": {"1"}}},
		{"remove header", webhook.CapManageEndpoint, epPath("/headers/delete"), url.Values{"name": {"X-Existing"}}},
		{"resend", webhook.CapCreateAttempts, func(app *webhook.App, _ *webhook.Endpoint, msg *webhook.Message) string {
			return "/portal/app/" + app.ID + "/msg/" + msg.ID + "/resend"
		}, nil}, // endpoint_id added below
		{"recover", webhook.CapCreateAttempts, epPath("/recover"), url.Values{"window": {"1h"}}},
		{"send example", webhook.CapCreateAttempts, epPath("/send-example"), url.Values{"event_type": {"v1.end_user.created"}}},
		{"send example from the catalog", webhook.CapCreateAttempts, func(*webhook.App, *webhook.Endpoint, *webhook.Message) string {
			return "/portal/event-types/send-example"
		}, nil}, // endpoint added below
		{"disable", webhook.CapManageEndpoint, epPath("/disable"), nil},
		{"enable", webhook.CapManageEndpoint, epPath("/enable"), nil},
		{"delete", webhook.CapManageEndpoint, epPath("/delete"), nil},
	}
	tokens := []struct {
		name     string
		readOnly bool
		caps     []webhook.Capability
	}{
		{"ViewBase", false, []webhook.Capability{webhook.CapViewBase}},
		{"ViewEndpointSecret", false, []webhook.Capability{webhook.CapViewBase, webhook.CapViewEndpointSecret}},
		{"ManageEndpointSecret", false, []webhook.Capability{webhook.CapViewBase, webhook.CapManageEndpointSecret}},
		{"CreateAttempts", false, []webhook.Capability{webhook.CapViewBase, webhook.CapCreateAttempts}},
		{"ManageEndpoint", false, []webhook.Capability{webhook.CapViewBase, webhook.CapManageEndpoint}},
		{"all", false, webhook.Capabilities},
		{"readOnly with all", true, webhook.Capabilities},
	}
	for _, tt := range tokens {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withPortal(""))
			app := h.createApp("Acme")
			ep := h.createEndpoint(app, "https://acme.example/hooks")
			stored := h.endpoint(app, ep.ID)
			stored.Headers = map[string]string{"X-Existing": "1"}
			if err := h.store.UpdateEndpoint(context.Background(), stored, stored.UpdatedAt); err != nil {
				t.Fatal(err)
			}
			msg := h.deliver(app, ep, "v1.end_user.created", webhook.StatusFail)
			token := h.appToken(app, tt.readOnly, tt.caps...)
			grant := &webhook.AppToken{Capabilities: tt.caps, ReadOnly: tt.readOnly}
			c := h.customer()
			c.open(token)

			for _, rt := range routes {
				form := url.Values{}
				for k, v := range rt.form {
					form[k] = v
				}
				switch rt.name {
				case "resend":
					form.Set("endpoint_id", ep.ID)
				case "send example from the catalog":
					form.Set("event_type", "v1.end_user.created")
					form.Set("endpoint", app.ID+"/"+ep.ID)
				}
				path := rt.path(app, ep, msg)
				before := h.snapshot(app)
				resp, body := c.post(path, form)
				if !grant.Can(rt.cap) {
					wantStatus(t, resp, body, http.StatusForbidden)
					if !strings.Contains(body, "Your access does not allow this") {
						t.Errorf("%s: the 403 page does not explain:\n%s", rt.name, body)
					}
					if after := h.snapshot(app); !reflect.DeepEqual(before, after) {
						t.Errorf("%s without %s changed the store:\n before %+v\n after  %+v", rt.name, rt.cap, before, after)
					}
					continue
				}
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/portal/app/"+app.ID) {
					t.Errorf("%s with %s: status %d to %q, want 303 into /portal/app/%s; body:\n%s",
						rt.name, rt.cap, resp.StatusCode, resp.Header.Get("Location"), app.ID, body)
				}
			}
		})
	}
}

// TestPortalFormsFollowCapabilities checks what each token is shown: the
// forms of its capabilities, none with readOnly, and the secret only with
// ViewEndpointSecret, also when asked for in the URL.
func TestPortalFormsFollowCapabilities(t *testing.T) {
	h := newHarness(t, withPortal(""))
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hooks")
	msg := h.deliver(app, ep, "v1.end_user.created", webhook.StatusFail)
	epPath := "/portal/app/" + app.ID + "/endpoint/" + ep.ID
	pages := []string{"/portal/app/" + app.ID, epPath, "/portal/app/" + app.ID + "/msg",
		"/portal/app/" + app.ID + "/msg/" + msg.ID, "/portal/event-types"}
	shows := map[string]func(pages map[string]string) bool{
		"Add Endpoint":   func(p map[string]string) bool { return strings.Contains(p[pages[0]], `id="add-endpoint"`) },
		"disable":        func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/disable") },
		"headers":        func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/headers") },
		"event types":    func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/event-types") },
		"delete":         func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/delete") },
		"reveal secret":  func(p map[string]string) bool { return strings.Contains(p[epPath], `id="reveal-secret"`) },
		"rotate secret":  func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/secret/rotate") },
		"recover":        func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/recover") },
		"send example":   func(p map[string]string) bool { return strings.Contains(p[epPath], epPath+"/send-example") },
		"resend":         func(p map[string]string) bool { return strings.Contains(p[pages[3]], "/resend") },
		"resend in list": func(p map[string]string) bool { return strings.Contains(p[pages[2]], "/resend") },
		"catalog example": func(p map[string]string) bool {
			return strings.Contains(p["/portal/event-types"], "/portal/event-types/send-example")
		},
	}
	needs := map[string]webhook.Capability{
		"Add Endpoint": webhook.CapManageEndpoint, "disable": webhook.CapManageEndpoint, "headers": webhook.CapManageEndpoint,
		"event types": webhook.CapManageEndpoint, "delete": webhook.CapManageEndpoint,
		"reveal secret": webhook.CapViewEndpointSecret, "rotate secret": webhook.CapManageEndpointSecret,
		"recover": webhook.CapCreateAttempts, "send example": webhook.CapCreateAttempts, "resend": webhook.CapCreateAttempts,
		"resend in list": webhook.CapCreateAttempts, "catalog example": webhook.CapCreateAttempts,
	}
	for _, tt := range []struct {
		name     string
		readOnly bool
		caps     []webhook.Capability
	}{
		{"ViewBase", false, nil},
		{"ViewEndpointSecret", false, []webhook.Capability{webhook.CapViewEndpointSecret}},
		{"ManageEndpointSecret", false, []webhook.Capability{webhook.CapManageEndpointSecret}},
		{"CreateAttempts", false, []webhook.Capability{webhook.CapCreateAttempts}},
		{"all", false, webhook.Capabilities},
		{"readOnly", true, webhook.Capabilities},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := h.customer()
			c.open(h.appToken(app, tt.readOnly, tt.caps...))
			grant := &webhook.AppToken{Capabilities: tt.caps, ReadOnly: tt.readOnly}
			got := map[string]string{}
			for _, p := range pages {
				resp, body := c.get(p)
				wantStatus(t, resp, body, http.StatusOK)
				got[p] = body
				if tt.readOnly && strings.Contains(body, `method="post"`) {
					t.Errorf("read-only %s shows a form:\n%s", p, body)
				}
			}
			for what, shown := range shows {
				if want := grant.Can(needs[what]); shown(got) != want {
					t.Errorf("%s shown: %v, want %v", what, shown(got), want)
				}
			}
			// The secret only with ViewEndpointSecret, whatever the URL asks.
			_, body := c.get(epPath + "?reveal=secret")
			if shown := strings.Contains(body, `id="secret-value"`); shown != grant.Can(webhook.CapViewEndpointSecret) {
				t.Errorf("secret revealed: %v, want %v", shown, grant.Can(webhook.CapViewEndpointSecret))
			}
			// The pages of a capability's forms are refused without it.
			for path, cap := range map[string]webhook.Capability{
				"/portal/app/" + app.ID + "/endpoint/new": webhook.CapManageEndpoint,
				epPath + "/delete":                        webhook.CapManageEndpoint,
				epPath + "/recover":                       webhook.CapCreateAttempts,
			} {
				resp, body := c.get(path)
				if want := map[bool]int{true: http.StatusOK, false: http.StatusForbidden}[grant.Can(cap)]; resp.StatusCode != want {
					t.Errorf("GET %s: status %d, want %d; body:\n%s", path, resp.StatusCode, want, body)
				}
			}
		})
	}
}

// TestPortalSeesOnlyItsApp tampers with every id a portal page or form
// takes: another app's are not found, and nothing of it changes.
func TestPortalSeesOnlyItsApp(t *testing.T) {
	h := newHarness(t, withPortal(""))
	a, b := h.createApp("A"), h.createApp("B")
	epA := h.createEndpoint(a, "https://a.example/hooks")
	epB := h.createEndpoint(b, "https://b.example/hooks")
	msgA := h.createMessage(a, "v1.end_user.created")
	msgB := h.deliver(b, epB, "v1.end_user.created", webhook.StatusFail)
	playToken := h.adminHandler().newPlayToken()
	if err := h.play.Link(context.Background(), playToken, play.Link{AppID: b.ID, EndpointID: epB.ID}); err != nil {
		t.Fatal(err)
	}
	c := h.customer()
	c.open(h.appToken(a, false, webhook.Capabilities...))

	for _, path := range []string{
		"/portal/app/" + b.ID,
		"/portal/app/" + b.ID + "/msg",
		"/portal/app/" + b.ID + "/endpoint/" + epB.ID,
		"/portal/app/" + a.ID + "/endpoint/" + epB.ID,
		"/portal/app/" + b.ID + "/endpoint/new",
		"/portal/app/" + b.ID + "/endpoint/" + epB.ID + "/recover",
		"/portal/app/" + b.ID + "/msg/" + msgB.ID,
		"/portal/app/" + a.ID + "/msg/" + msgB.ID,
		"/portal/play/" + playToken,
		// Admin pages do not exist in the portal.
		"/portal/signin",
		"/portal/app",
	} {
		t.Run("GET "+path, func(t *testing.T) {
			resp, body := c.get(path)
			wantStatus(t, resp, body, http.StatusNotFound)
			if strings.Contains(body, "b.example") {
				t.Errorf("the 404 page shows app B's endpoint:\n%s", body)
			}
		})
	}
	before := h.snapshot(b)
	for _, f := range []struct {
		path string
		form url.Values
	}{
		{"/portal/app/" + b.ID + "/endpoint/" + epB.ID + "/disable", nil},
		{"/portal/app/" + a.ID + "/endpoint/" + epB.ID + "/disable", nil},
		{"/portal/app/" + b.ID + "/endpoint", url.Values{"url": {"https://x.example/"}}},
		{"/portal/app/" + b.ID + "/msg/" + msgB.ID + "/resend", url.Values{"endpoint_id": {epB.ID}}},
		{"/portal/app/" + a.ID + "/msg/" + msgA.ID + "/resend", url.Values{"endpoint_id": {epB.ID}}},
		{"/portal/event-types/send-example", url.Values{"event_type": {"v1.end_user.created"}, "endpoint": {b.ID + "/" + epB.ID}}},
		{"/portal/event-types/send-example", url.Values{"event_type": {"v1.end_user.created"}, "endpoint": {a.ID + "/" + epB.ID}}},
		{"/portal/app", url.Values{"name": {"Mine now"}}},
		{"/portal/signout", nil},
	} {
		t.Run("POST "+f.path+" "+f.form.Encode(), func(t *testing.T) {
			resp, body := c.post(f.path, f.form)
			wantStatus(t, resp, body, http.StatusNotFound)
		})
	}
	if after := h.snapshot(b); !reflect.DeepEqual(before, after) {
		t.Errorf("app A's session changed app B:\n before %+v\n after  %+v", before, after)
	}
	apps, err := h.store.ListApps(context.Background(), webhook.ListOptions{Limit: 10})
	if err != nil || len(apps.Items) != 2 {
		t.Errorf("apps after the session: %d (%v), want 2", len(apps.Items), err)
	}
	// The catalog offers only the session's endpoints for examples.
	_, body := c.get("/portal/event-types")
	if strings.Contains(body, epB.ID) || !strings.Contains(body, epA.ID) {
		t.Errorf("the catalog's choices are not app A's endpoints only:\n%s", body)
	}
}

func TestPortalForms(t *testing.T) {
	h := newHarness(t, withPortal(""))
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hooks")
	h.signIn() // an admin in the same browser does not open the portal
	c := h.customer()
	c.client.Jar = h.client.Jar
	c.open(h.appToken(app, false, webhook.Capabilities...))
	path := "/portal/app/" + app.ID + "/endpoint/" + ep.ID + "/disable"
	for name, token := range map[string]string{"missing": "", "the admin's": h.csrf, "wrong": "bm90LXRoZS10b2tlbg"} {
		t.Run(name, func(t *testing.T) {
			resp, body := c.post(path, url.Values{csrfField: {token}})
			wantStatus(t, resp, body, http.StatusForbidden)
			if h.endpoint(app, ep.ID).Disabled {
				t.Fatal("a form without the portal's CSRF token disabled the endpoint")
			}
		})
	}
	// Another session's token (a new link in the same browser) is not
	// this one's.
	old := c.csrf
	c.open(h.appToken(app, false, webhook.Capabilities...))
	if resp, body := c.post(path, url.Values{csrfField: {old}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the previous session's CSRF token: status %d, want 403; body:\n%s", resp.StatusCode, body)
	}
	// The token of the session's page works.
	_, page := c.get("/portal/app/" + app.ID + "/endpoint/" + ep.ID)
	resp, body := c.post(path, url.Values{csrfField: {csrfToken(t, page)}})
	wantRedirect(t, resp, body, "/portal/app/"+app.ID+"/endpoint/"+ep.ID+"?done=disabled")
}

func TestPortalUnderStage(t *testing.T) {
	h := newHarnessAt(t, "/prod", withPortal(""))
	app := h.createApp("Acme")
	c := h.customer()
	resp, loc := c.startSession(h.appToken(app, false), nil)
	if resp.StatusCode != http.StatusOK || loc != "/prod/portal/app/"+app.ID {
		t.Fatalf("POST /prod/portal/session: %d, %q; want 200, /prod/portal/app/%s", resp.StatusCode, loc, app.ID)
	}
	for _, ck := range resp.Cookies() {
		if ck.Path != "/prod/portal" {
			t.Errorf("cookie %s has Path %q, want /prod/portal", ck.Name, ck.Path)
		}
	}
	resp, body := c.get(strings.TrimPrefix(loc, "/prod"))
	wantStatus(t, resp, body, http.StatusOK)
	for _, m := range linkRe.FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(m[1], "/prod/portal/") && !strings.HasPrefix(m[1], "#") {
			t.Errorf("link %q is not under /prod/portal/", m[1])
		}
	}
}

func TestPortalOff(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/portal", "/portal/expired"} {
		resp, body := h.customer().get(path)
		wantStatus(t, resp, body, http.StatusNotFound)
	}
}

func TestFrameHeaders(t *testing.T) {
	for _, tt := range []struct {
		name      string
		ancestors []string
		path      string
		wantFA    string // the CSP's frame-ancestors
		wantXFO   string
	}{
		{"admin", []string{"https://platform.example"}, "/signin", "'none'", "DENY"},
		{"admin page", []string{"https://platform.example"}, "/", "'none'", "DENY"},
		{"portal", []string{"https://platform.example", "http://localhost:8080"}, "/portal", "https://platform.example http://localhost:8080", ""},
		{"portal page", []string{"https://platform.example"}, "/portal/expired", "https://platform.example", ""},
		{"portal, no ancestors", nil, "/portal", "'none'", "DENY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withPortal("", tt.ancestors...))
			resp, _ := h.customer().get(tt.path)
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "; frame-ancestors "+tt.wantFA+";") {
				t.Errorf("CSP %q, want frame-ancestors %s", csp, tt.wantFA)
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Errorf("CSP %q allows inline code", csp)
			}
			if got := resp.Header.Get("X-Frame-Options"); got != tt.wantXFO {
				t.Errorf("X-Frame-Options %q, want %q", got, tt.wantXFO)
			}
			if strings.HasPrefix(tt.path, "/portal") {
				if got := resp.Header.Get("Referrer-Policy"); got != "no-referrer" {
					t.Errorf("Referrer-Policy %q, want no-referrer", got)
				}
			}
		})
	}
	t.Run("icon origin in img-src", func(t *testing.T) {
		h := newHarness(t, withPortal(""))
		resp, body := h.customer().get("/portal?icon=" + url.QueryEscape("https://cdn.platform.example/logo.png"))
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' https://cdn.platform.example;") {
			t.Errorf("CSP %q does not allow the icon's origin", csp)
		}
		if !strings.Contains(body, `src="https://cdn.platform.example/logo.png"`) {
			t.Errorf("the page does not show the icon:\n%s", body)
		}
	})
}

func TestParseFrameAncestors(t *testing.T) {
	got, err := ParseFrameAncestors(" https://Dashboard.Example.com, http://localhost:3000 https://*.example.com:8443/ ")
	want := []string{"https://dashboard.example.com", "http://localhost:3000", "https://*.example.com:8443"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseFrameAncestors = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"dashboard.example.com", "https://x.example/path", "javascript:alert(1)", "https://x.example?q", "'self'", "https://a b", "ftp://x.example", "https://user@x.example"} {
		if _, err := ParseFrameAncestors(bad); err == nil {
			t.Errorf("ParseFrameAncestors(%q): no error", bad)
		}
	}
	if got, err := ParseFrameAncestors(""); err != nil || len(got) != 0 {
		t.Errorf(`ParseFrameAncestors("") = %q, %v; want none`, got, err)
	}
}

func TestParseTheme(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  theme
	}{
		{"primaryColor=%23FF8800", theme{Color: "#ff8800"}},
		{"primaryColor=ff8800", theme{Color: "#ff8800"}},
		{"primaryColor=%23f80", theme{Color: "#ff8800"}},
		{"primaryColor=red", theme{}},
		{"primaryColor=%23ff8800%3B%7D", theme{}},
		{"darkMode=true", theme{Dark: "true"}},
		{"darkMode=auto", theme{Dark: "auto"}},
		{"darkMode=false", theme{}},
		{"darkMode=%3Bx", theme{}},
		{"fontFamily=Inter%2C+sans-serif", theme{Font: "Inter, sans-serif"}},
		{"fontFamily=Inter%22%3B%7D", theme{}},
		{"icon=https%3A%2F%2Fcdn.example%2Flogo.png", theme{Icon: "https://cdn.example/logo.png"}},
		{"icon=javascript%3Aalert(1)", theme{}},
		{"icon=https%3A%2F%2Fcdn.example%2F%22%3E", theme{}},
		{"icon=data%3Aimage%2Fpng%3Bbase64%2CAAAA", theme{}},
		{"primaryColor=%23000000&darkMode=auto&fontFamily=Roboto", theme{Color: "#000000", Dark: "auto", Font: "Roboto"}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tt.query)
			if got := parseTheme(q); got != tt.want {
				t.Errorf("parseTheme(%s) = %+v, want %+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestThemeStylesheet(t *testing.T) {
	h := newHarness(t, withPortal(""))
	c := h.customer()
	for _, tt := range []struct {
		query   string
		want    []string
		notWant []string
	}{
		{"primaryColor=%23ffdd00", []string{"--accent: #ffdd00; --accent-fg: #000;"}, []string{"color-scheme: dark"}},
		{"primaryColor=%23102030", []string{"--accent: #102030; --accent-fg: #fff;"}, nil},
		{"darkMode=true", []string{"color-scheme: dark", "--bg: #12161d"}, []string{"@media"}},
		{"darkMode=auto", []string{"@media (prefers-color-scheme: dark)", "color-scheme: dark"}, nil},
		{"fontFamily=Inter%2C+Noto+Sans", []string{`font-family: "Inter", "Noto Sans", system-ui`}, nil},
		{"primaryColor=%3C%2Fstyle%3E", nil, []string{"--accent:", "style"[:0] + "</style>"}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := c.get("/portal/theme.css?" + tt.query)
			wantStatus(t, resp, body, http.StatusOK)
			if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("theme.css, which caches, sets cookies %q", got)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
				t.Errorf("Content-Type %q, want text/css", ct)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("theme.css lacks %q:\n%s", w, body)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("theme.css has %q:\n%s", w, body)
				}
			}
		})
	}
	// The link's theme stays for the session's pages; a new link without
	// one starts with the default look.
	app := h.createApp("Acme")
	c.get("/portal?primaryColor=%23ff8800&darkMode=auto")
	body := c.open(h.appToken(app, false))
	if !strings.Contains(body, `href="/portal/theme.css?darkMode=auto&amp;primaryColor=%23ff8800"`) {
		t.Errorf("the app page does not keep the link's theme:\n%s", body)
	}
	c.get("/portal")
	body = c.open(h.appToken(app, false))
	if strings.Contains(body, "theme.css") {
		t.Errorf("a link without a theme keeps the previous one:\n%s", body)
	}
}

// TestPortalAppByUID: a token of an app named by its uid, and the app's
// pages by uid, are the same app's.
func TestPortalAppByUID(t *testing.T) {
	h := newHarness(t, withPortal(""))
	now := h.clock.Now()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), UID: "acme", Name: "Acme", Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	if err := h.store.CreateApp(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	byUID := &webhook.App{ID: "acme"} // what the token names
	c := h.customer()
	resp, loc := c.startSession(h.appToken(byUID, false), nil)
	if resp.StatusCode != http.StatusOK || loc != "/portal/app/"+app.ID {
		t.Fatalf("POST /portal/session: %d, %q; want 200, /portal/app/%s", resp.StatusCode, loc, app.ID)
	}
	resp, body := c.get("/portal/app/acme")
	wantStatus(t, resp, body, http.StatusOK)
}

// TestPortalFeatureFlags: a type gated by a feature flag the token lacks
// is not in the portal's catalog, its Add Endpoint and filter forms, or
// its messages' filter; it cannot be sent as an example; and ticking
// every type the portal shows subscribes to those, not to every type
// (which would include the hidden one). A token with the flag sees it.
func TestPortalFeatureFlags(t *testing.T) {
	h := newHarness(t, withPortal(""))
	ctx := context.Background()
	a := h.createApp("A")
	ep := h.createEndpoint(a, "https://a.example/hooks")
	base, err := h.store.GetEventType(ctx, "v1.end_user.created")
	if err != nil {
		t.Fatal(err)
	}
	gated := *base
	gated.Name, gated.FeatureFlags = "v1.beta.feature", []string{"beta"}
	if err := h.store.CreateEventType(ctx, &gated); err != nil {
		t.Fatal(err)
	}
	token := func(flags ...string) string {
		raw := h.appToken(a, false, webhook.Capabilities...)
		tok, err := h.store.GetAppToken(ctx, authtoken.EncodeHash(authtoken.Hash(raw)))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.store.DeleteAppToken(ctx, tok.Hash); err != nil {
			t.Fatal(err)
		}
		tok.FeatureFlags = flags
		if err := h.store.CreateAppToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	pages := []string{"/portal/event-types", "/portal/app/" + a.ID + "/endpoint/new",
		"/portal/app/" + a.ID + "/endpoint/" + ep.ID, "/portal/app/" + a.ID + "/msg"}

	c := h.customer()
	c.open(token())
	for _, path := range pages {
		resp, body := c.get(path)
		wantStatus(t, resp, body, http.StatusOK)
		if strings.Contains(body, gated.Name) {
			t.Errorf("%s shows %s to a token without its flag", path, gated.Name)
		}
	}
	resp, body := c.post("/portal/event-types/send-example", url.Values{"event_type": {gated.Name}, "endpoint": {a.ID + "/" + ep.ID}})
	wantStatus(t, resp, body, http.StatusBadRequest)

	cat, err := events.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	var visible []string
	for _, e := range cat {
		visible = append(visible, e.Name)
	}
	resp, body = c.post("/portal/app/"+a.ID+"/endpoint", url.Values{"url": {"https://a.example/all"}, "event_types": visible})
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Add Endpoint: status %d\n%s", resp.StatusCode, body)
	}
	eps, err := h.store.ListEndpoints(ctx, a.ID, webhook.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var added *webhook.Endpoint
	for i := range eps.Items {
		if eps.Items[i].URL == "https://a.example/all" {
			added = &eps.Items[i]
		}
	}
	if added == nil {
		t.Fatal("Add Endpoint stored no endpoint")
	}
	slices.Sort(visible)
	got := slices.Sorted(slices.Values(added.FilterTypes))
	if !slices.Equal(got, visible) {
		t.Errorf("every shown type ticked: filter %v, want the shown types %v (nil would subscribe to the hidden one)", added.FilterTypes, visible)
	}

	c = h.customer()
	c.open(token("beta"))
	if resp, body := c.get("/portal/event-types"); !strings.Contains(body, gated.Name) {
		t.Errorf("a token with the flag does not see %s (status %d)", gated.Name, resp.StatusCode)
	}
}

// TestPortalPlayURLsStayWithTheirApp: a portal session cannot read what
// another app's Play URL received by adding an endpoint with that URL
// (the link stays with the other app), nor read a Play URL no endpoint
// of its own uses.
func TestPortalPlayURLsStayWithTheirApp(t *testing.T) {
	h := newHarness(t, withPortal(""))
	ctx := context.Background()
	a, b := h.createApp("A"), h.createApp("B")
	epB := h.createEndpoint(b, "https://b.example/hooks")
	admin := h.adminHandler()
	linked, unlinked := admin.newPlayToken(), admin.newPlayToken()
	if err := h.play.Link(ctx, linked, play.Link{AppID: b.ID, EndpointID: epB.ID}); err != nil {
		t.Fatal(err)
	}
	c := h.customer()
	c.open(h.appToken(a, false, webhook.Capabilities...))
	resp, body := c.post("/portal/app/"+a.ID+"/endpoint", url.Values{"url": {h.srv.URL + "/play/" + linked}, "event_types": {"v1.end_user.created"}})
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Add Endpoint with B's Play URL: status %d\n%s", resp.StatusCode, body)
	}
	if link, err := h.play.LinkOf(ctx, linked); err != nil || link.AppID != b.ID || link.EndpointID != epB.ID {
		t.Errorf("B's Play URL is now linked to %+v (%v), want B's endpoint still", link, err)
	}
	for _, token := range []string{linked, unlinked} {
		resp, body := c.get("/portal/play/" + token)
		wantStatus(t, resp, body, http.StatusNotFound)
	}
}
