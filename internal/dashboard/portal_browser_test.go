package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/webhook"
)

// hostPage is the platform's page that embeds the portal as svix-react's
// <AppPortal fullSize> does: an iframe with allow="clipboard-write" whose
// height follows the portal's svix.iframe-resizer-height messages (the
// same check as svix-react's). It keeps every height it got in
// window.resizes.
var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Platform</title>
<style>body{margin:0;font-family:sans-serif;background:#eef0f3} header{padding:12px 24px;background:#3b2d6b;color:#fff} iframe{display:block;width:100%;border:0;height:200px}</style>
</head><body>
<header>Platform &rsaquo; Webhooks</header>
<iframe id="portal" src="{{.}}" allow="clipboard-write"></iframe>
<script>
window.resizes = [];
window.addEventListener("message", function (e) {
  var f = document.getElementById("portal");
  if (e.source !== f.contentWindow) return;
  var d = e.data;
  if (d && typeof d === "object" && d.type === "svix.iframe-resizer-height" && d.payload && typeof d.payload === "object" && typeof d.payload.height === "number") {
    window.resizes.push(d.payload.height);
    f.style.height = d.payload.height + "px";
  }
});
</script>
</body></html>`))

// startHost serves the host page on its own site: http://localhost:P,
// while the portal is on http://127.0.0.1:Q. Both are loopback, and not
// the same site, so the portal is a third party in the frame.
func startHost(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		hostPage.Execute(w, r.URL.Query().Get("u"))
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

// cookieProbe is a third site that sets an unpartitioned and a
// partitioned SameSite=None cookie on /set and records which of them come
// back on /check.
type cookieProbe struct {
	url  string
	mu   sync.Mutex
	seen [][]string
}

func startCookieProbe(t *testing.T) *cookieProbe {
	t.Helper()
	p := &cookieProbe{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/set":
			w.Header().Add("Set-Cookie", "unpartitioned=1; Path=/; Secure; SameSite=None")
			w.Header().Add("Set-Cookie", "partitioned=1; Path=/; Secure; SameSite=None; Partitioned")
		case "/check":
			var names []string
			for _, c := range r.Cookies() {
				names = append(names, c.Name)
			}
			slices.Sort(names)
			p.mu.Lock()
			p.seen = append(p.seen, names)
			p.mu.Unlock()
		}
		fmt.Fprint(w, "probe")
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *cookieProbe) last() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) == 0 {
		return nil
	}
	return p.seen[len(p.seen)-1]
}

// blockThirdPartyCookies is Chromium set to block third-party cookies, as
// Chrome does for its users who turn them off (and as it planned to for
// everyone): the switch for testing that, and the profile's setting
// "Block third-party cookies". TestPortalBrowser proves that it works.
func blockThirdPartyCookies(t *testing.T) []chromedp.ExecAllocatorOption {
	t.Helper()
	profile := t.TempDir()
	prefs := map[string]any{"profile": map[string]any{"cookie_controls_mode": 1, "block_third_party_cookies": true}}
	b, err := json.Marshal(prefs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(profile, "Default", "Preferences"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return []chromedp.ExecAllocatorOption{
		chromedp.UserDataDir(profile),
		chromedp.Flag("test-third-party-cookie-phaseout", true),
	}
}

// appToken stores an app token as the access API mints it and returns it.
func (s *stack) appToken(t *testing.T, appID string, readOnly bool, caps ...webhook.Capability) string {
	t.Helper()
	token, err := authtoken.GenerateApp()
	if err != nil {
		t.Fatal(err)
	}
	tok := &webhook.AppToken{Hash: authtoken.EncodeHash(authtoken.Hash(token)), AppID: appID,
		Capabilities: caps, ReadOnly: readOnly, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.store.CreateAppToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return token
}

// embed opens the host page with an iframe of src.
func (b *browser) embed(t *testing.T, src string) {
	t.Helper()
	b.open(t, "/?u="+url.QueryEscape(src))
}

// frame attaches to the iframe whose document's URL starts with prefix.
// Chromium runs a frame of another site in its own process, a target of
// its own; site isolation stays on, as for the platform's customers.
func (b *browser) frame(t *testing.T, prefix string) *browser {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		infos, err := chromedp.Targets(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && strings.HasPrefix(info.URL, prefix) {
				ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(info.TargetID))
				*b.frames = append(*b.frames, cancel)
				return &browser{ctx: ctx, base: prefix, frames: b.frames}
			}
		}
		if time.Now().After(deadline) {
			var urls []string
			for _, info := range infos {
				urls = append(urls, info.Type+" "+info.URL)
			}
			t.Fatalf("no iframe at %s; targets: %q", prefix, urls)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval runs a script in the page and decodes its result.
func eval[T any](t *testing.T, b *browser, js string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// navigate runs a script that loads another page in the frame (a click, a
// reload) and waits until the new page has loaded. Clicks are the DOM's:
// the frame is another target, where the page's mouse events do not go.
func (b *browser) navigate(t *testing.T, js string) {
	t.Helper()
	eval[bool](t, b, `window.__hookstepOld = true`)
	eval[bool](t, b, `(() => { `+js+`; return true; })()`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		done, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`window.__hookstepOld === undefined && document.readyState === "complete"`))
		if err == nil && done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: no new page (err %v)", js, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// click clicks the element (which loads a page).
func (b *browser) click(t *testing.T, sel string) {
	t.Helper()
	if _, err := b.tryText(sel, 10*time.Second); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	b.navigate(t, `document.querySelector(`+jsString(sel)+`).click()`)
}

// go loads a path of the portal in the frame.
func (b *browser) goTo(t *testing.T, path string) {
	t.Helper()
	b.navigate(t, `window.location.assign(`+jsString(path)+`)`)
}

// reloadFrameUntil reloads the frame until the element's text contains
// every string.
func (b *browser) reloadFrameUntil(t *testing.T, sel string, want ...string) {
	t.Helper()
	b.untilShown(t, sel, want, func() {
		time.Sleep(150 * time.Millisecond)
		b.navigate(t, `window.location.reload()`)
	})
}

// path is the frame's path and query, without the origin.
func (b *browser) path(t *testing.T) string {
	t.Helper()
	return eval[string](t, b, `window.location.pathname + window.location.search + window.location.hash`)
}

// wantNoInnerScrollbar checks that the host page sized the frame to the
// whole portal page, from its resizer messages.
func wantNoInnerScrollbar(t *testing.T, host, f *browser) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		inner := eval[[]int](t, f, `[document.documentElement.scrollHeight, window.innerHeight]`)
		outer := eval[[]int](t, host, `[window.resizes.length ? window.resizes[window.resizes.length-1] : 0, document.getElementById("portal").clientHeight]`)
		if outer[0] > 0 && outer[1] == outer[0] && inner[0] <= inner[1] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("frame content %d px high in a %d px frame (last resizer height %d, iframe %d px): want the frame sized to its content",
				inner[0], inner[1], outer[0], outer[1])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshotEmbedded saves the host page with the whole portal in it as
// testdata/output/<name>.png. A full-page capture beyond the viewport
// leaves a frame of another process blank, so the viewport is made as
// tall as the page for the capture; the frame's width, and so its
// height, do not change.
func (b *browser) screenshotEmbedded(t *testing.T, name string) {
	t.Helper()
	height := eval[int](t, b, `Math.ceil(document.documentElement.scrollHeight)`)
	b.do(t, chromedp.EmulateViewport(1280, int64(height)), chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	b.do(t, chromedp.EmulateViewport(1280, 900))
	saveScreenshot(t, name, png, err)
}

// TestPortalBrowser embeds the portal in a page of another site, in
// Chromium with third-party cookies blocked, as a platform's customer
// sees it: the app's endpoints in the platform's colours, Add Endpoint
// with Play, a message verified in Play and in the Message Attempts log,
// resend, recover, disable and enable, a read-only link, an expired link,
// and the admin dashboard refusing to be framed.
func TestPortalBrowser(t *testing.T) {
	needChromium(t)
	host := startHost(t)
	s := startStack(t, withPortal("Acme Webhooks", host))
	probe := startCookieProbe(t)
	b := startBrowser(t, host, blockThirdPartyCookies(t)...)

	app := s.api(t, http.MethodPost, "/api/v1/app", map[string]any{"name": "Acme Support", "uid": "acme"})
	appID := app["id"].(string)
	other := s.api(t, http.MethodPost, "/api/v1/app", map[string]any{"name": "Other Co"})
	s.api(t, http.MethodPost, "/api/v1/app/"+other["id"].(string)+"/endpoint", map[string]any{"url": "http://127.0.0.1:9/other-co"})
	failing := s.api(t, http.MethodPost, "/api/v1/app/"+appID+"/endpoint", map[string]any{"url": s.receiver.url, "description": "Our receiver"})
	failingID := failing["id"].(string)
	portal := s.url + "/portal"
	var f *browser
	var playEndpoint, msg1, msg2 string

	step := func(name string, fn func(t *testing.T)) {
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}

	step("third-party cookies are blocked, partitioned ones are not", func(t *testing.T) {
		b.embed(t, probe.url+"/set")
		b.frame(t, probe.url+"/set")
		b.embed(t, probe.url+"/check")
		b.frame(t, probe.url+"/check")
		if got := probe.last(); !slices.Equal(got, []string{"partitioned"}) {
			t.Fatalf("the framed site got cookies %q, want only the partitioned one: third-party cookies must be blocked", got)
		}
		// The unpartitioned cookie itself is fine: as a first party, the
		// site sets and gets it.
		b.do(t, chromedp.Navigate(probe.url+"/set"), chromedp.Navigate(probe.url+"/check"))
		if got := probe.last(); !slices.Contains(got, "unpartitioned") {
			t.Fatalf("first-party cookies %q, want the unpartitioned one too", got)
		}
	})

	step("the link opens the app's portal in the frame, themed", func(t *testing.T) {
		token := s.appToken(t, appID, false, webhook.Capabilities...)
		b.embed(t, portal+"?darkMode=true&primaryColor=%23e11d48#key="+token)
		f = b.frame(t, portal)
		f.waitText(t, "#endpoints", s.receiver.url)
		if p := f.path(t); p != "/portal/app/"+appID {
			t.Errorf("the frame is at %q, want /portal/app/%s", p, appID)
		}
		// The landing page took the token out of the frame's address and
		// history.
		if got := eval[string](t, f, `window.location.href`); strings.Contains(got, token) || strings.Contains(got, "key=") {
			t.Errorf("the frame's address %q still has the token", got)
		}
		f.wantText(t, "header", "Acme Webhooks", "Endpoints", "Messages", "Event types")
		if got := f.text(t, "body"); strings.Contains(got, "Other Co") || strings.Contains(got, "other-co") || strings.Contains(got, "hookstep") || strings.Contains(got, "Sign out") {
			t.Errorf("the portal shows more than the app's own:\n%s", got)
		}
		if got := eval[string](t, f, `document.title`); got != "Acme Support · Acme Webhooks" {
			t.Errorf("title %q", got)
		}
		// svix-react's parameters: the platform's colour, dark mode.
		if got := eval[string](t, f, `getComputedStyle(document.getElementById("add-endpoint")).backgroundColor`); got != "rgb(225, 29, 72)" {
			t.Errorf("Add Endpoint is %s, want the primaryColor rgb(225, 29, 72)", got)
		}
		if got := eval[string](t, f, `getComputedStyle(document.documentElement).backgroundColor`); got != "rgb(18, 22, 29)" {
			t.Errorf("the page background is %s, want dark mode's rgb(18, 22, 29)", got)
		}
		wantNoInnerScrollbar(t, b, f)
		b.screenshotEmbedded(t, "portal-01-endpoints")
	})

	// svix-react's data hooks call the API from the platform's page with
	// the app token: a cross-origin fetch with an Authorization header,
	// which the browser lets through only after a CORS preflight.
	step("the platform's page calls the API with the app token", func(t *testing.T) {
		token := s.appToken(t, appID, true, webhook.CapViewBase)
		fetch := func(path string) string {
			return eval[string](t, b, `fetch(`+strconv.Quote(s.url+path)+`, {headers: {Authorization: "Bearer `+token+`"}})
				.then(r => r.json().then(j => r.status + " " + (j.data ? j.data.length : j.code)))`,
				chromedp.EvalAwaitPromise)
		}
		if got := fetch("/api/v1/app/" + appID + "/endpoint"); got != "200 1" {
			t.Errorf("the app's endpoints from %s: got %q, want 200 and its one endpoint", host, got)
		}
		if got := fetch("/api/v1/app/" + other["id"].(string) + "/endpoint"); got != "404 not_found" {
			t.Errorf("another app's endpoints: got %q, want 404", got)
		}
	})

	step("add an endpoint with Use Play", func(t *testing.T) {
		f.click(t, "#add-endpoint")
		f.wantText(t, "h1", "Add Endpoint")
		if n := eval[int](t, f, `document.querySelectorAll("input[name=event_types]:checked").length`); n != 5 {
			t.Errorf("%d event types ticked, want all 5", n)
		}
		eval[bool](t, f, `(document.getElementById("use-play").click(), true)`)
		playURL := f.value(t, "#url")
		if !strings.HasPrefix(playURL, s.url+"/play/") {
			t.Fatalf("Use Play filled in %q, want a Play URL of %s", playURL, s.url)
		}
		wantNoInnerScrollbar(t, b, f)
		b.screenshotEmbedded(t, "portal-02-add-endpoint")
		f.click(t, "#create")
		f.wantText(t, ".notice", "Endpoint created.")
		f.wantText(t, "#endpoint-url", playURL)
		p := f.path(t)
		playEndpoint = strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], "?done=created")
		if !strings.HasPrefix(p, "/portal/app/"+appID+"/endpoint/ep_") {
			t.Fatalf("after create the frame is at %q", p)
		}
	})

	step("a message arrives in Play, verified, and in Message Attempts", func(t *testing.T) {
		msg1 = s.sendMessage(t, appID, "v1.conversation.ended", "portal-one")
		msg2 = s.sendMessage(t, appID, "v1.conversation.ended", "portal-two")
		f.click(t, ".play-note a")
		f.wantText(t, "main", "For testing only")
		f.waitText(t, "#play-requests", "Signature verified")
		f.waitText(t, "#play-requests", "portal-two")
		b.screenshotEmbedded(t, "portal-03-play")
		f.goTo(t, "/portal/app/"+appID+"/endpoint/"+playEndpoint)
		f.reloadFrameUntil(t, "#attempts", "v1.conversation.ended", "Succeeded", "200")
		eval[bool](t, f, `(document.querySelector("#attempts .log-row summary").click(), true)`)
		f.wantText(t, "#attempts .request-body", "portal-")
		wantNoInnerScrollbar(t, b, f)
		b.screenshotEmbedded(t, "portal-04-attempts")
	})

	step("resend", func(t *testing.T) {
		f.goTo(t, "/portal/app/"+failingID)
		f.goTo(t, "/portal/app/"+appID+"/endpoint/"+failingID)
		f.reloadFrameUntil(t, "#attempts", "Failed", "500")
		s.receiver.status.Store(http.StatusOK) // the receiver is back
		f.click(t, `header nav a[href$="/msg"]`)
		f.wantText(t, "#messages", msg1, msg2)
		f.click(t, `#messages a[href$="/msg/`+msg1+`"]`)
		f.wantText(t, "h1", msg1)
		eval[bool](t, f, `(document.getElementById("resend-endpoint").value = `+jsString(failingID)+`, true)`)
		f.click(t, "#resend")
		f.wantText(t, ".notice", "Message resent")
		f.reloadFrameUntil(t, "#deliveries", "2 of 2 delivered")
		if got := s.receiver.answered(msg1); got != http.StatusOK {
			t.Errorf("the receiver answered %d to the resend, want 200", got)
		}
		b.screenshotEmbedded(t, "portal-05-message-resent")
	})

	step("recover failed messages of the last hour", func(t *testing.T) {
		f.goTo(t, "/portal/app/"+appID+"/endpoint/"+failingID)
		f.click(t, `details.menu a[href$="/recover"]`)
		f.wantText(t, "h1", "Recover Failed Messages")
		b.screenshotEmbedded(t, "portal-06-recover")
		f.click(t, "#recover")
		f.wantText(t, ".notice", "Recovery started")
		deadline := time.Now().Add(20 * time.Second)
		for s.receiver.answered(msg2) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("the recovered message got %d from the receiver, want 200", s.receiver.answered(msg2))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	step("disable and re-enable", func(t *testing.T) {
		f.goTo(t, "/portal/app/"+appID+"/endpoint/"+failingID)
		f.click(t, `details.menu form[action$="/disable"] button`)
		f.wantText(t, ".notice", "Endpoint disabled.")
		f.wantText(t, "#endpoint-status", "Disabled", "Disabled by hand")
		b.screenshotEmbedded(t, "portal-07-disabled")
		f.click(t, "#enable")
		f.wantText(t, ".notice", "Endpoint enabled.")
		f.wantText(t, "#endpoint-status", "Enabled")
	})

	step("a read-only link shows no forms and refuses a forged post", func(t *testing.T) {
		token := s.appToken(t, appID, true, webhook.Capabilities...)
		b.embed(t, portal+"#key="+token)
		f = b.frame(t, portal)
		f.waitText(t, "#endpoints", s.receiver.url)
		for _, p := range []string{"/portal/app/" + appID, "/portal/app/" + appID + "/endpoint/" + failingID, "/portal/app/" + appID + "/msg", "/portal/app/" + appID + "/msg/" + msg1, "/portal/event-types"} {
			f.goTo(t, p)
			if n := eval[int](t, f, `document.querySelectorAll("form[method=post]").length`); n != 0 {
				t.Errorf("read-only %s shows %d forms", p, n)
			}
		}
		f.goTo(t, "/portal/app/"+appID+"/endpoint/"+failingID)
		b.screenshotEmbedded(t, "portal-08-read-only")
		status := eval[int](t, f, `fetch(window.location.pathname + "/disable", {method: "POST", credentials: "same-origin",
			headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf_token=forged"}).then(r => r.status)`, chromedp.EvalAwaitPromise)
		if status != http.StatusForbidden {
			t.Errorf("forged POST: status %d, want 403", status)
		}
		ep, err := s.store.GetEndpoint(context.Background(), appID, failingID)
		if err != nil || ep.Disabled {
			t.Errorf("after the forged POST the endpoint is disabled %v (%v), want enabled", ep != nil && ep.Disabled, err)
		}
	})

	step("an expired link, and a session whose link is revoked, show the expired page", func(t *testing.T) {
		const want = "This link has expired — open Acme Webhooks again from your dashboard."
		token := s.appToken(t, appID, false, webhook.Capabilities...)
		if err := s.store.ExpireAppTokens(context.Background(), appID, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		b.embed(t, portal+"#key="+token)
		f = b.frame(t, portal)
		f.waitText(t, "main", want)
		if p := f.path(t); p != "/portal/expired" {
			t.Errorf("the frame is at %q, want /portal/expired", p)
		}
		wantNoInnerScrollbar(t, b, f)
		b.screenshotEmbedded(t, "portal-09-expired")

		// Mid-session: the next page says so.
		live := s.appToken(t, appID, false, webhook.Capabilities...)
		b.embed(t, portal+"#key="+live)
		f = b.frame(t, portal)
		f.waitText(t, "#endpoints", s.receiver.url)
		if err := s.store.DeleteAppToken(context.Background(), authtoken.EncodeHash(authtoken.Hash(live))); err != nil {
			t.Fatal(err)
		}
		f.click(t, `header nav a[href$="/msg"]`)
		f.wantText(t, "main", want)
	})

	step("the admin dashboard refuses to be framed", func(t *testing.T) {
		b.embed(t, s.url+"/signin")
		f := b.frame(t, s.url+"/signin")
		// Chromium replaces a frame its CSP refuses with an error page.
		f.waitText(t, "body", "refused to connect")
		if got := f.text(t, "body"); strings.Contains(got, "Admin token") {
			t.Errorf("the admin sign-in page rendered in the frame: %q", got)
		}
		if got := eval[int](t, b, `window.resizes.length`); got != 0 {
			t.Errorf("the framed admin page sent %d resizer messages, want none (it must not run)", got)
		}
		b.screenshotEmbedded(t, "portal-10-admin-not-framed")
	})
}
