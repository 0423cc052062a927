package dashboard

import (
	"bytes"
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

func TestPagesNeedSignIn(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	for _, path := range []string{
		"/",
		"/app/" + app.ID,
		"/app/" + app.ID + "/msg?status=fail",
		"/event-types",
		"/play/" + h.newPlayToken(),
	} {
		t.Run("GET "+path, func(t *testing.T) {
			resp, body := h.get(path)
			loc := wantRedirect(t, resp, body, "/signin?next=")
			next, _ := url.ParseQuery(strings.TrimPrefix(loc, "/signin?"))
			if got := next.Get("next"); got != path {
				t.Errorf("next = %q, want %q", got, path)
			}
		})
	}
	t.Run("POST /app", func(t *testing.T) {
		resp, body := h.post("/app", url.Values{"name": {"Sneaky"}})
		wantRedirect(t, resp, body, "/signin?next=%2F")
		page, err := h.store.ListApps(context.Background(), webhook.ListOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 {
			t.Errorf("apps = %d, want 1: an unauthenticated POST created one", len(page.Items))
		}
	})
	t.Run("static files are public", func(t *testing.T) {
		resp, body := h.get("/static/style.css")
		wantStatus(t, resp, body, http.StatusOK)
	})
}

// newPlayToken makes a Play token valid for the harness's admin token.
func (h *harness) newPlayToken() string {
	d := &handler{tokenHash: authtoken.Hash(testToken)}
	return d.newPlayToken()
}

func TestSignInAndOut(t *testing.T) {
	h := newHarness(t)
	h.createApp("Acme Support")
	_, body := h.get("/signin?next=/event-types")
	h.csrf = csrfToken(t, body)

	resp, body := h.post("/signin", url.Values{"token": {"hsk_wrong"}, "next": {"/event-types"}})
	wantStatus(t, resp, body, http.StatusUnauthorized)
	if !strings.Contains(body, "That is not the admin token") {
		t.Errorf("wrong token: page does not say so:\n%s", body)
	}

	resp, body = h.post("/signin", url.Values{"token": {testToken}, "next": {"/event-types"}})
	wantRedirect(t, resp, body, "/event-types")
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/", session)
	}

	resp, body = h.get("/")
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "Acme Support") {
		t.Errorf("apps page does not list the app:\n%s", body)
	}
	h.csrf = csrfToken(t, body)

	resp, body = h.post("/signout", nil)
	wantRedirect(t, resp, body, "/signin")
	resp, body = h.get("/")
	wantRedirect(t, resp, body, "/signin")
}

func TestCreateApp(t *testing.T) {
	h := newHarness(t)
	h.signIn()
	resp, body := h.post("/app", url.Values{"name": {"  "}, "uid": {"app_looks_like_an_id"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if got := fieldError(body, "app-name"); !strings.Contains(got, "name must be 1 to") {
		t.Errorf("name error = %q", got)
	}
	if got := fieldError(body, "app-uid"); !strings.Contains(got, "must not start with an id prefix") {
		t.Errorf("uid error = %q", got)
	}
	resp, body = h.post("/app", url.Values{"name": {"Acme"}, "uid": {"acme"}})
	loc := wantRedirect(t, resp, body, "/app/app_")
	_, body = h.get(loc)
	if !strings.Contains(body, "App created.") || !strings.Contains(body, "<h1>Acme</h1>") {
		t.Errorf("app page after creation:\n%s", body)
	}
	resp, body = h.post("/app", url.Values{"name": {"Acme again"}, "uid": {"acme"}})
	wantStatus(t, resp, body, http.StatusUnprocessableEntity)
	if got := fieldError(body, "app-uid"); got != "Another app has this uid." {
		t.Errorf("duplicate uid error = %q", got)
	}
}

func TestSignInRedirectStaysOnSite(t *testing.T) {
	for _, next := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", next, got)
		}
	}
	if got := safeNext("/app/app_1?x=1"); got != "/app/app_1?x=1" {
		t.Errorf("safeNext kept %q, want the path", got)
	}
}

func TestUnknownOrForeignIDsAreNotFound(t *testing.T) {
	h := newHarness(t)
	a, b := h.createApp("A"), h.createApp("B")
	epB := h.createEndpoint(b, "https://b.example/hook")
	msgB := h.createMessage(b, "v1.end_user.created")
	h.signIn()
	for _, path := range []string{
		"/app/app_2bGyqTLlXA5BHrbiyhJRbHmmQzp",
		"/app/no-such-uid",
		"/app/" + a.ID + "/endpoint/" + epB.ID,
		"/app/" + a.ID + "/endpoint/" + epB.ID + "/recover",
		"/app/" + a.ID + "/msg/" + msgB.ID,
		"/play/not-a-token",
		"/play/" + (&handler{tokenHash: authtoken.Hash("another token")}).newPlayToken(),
		"/no/such/page",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := h.get(path)
			wantStatus(t, resp, body, http.StatusNotFound)
			if !strings.Contains(body, "There is nothing here") {
				t.Errorf("404 page does not say why:\n%s", body)
			}
		})
	}
	t.Run("POST to another app's endpoint", func(t *testing.T) {
		resp, body := h.post("/app/"+a.ID+"/endpoint/"+epB.ID+"/disable", nil)
		wantStatus(t, resp, body, http.StatusNotFound)
		if h.endpoint(b, epB.ID).Disabled {
			t.Error("the endpoint of app B was disabled through app A")
		}
	})
	t.Run("resend to another app's endpoint", func(t *testing.T) {
		msgA := h.createMessage(a, "v1.end_user.created")
		resp, body := h.post("/app/"+a.ID+"/msg/"+msgA.ID+"/resend", url.Values{"endpoint_id": {epB.ID}})
		wantStatus(t, resp, body, http.StatusNotFound)
		if len(h.deliveries.resent) != 0 {
			t.Errorf("resent %v, want nothing", h.deliveries.resent)
		}
	})
}

func TestFormsNeedCSRFToken(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	h.signIn()
	forms := []struct {
		path string
		form url.Values
	}{
		{"/app", url.Values{"name": {"New"}}},
		{"/app/" + app.ID + "/endpoint", url.Values{"url": {"https://x.example/"}, "event_types": {"v1.end_user.created"}}},
		{"/app/" + app.ID + "/endpoint/" + ep.ID + "/disable", nil},
		{"/app/" + app.ID + "/endpoint/" + ep.ID + "/secret/rotate", nil},
		{"/app/" + app.ID + "/endpoint/" + ep.ID + "/delete", nil},
		{"/signout", nil},
	}
	for _, tok := range []struct{ name, value string }{{"missing", ""}, {"wrong", "bm90LXRoZS10b2tlbg"}} {
		for _, f := range forms {
			t.Run(tok.name+" "+f.path, func(t *testing.T) {
				form := url.Values{}
				for k, v := range f.form {
					form[k] = v
				}
				form.Set(csrfField, tok.value)
				resp, body := h.post(f.path, form)
				wantStatus(t, resp, body, http.StatusForbidden)
				if !strings.Contains(body, "This form has expired") {
					t.Errorf("403 page does not explain:\n%s", body)
				}
			})
		}
	}
	got := h.endpoint(app, ep.ID)
	if got.Disabled || !bytes.Equal(got.Keys[0].Key, ep.Keys[0].Key) {
		t.Errorf("a form without a valid CSRF token changed the endpoint: %+v", got)
	}
	// The token is bound to the browser's nonce cookie: another browser's
	// valid token does not work here.
	other := newHarness(t)
	other.signIn()
	resp, body := h.post("/app", url.Values{"name": {"New"}, csrfField: {other.csrf}})
	wantStatus(t, resp, body, http.StatusForbidden)
}

// fieldError returns the text of the error shown for a field (the element
// with id "<field>-error").
func fieldError(body, field string) string {
	re := regexp.MustCompile(`id="` + regexp.QuoteMeta(field) + `-error"[^>]*>([^<]*)<`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestAddEndpointRejectsBadInput(t *testing.T) {
	h := newHarness(t, withPrivateTargets(false))
	app := h.createApp("Acme")
	h.signIn()
	all := []string{"v1.conversation.created", "v1.conversation.ended", "v1.conversation.message", "v1.end_user.created", "v1.end_user.updated"}
	tests := []struct {
		name      string
		form      url.Values
		field     string
		wantError string
	}{
		{"no URL", url.Values{"event_types": all}, "url", "Enter the URL"},
		{"ftp URL", url.Values{"url": {"ftp://files.example/x"}, "event_types": all}, "url", "scheme must be http or https"},
		{"loopback URL", url.Values{"url": {"http://127.0.0.1:9/hook"}, "event_types": all}, "url", "invalid URL"},
		{"no event type", url.Values{"url": {"https://acme.example/hook"}}, "event-types", "Choose at least one event type."},
		{"unknown event type", url.Values{"url": {"https://acme.example/hook"}, "event_types": {"v1.nope"}}, "event-types", `The event type "v1.nope" does not exist.`},
		{"bad channel", url.Values{"url": {"https://acme.example/hook"}, "event_types": all, "channels": {"ok, not/ok"}}, "channels", "channel must be"},
		{"long description", url.Values{"url": {"https://acme.example/hook"}, "event_types": all, "description": {strings.Repeat("d", webhook.MaxDescriptionLen+1)}}, "description", "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.post("/app/"+app.ID+"/endpoint", tt.form)
			wantStatus(t, resp, body, http.StatusUnprocessableEntity)
			if got := fieldError(body, tt.field); !strings.Contains(got, tt.wantError) {
				t.Errorf("error next to %s = %q, want it to contain %q", tt.field, got, tt.wantError)
			}
			if v := tt.form.Get("url"); v != "" && !strings.Contains(body, `value="`+html.EscapeString(v)+`"`) {
				t.Errorf("the form lost the URL typed in")
			}
		})
	}
	page, err := h.store.ListEndpoints(context.Background(), app.ID, webhook.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 0 {
		t.Errorf("rejected forms created %d endpoints", len(page.Items))
	}
}

func TestAddEndpoint(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	h.signIn()

	_, body := h.get("/app/" + app.ID + "/endpoint/new")
	if n := strings.Count(body, `name="event_types"`); n != 5 || strings.Count(body, " checked>") != 5 {
		t.Errorf("Add Endpoint shows %d event types, %d checked; want all 5 checked", n, strings.Count(body, " checked>"))
	}
	playURL := regexp.MustCompile(`data-play-url="([^"]+)"`).FindStringSubmatch(body)
	if playURL == nil || !strings.HasPrefix(playURL[1], h.srv.URL+"/play/") {
		t.Fatalf("Use Play button has no Play URL of this server: %v", playURL)
	}

	t.Run("all event types means every type", func(t *testing.T) {
		all := []string{"v1.conversation.created", "v1.conversation.ended", "v1.conversation.message", "v1.end_user.created", "v1.end_user.updated"}
		resp, body := h.post("/app/"+app.ID+"/endpoint", url.Values{"url": {html.UnescapeString(playURL[1])}, "event_types": all, "description": {"Play"}})
		loc := wantRedirect(t, resp, body, "/app/"+app.ID+"/endpoint/ep_")
		epID := strings.TrimSuffix(strings.TrimPrefix(loc, "/app/"+app.ID+"/endpoint/"), "?done=created")
		ep := h.endpoint(app, epID)
		if ep.FilterTypes != nil || ep.Description != "Play" || len(ep.Keys) != 1 {
			t.Errorf("endpoint = %+v, want no filter, the description and a secret", ep)
		}
		token := strings.TrimPrefix(html.UnescapeString(playURL[1]), h.srv.URL+"/play/")
		link, err := h.play.LinkOf(context.Background(), token)
		if err != nil || link.EndpointID != ep.ID {
			t.Errorf("Play link = %+v, %v; want endpoint %s", link, err, ep.ID)
		}
		_, page := h.get(loc)
		if !strings.Contains(page, "Endpoint created.") || !strings.Contains(page, "Open Play") {
			t.Errorf("endpoint page lacks the notice or the Play link:\n%s", page)
		}
	})
	t.Run("some event types and channels", func(t *testing.T) {
		resp, body := h.post("/app/"+app.ID+"/endpoint", url.Values{"url": {"https://acme.example/hook"},
			"event_types": {"v1.end_user.created", "v1.end_user.updated"}, "channels": {"eu, vip"}})
		loc := wantRedirect(t, resp, body, "/app/"+app.ID+"/endpoint/ep_")
		ep := h.endpoint(app, strings.TrimSuffix(strings.TrimPrefix(loc, "/app/"+app.ID+"/endpoint/"), "?done=created"))
		if !slices.Equal(ep.FilterTypes, []string{"v1.end_user.created", "v1.end_user.updated"}) || !slices.Equal(ep.Channels, []string{"eu", "vip"}) {
			t.Errorf("filter %v channels %v, want the two types and eu, vip", ep.FilterTypes, ep.Channels)
		}
	})
	t.Run("Use Play without JavaScript", func(t *testing.T) {
		resp, body := h.post("/app/"+app.ID+"/endpoint", url.Values{"action": {"use-play"}})
		wantStatus(t, resp, body, http.StatusOK)
		m := regexp.MustCompile(`id="url" name="url" type="url" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil || !strings.HasPrefix(m[1], h.srv.URL+"/play/") {
			t.Errorf("URL field = %v, want a Play URL", m)
		}
		if strings.Count(body, " checked>") != 5 {
			t.Errorf("event types not all checked after Use Play")
		}
	})
}

func TestEndpointActions(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	h.signIn()
	path := "/app/" + app.ID + "/endpoint/" + ep.ID

	t.Run("disable and enable", func(t *testing.T) {
		resp, body := h.post(path+"/disable", nil)
		wantRedirect(t, resp, body, path+"?done=disabled")
		_, page := h.get(path)
		if !strings.Contains(page, "Disabled by hand") || !strings.Contains(page, `id="enable"`) {
			t.Errorf("disabled endpoint page does not say why or offer Enable")
		}
		if got := h.endpoint(app, ep.ID); !got.Disabled || got.DisabledWhy != webhook.DisabledManual || !got.DisabledAt.Equal(h.clock.Now()) {
			t.Errorf("endpoint = disabled %v why %q at %v, want manual now", got.Disabled, got.DisabledWhy, got.DisabledAt)
		}
		resp, body = h.post(path+"/enable", nil)
		wantRedirect(t, resp, body, path+"?done=enabled")
		if got := h.endpoint(app, ep.ID); got.Disabled || got.DisabledWhy != "" {
			t.Errorf("endpoint still disabled after Enable: %+v", got)
		}
	})
	t.Run("rotate secret", func(t *testing.T) {
		before := h.endpoint(app, ep.ID).Keys[0].Key
		_, page := h.get(path + "?reveal=secret")
		if !strings.Contains(page, signing.FormatSecret(before)) {
			t.Fatalf("revealed page does not show the secret")
		}
		resp, body := h.post(path+"/secret/rotate", nil)
		wantRedirect(t, resp, body, path+"?done=rotated")
		keys := h.endpoint(app, ep.ID).Keys
		if len(keys) != 2 || bytes.Equal(keys[0].Key, before) || !bytes.Equal(keys[1].Key, before) ||
			!keys[1].ExpiresAt.Equal(h.clock.Now().Add(24*time.Hour)) {
			t.Errorf("keys after rotation = %+v, want a new key and the old one for 24 h", keys)
		}
		_, page = h.get(path)
		if strings.Contains(page, signing.FormatSecret(keys[0].Key)) {
			t.Errorf("the secret is in the page before Reveal")
		}
	})
	t.Run("custom headers", func(t *testing.T) {
		resp, body := h.post(path+"/headers", url.Values{"name": {"X-Api-Key"}, "value": {"s3cret"}})
		wantRedirect(t, resp, body, path)
		resp, body = h.post(path+"/headers", url.Values{"name": {"Webhook-Id"}, "value": {"x"}})
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if got := fieldError(body, "header"); !strings.Contains(got, "reserved") {
			t.Errorf("header error = %q, want it reserved", got)
		}
		if strings.Contains(body, "s3cret") {
			t.Errorf("the page shows a sensitive header's value")
		}
		if got := h.endpoint(app, ep.ID).Headers; len(got) != 1 || got["X-Api-Key"] != "s3cret" {
			t.Errorf("headers = %v, want only X-Api-Key", got)
		}
	})
	t.Run("event types need one", func(t *testing.T) {
		resp, body := h.post(path+"/event-types", url.Values{})
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if got := fieldError(body, "event-types"); got != "Choose at least one event type." {
			t.Errorf("error = %q", got)
		}
		resp, body = h.post(path+"/event-types", url.Values{"event_types": {"v1.conversation.ended"}})
		wantRedirect(t, resp, body, path+"?done=saved")
		if got := h.endpoint(app, ep.ID).FilterTypes; !slices.Equal(got, []string{"v1.conversation.ended"}) {
			t.Errorf("filter = %v", got)
		}
	})
	t.Run("recover", func(t *testing.T) {
		resp, body := h.post(path+"/recover", url.Values{"window": {"custom"}, "since": {h.clock.Now().Add(time.Hour).Format("2006-01-02T15:04")}, "tz_offset": {"0"}})
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if got := fieldError(body, "since"); got != "The start must not be in the future." {
			t.Errorf("since error = %q", got)
		}
		resp, body = h.post(path+"/recover", url.Values{"window": {"custom"}, "since": {h.clock.Now().Add(-15 * 24 * time.Hour).Format("2006-01-02T15:04")}})
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if got := fieldError(body, "since"); !strings.Contains(got, "at most 14 days") {
			t.Errorf("since error = %q", got)
		}
		// 10:30 typed by a viewer at UTC+2 (JavaScript's offset -120) is 08:30 UTC.
		local := h.clock.Now().Add(-3 * time.Hour).In(time.FixedZone("", 2*3600)).Truncate(time.Minute)
		resp, body = h.post(path+"/recover", url.Values{"window": {"custom"}, "since": {local.Format("2006-01-02T15:04")}, "tz_offset": {"-120"}})
		wantRedirect(t, resp, body, path+"?done=recover")
		resp, body = h.post(path+"/recover", url.Values{"window": {"6h"}})
		wantRedirect(t, resp, body, path+"?done=recover")
		want := []recoverCall{
			{ep.ID, local.UTC(), h.clock.Now()},
			{ep.ID, h.clock.Now().Add(-6 * time.Hour), h.clock.Now()},
		}
		got := h.deliveries.recovered
		if len(got) != 2 || !got[0].since.Equal(want[0].since) || !got[1].since.Equal(want[1].since) || !got[1].until.Equal(want[1].until) {
			t.Errorf("recover calls = %+v, want %+v", got, want)
		}
	})
	t.Run("recover refuses a disabled endpoint", func(t *testing.T) {
		h.post(path+"/disable", nil)
		resp, body := h.post(path+"/recover", url.Values{"window": {"1h"}})
		wantStatus(t, resp, body, http.StatusUnprocessableEntity)
		if !strings.Contains(body, "Enable it before recovering") {
			t.Errorf("page does not say the endpoint is disabled")
		}
		h.post(path+"/enable", nil)
	})
	t.Run("delete", func(t *testing.T) {
		_, page := h.get(path + "/delete")
		if !strings.Contains(page, "cannot be undone") {
			t.Errorf("no confirmation page")
		}
		resp, body := h.post(path+"/delete", nil)
		wantRedirect(t, resp, body, "/app/"+app.ID+"?done=deleted")
		if _, err := h.store.GetEndpoint(context.Background(), app.ID, ep.ID); !webhook.IsNotFound(err) {
			t.Errorf("endpoint still there: %v", err)
		}
	})
}

func TestSendExampleAndResend(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	h.signIn()

	resp, body := h.post("/event-types/send-example", url.Values{"event_type": {"v1.end_user.created"}, "endpoint": {app.ID + "/" + ep.ID}})
	loc := wantRedirect(t, resp, body, "/app/"+app.ID+"/msg/msg_")
	msgID := strings.TrimSuffix(strings.TrimPrefix(loc, "/app/"+app.ID+"/msg/"), "?done=example")
	msg, err := h.store.GetMessage(context.Background(), app.ID, msgID)
	if err != nil {
		t.Fatal(err)
	}
	if msg.EventType != "v1.end_user.created" || !bytes.Contains(msg.Payload, []byte(`"end_user_id"`)) {
		t.Errorf("example message = %s %s, want the seeded example", msg.EventType, msg.Payload)
	}
	if want := []string{msgID + " " + ep.ID}; !slices.Equal(h.deliveries.resent, want) {
		t.Errorf("manual runs = %v, want %v", h.deliveries.resent, want)
	}

	resp, body = h.post("/app/"+app.ID+"/msg/"+msgID+"/resend", url.Values{"endpoint_id": {ep.ID}})
	wantRedirect(t, resp, body, "/app/"+app.ID+"/msg/"+msgID+"?done=resent")
	if len(h.deliveries.resent) != 2 {
		t.Errorf("resend did not start a run: %v", h.deliveries.resent)
	}

	h.post("/app/"+app.ID+"/endpoint/"+ep.ID+"/disable", nil)
	resp, body = h.post("/app/"+app.ID+"/msg/"+msgID+"/resend", url.Values{"endpoint_id": {ep.ID}})
	wantStatus(t, resp, body, http.StatusBadRequest)
	if !strings.Contains(body, "Enable it before resending") {
		t.Errorf("page does not say the endpoint is disabled:\n%s", body)
	}
}

func TestMessagesLogFilters(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	// Two messages: one delivered, one failed.
	h.deliver(app, ep, "v1.end_user.created", webhook.StatusSuccess)
	h.deliver(app, ep, "v1.conversation.ended", webhook.StatusFail)
	h.signIn()
	tests := []struct {
		query    string
		want     []string
		dontWant []string
	}{
		{"", []string{"v1.end_user.created", "v1.conversation.ended"}, nil},
		{"?status=fail", []string{"v1.conversation.ended", "0 of 1 delivered, 1 failed"}, []string{"1 of 1 delivered"}},
		{"?status=success", []string{"1 of 1 delivered"}, []string{"1 failed"}},
		{"?event_type=v1.end_user.created", []string{"1 of 1 delivered"}, []string{"1 failed"}},
		{"?status=pending", []string{"No messages match the filter"}, []string{"delivered"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := h.get("/app/" + app.ID + "/msg" + tt.query)
			wantStatus(t, resp, body, http.StatusOK)
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.dontWant {
				if strings.Contains(body, s) {
					t.Errorf("page has %q", s)
				}
			}
		})
	}
}

func TestAttemptsLogFilter(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	ok := h.deliver(app, ep, "v1.end_user.created", webhook.StatusSuccess)
	failed := h.deliver(app, ep, "v1.conversation.ended", webhook.StatusFail)
	h.signIn()
	endpoint := "/app/" + app.ID + "/endpoint/" + ep.ID
	tests := []struct {
		path, selected string
		want, dontWant []string
	}{
		{endpoint, "All", []string{"v1.end_user.created", "v1.conversation.ended"}, nil},
		{endpoint + "?status=success", "Succeeded", []string{"v1.end_user.created"}, []string{"v1.conversation.ended"}},
		{endpoint + "?status=fail", "Failed", []string{"v1.conversation.ended"}, []string{"v1.end_user.created"}},
		// A message page filters its own attempts, whatever the message's state.
		{"/app/" + app.ID + "/msg/" + ok.ID, "All", []string{">Succeeded<"}, nil},
		{"/app/" + app.ID + "/msg/" + ok.ID + "?status=fail", "Failed", []string{"No attempts with this status"}, nil},
		{"/app/" + app.ID + "/msg/" + failed.ID + "?status=fail", "Failed", []string{"500"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := h.get(tt.path)
			wantStatus(t, resp, body, http.StatusOK)
			log := body[strings.Index(body, `id="attempt-status"`):]
			if !strings.Contains(log, "selected>"+tt.selected+"<") {
				t.Errorf("the status filter does not show %q selected", tt.selected)
			}
			for _, s := range tt.want {
				if !strings.Contains(log, s) {
					t.Errorf("log lacks %q", s)
				}
			}
			for _, s := range tt.dontWant {
				if strings.Contains(log, s) {
					t.Errorf("log has %q", s)
				}
			}
		})
	}
}

func TestBasePathPrefixesLinks(t *testing.T) {
	h := newHarnessAt(t, "/prod")
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	h.createMessage(app, "v1.end_user.created")

	resp, body := h.get("/app/" + app.ID)
	loc := wantRedirect(t, resp, body, "/prod/signin?next=")
	if want := "/prod/signin?next=" + url.QueryEscape("/app/"+app.ID); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	h.signIn()
	// The cookies are scoped to the stage: sent to /prod/..., not to /.
	srvURL, _ := url.Parse(h.srv.URL)
	hasSession := func(path string) bool {
		u := *srvURL
		u.Path = path
		for _, c := range h.client.Jar.Cookies(&u) {
			if c.Name == sessionCookie {
				return true
			}
		}
		return false
	}
	if !hasSession("/prod/app") || hasSession("/app") {
		t.Errorf("session cookie sent to /prod/app: %v, to /app: %v; want only under /prod/", hasSession("/prod/app"), hasSession("/app"))
	}
	attr := regexp.MustCompile(`(?:href|action|src|data-poll|data-play-url)="([^"#]*)"`)
	for _, path := range []string{
		"/",
		"/app/" + app.ID,
		"/app/" + app.ID + "/endpoint/new",
		"/app/" + app.ID + "/endpoint/" + ep.ID,
		"/app/" + app.ID + "/msg",
		"/event-types",
		"/play/" + h.newPlayToken(),
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := h.get(path)
			wantStatus(t, resp, body, http.StatusOK)
			links := attr.FindAllStringSubmatch(body, -1)
			if len(links) < 4 {
				t.Fatalf("only %d links", len(links))
			}
			for _, l := range links {
				u := html.UnescapeString(l[1])
				if strings.HasPrefix(u, h.srv.URL) {
					u = strings.TrimPrefix(u, h.srv.URL)
				}
				if !strings.HasPrefix(u, "/prod/") {
					t.Errorf("link %q lacks the base path /prod", u)
				}
			}
		})
	}
	t.Run("redirect after a form", func(t *testing.T) {
		resp, body := h.post("/app/"+app.ID+"/endpoint/"+ep.ID+"/disable", nil)
		wantRedirect(t, resp, body, "/prod/app/"+app.ID+"/endpoint/"+ep.ID)
	})
}
