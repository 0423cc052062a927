package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hookstep/hookstep/internal/api"
	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/localqueue"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir receives the screenshots of the main pages (ignored by git).
const screenshotDir = "testdata/output"

// stack is all of local mode in this process: the SQLite store, the
// delivery engine with the real sender over the local queue, and the API
// and the dashboard on one test server, composed as functions/local does.
type stack struct {
	url      string
	receiver *receiver
	store    *sqlite.Store
}

// startStack starts local mode; opts change the dashboard's Config.
func startStack(t *testing.T, opts ...harnessOption) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	clock := webhook.SystemClock{}
	store := openStore(t, clock)
	seedCatalog(t, store, clock.Now())
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))

	var bg sync.WaitGroup
	svc := &delivery.Service{
		Store:  store,
		Sender: sender.New(sender.Config{Timeout: 5 * time.Second, AllowPrivate: true}),
		// One quick retry, then the delivery fails: the test sees the
		// final states without waiting minutes.
		Schedule: webhook.Schedule{20 * time.Millisecond},
		Clock:    clock,
		Logger:   logger,
		Go: func(task func(context.Context)) {
			bg.Add(1)
			go func() { defer bg.Done(); task(ctx) }()
		},
	}
	queue := localqueue.New(store, svc.AttemptNext, clock, logger, localqueue.Config{Workers: 4, Lease: 30 * time.Second, Poll: 50 * time.Millisecond})
	svc.Dispatcher = queue
	bg.Add(1)
	go func() { defer bg.Done(); queue.Run(ctx) }()
	t.Cleanup(func() { cancel(); bg.Wait() })

	tokenHash := authtoken.Hash(testToken)
	apiHandler := api.New(api.Config{Store: store, Deliveries: svc, Clock: clock, TokenHash: tokenHash,
		Logger: logger, AllowPrivateTargets: true})
	cfg := Config{Store: store, Deliveries: svc, Clock: clock, TokenHash: tokenHash,
		Logger: logger, AllowPrivateTargets: true, Play: play.NewMemory(clock)}
	for _, o := range opts {
		o(&cfg)
	}
	dashboard := New(cfg)
	// /api/ → the API, everything else → the dashboard. Not an
	// http.ServeMux: it would redirect the "//api/..." paths that SDKs
	// send, which the API accepts as they are.
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := "/" + strings.TrimLeft(r.URL.Path, "/"); p == "/api" || strings.HasPrefix(p, "/api/") {
			apiHandler.ServeHTTP(w, r)
			return
		}
		dashboard.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)

	rcv := &receiver{}
	rcv.status.Store(http.StatusInternalServerError)
	rsrv := httptest.NewServer(rcv)
	t.Cleanup(rsrv.Close)
	rcv.url = rsrv.URL + "/hooks"
	return &stack{url: srv.URL, receiver: rcv, store: store}
}

// receiver is a webhook receiver on 127.0.0.1 that answers with a status
// the test sets: 500 ("boom") until it is fixed.
type receiver struct {
	url    string
	status atomic.Int32
	mu     sync.Mutex
	got    map[string]int // msg id → the last status answered
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	code := int(rc.status.Load())
	rc.mu.Lock()
	if rc.got == nil {
		rc.got = map[string]int{}
	}
	rc.got[r.Header.Get("webhook-id")] = code
	rc.mu.Unlock()
	w.WriteHeader(code)
	if code >= 500 {
		io.WriteString(w, "boom: the receiver is down")
		return
	}
	io.WriteString(w, "thanks")
}

func (rc *receiver) answered(msgID string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.got[msgID]
}

// api calls the management API with the admin token and decodes the reply.
func (s *stack) api(t *testing.T, method, path string, body any) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text := readBody(t, resp)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, text)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, text)
	}
	return out
}

// sendMessage publishes a message through the API and returns its id.
func (s *stack) sendMessage(t *testing.T, appID, eventType, marker string) string {
	t.Helper()
	out := s.api(t, http.MethodPost, "/api/v1/app/"+appID+"/msg", map[string]any{
		"eventType": eventType, "payload": map[string]any{"type": eventType, "marker": marker}})
	return out["id"].(string)
}

// browser drives a headless Chromium.
type browser struct {
	ctx    context.Context
	base   string
	frames *[]context.CancelFunc // of the contexts attached to frames, ended with the browser
}

// needChromium skips the test when Chromium is not installed, or fails it
// when HOOKSTEP_REQUIRE_CHROMIUM=1 (as in CI).
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		msg := fmt.Sprintf("browser tests need %s (apt-get install chromium): %v", chromiumPath, err)
		if os.Getenv("HOOKSTEP_REQUIRE_CHROMIUM") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// startBrowser starts Chromium headless, with a fresh profile and without
// any background networking; extra adds options.
func startBrowser(t *testing.T, base string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("dns-prefetch-disable", true),
		// Every host name but the test servers' address (and localhost,
		// which is the same) fails to resolve: nothing can leave the
		// machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.Flag("lang", "en-US"),
		// A time zone other than UTC, to see times converted.
		chromedp.Env("TZ=Asia/Tokyo"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	var frames []context.CancelFunc
	t.Cleanup(func() {
		for _, cancel := range frames {
			cancel()
		}
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{ctx: ctx, base: base, frames: &frames}
}

func (b *browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// open loads a dashboard path.
func (b *browser) open(t *testing.T, path string) {
	t.Helper()
	b.do(t, chromedp.Navigate(b.base+path))
}

// submit clicks a button or link that loads a new page, and waits for it.
func (b *browser) submit(t *testing.T, sel string) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel)))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// text returns the visible text of the first element matching sel,
// waiting for one to exist. It reads the DOM in one step, so a part of
// the page that replaces itself (Play's list) cannot vanish mid-read.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := b.tryText(sel, 10*time.Second)
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// tryText is text that reports failure instead of failing the test. It
// retries errors too: just after a navigation the browser may still be
// switching the page's JavaScript context.
func (b *browser) tryText(sel string, wait time.Duration) (string, error) {
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? [e.innerText] : []; })()`, jsString(sel))
	deadline := time.Now().Add(wait)
	for {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](js))
		if err == nil && len(s) == 1 {
			return s[0], nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("no element matches %s", sel)
			}
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// value returns the value of an input.
func (b *browser) value(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("value of %s: %v", sel, err)
	}
	return s
}

// wantText fails unless the element's text contains every string.
func (b *browser) wantText(t *testing.T, sel string, want ...string) {
	t.Helper()
	got := b.text(t, sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Fatalf("%s shows %q, want it to contain %q", sel, got, w)
		}
	}
}

// waitText waits, without reloading, until the element's text contains
// want (the page updates itself).
func (b *browser) waitText(t *testing.T, sel, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := b.tryText(sel, 5*time.Second)
		if err == nil && strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q in %s: it shows %q (err %v)", want, sel, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reloadUntil reloads the page until the element's text contains every
// string (deliveries happen in the background).
func (b *browser) reloadUntil(t *testing.T, sel string, want ...string) {
	t.Helper()
	b.untilShown(t, sel, want, func() { b.do(t, chromedp.Sleep(150*time.Millisecond), chromedp.Reload()) })
}

// untilShown calls reload until the element's text contains every string
// of want, for up to 20 s.
func (b *browser) untilShown(t *testing.T, sel string, want []string, reload func()) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := b.tryText(sel, 5*time.Second)
		if err == nil && containsAll(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s shows %q, want it to contain %q (err %v)", sel, got, want, err)
		}
		reload()
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// screenshot saves the whole page as testdata/output/<name>.png.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	saveScreenshot(t, name, png, err)
}

// saveScreenshot writes a capture, or fails t with its error.
func saveScreenshot(t *testing.T, name string, png []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser walks through every flow of the seed page in Chromium,
// against a full local stack: sign in, add an endpoint with Use Play, see
// a message arrive in Play with a verified signature and in the attempts
// log, watch an endpoint fail, resend, recover, disable and enable, rotate
// the secret, send an example, and delete. Each step checks what the page
// shows.
func TestBrowser(t *testing.T) {
	needChromium(t)
	s := startStack(t)
	b := startBrowser(t, s.url)
	app := s.api(t, http.MethodPost, "/api/v1/app", map[string]any{"name": "Acme Support", "uid": "acme"})
	appID := app["id"].(string)
	var playEndpoint, playURL, failingEndpoint, msg1, msg2 string

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("sign in", func(t *testing.T) {
		b.open(t, "/app/acme")
		b.wantText(t, "h1", "Sign in")
		b.do(t, chromedp.SendKeys(chromedp.ID("token"), "hsk_not-the-token"))
		b.submit(t, "form button[type=submit].primary")
		b.wantText(t, "#token-error", "That is not the admin token")
		b.screenshot(t, "01-sign-in-error")
		b.do(t, chromedp.SendKeys(chromedp.ID("token"), testToken))
		b.submit(t, "form button[type=submit].primary")
		// Back to the page asked for, by uid.
		b.wantText(t, "h1", "Acme Support")
		b.wantText(t, "main", "No endpoints yet")
		b.open(t, "/")
		b.wantText(t, "main", "Acme Support", appID, "acme")
		b.screenshot(t, "02-apps")
	})

	step("add an endpoint with Use Play", func(t *testing.T) {
		b.open(t, "/app/"+appID)
		b.submit(t, "a.button.primary")
		b.wantText(t, "h1", "Add Endpoint")
		checked, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll('input[name=event_types]:checked').length`))
		if err != nil || checked != 5 {
			t.Fatalf("%d event types checked by default (%v), want all 5", checked, err)
		}
		// A bad URL is refused, with the reason next to the field.
		b.do(t, chromedp.SendKeys(chromedp.ID("url"), "ftp://files.example/in"))
		b.submit(t, "#create")
		b.wantText(t, "#url-error", "scheme must be http or https")
		b.screenshot(t, "03-add-endpoint-error")
		b.do(t, chromedp.Click(chromedp.ID("use-play")))
		playURL = b.value(t, "#url")
		if !strings.HasPrefix(playURL, s.url+"/play/") {
			t.Fatalf("Use Play filled in %q, want a Play URL of %s", playURL, s.url)
		}
		b.do(t, chromedp.SendKeys(chromedp.ID("description"), "Play, for trying things out"))
		b.screenshot(t, "04-add-endpoint-play")
		b.submit(t, "#create")
		b.wantText(t, ".notice", "Endpoint created.")
		b.wantText(t, "#endpoint-url", playURL)
		b.wantText(t, "#endpoint-status", "Enabled")
		b.wantText(t, "#event-types", "all, including types added later")
		loc, err := chromedp.Run(b.ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		playEndpoint = strings.TrimSuffix(loc[strings.LastIndex(loc, "/")+1:], "?done=created")
	})

	step("a message arrives in Play, signature verified", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/"+playEndpoint)
		b.submit(t, ".play-note a")
		b.wantText(t, "main", "For testing only")
		b.wantText(t, "#play-requests", "Waiting for requests")
		msg := s.sendMessage(t, appID, "v1.end_user.created", "hello-play")
		// The page polls: no reload.
		b.waitText(t, "#play-requests", "Signature verified")
		b.wantText(t, "#play-requests", "hello-play", "Requests (1)")
		b.do(t, chromedp.Click(chromedp.CSS(".play-request summary")))
		b.wantText(t, ".play-request", "webhook-signature", "svix-id", msg)
		b.screenshot(t, "05-play")
	})

	step("the attempts log shows the delivery", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/"+playEndpoint)
		b.reloadUntil(t, "#attempts", "v1.end_user.created", "Succeeded", "200")
		b.do(t, chromedp.Click(chromedp.CSS("#attempts .log-row summary")))
		b.wantText(t, "#attempts .request-body", "hello-play")
		b.wantText(t, "#attempts .response-body", `"received":true`)
		// Times are shown in the viewer's zone (Tokyo), not the UTC fallback.
		if got := b.text(t, "#attempts time"); strings.Contains(got, "UTC") || got == "" {
			t.Errorf("attempt time shows %q, want local time", got)
		}
		b.wantText(t, "#stats", "100% (1 of 1)")
		b.screenshot(t, "06-endpoint-attempts")
	})

	step("an endpoint that answers 500 is failing", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/new")
		b.do(t, chromedp.SendKeys(chromedp.ID("url"), s.receiver.url))
		b.submit(t, "#create")
		b.wantText(t, ".notice", "Endpoint created.")
		loc, err := chromedp.Run(b.ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		failingEndpoint = strings.TrimSuffix(loc[strings.LastIndex(loc, "/")+1:], "?done=created")
		msg1 = s.sendMessage(t, appID, "v1.conversation.ended", "fail-one")
		msg2 = s.sendMessage(t, appID, "v1.conversation.ended", "fail-two")
		b.reloadUntil(t, "#stats", "0% (0 of 2)")
		b.wantText(t, "#endpoint-status", "Failing", "since")
		b.wantText(t, "#attempts", "Failed", "500")
		b.do(t, chromedp.Click(chromedp.CSS("#attempts .log-row summary")))
		b.wantText(t, "#attempts .response-body", "boom: the receiver is down")
		b.screenshot(t, "07-endpoint-failing")

		b.open(t, "/app/"+appID)
		b.wantText(t, "#endpoints", s.receiver.url, "Failing", "0% (0 of 2)", playURL, "Enabled", "100% (3 of 3)")
		b.screenshot(t, "08-app-endpoints")
	})

	step("resend from the message log's menu", func(t *testing.T) {
		s.receiver.status.Store(http.StatusOK) // the receiver is back
		b.open(t, "/app/"+appID+"/msg")
		b.do(t, chromedp.SetValue(chromedp.ID("filter-status"), "fail"))
		b.submit(t, ".filters button")
		b.wantText(t, "#messages", msg1, msg2, "1 of 2 delivered, 1 failed")
		b.screenshot(t, "09-messages-failed")
		b.do(t,
			chromedp.Click(chromedp.CSS("#row-"+msg1+" summary")),
			chromedp.SetValue(chromedp.ID("resend-"+msg1), failingEndpoint),
		)
		b.screenshot(t, "10-messages-resend-menu")
		b.submit(t, "#row-"+msg1+" form button")
		b.wantText(t, ".notice", "Message resent")
		b.wantText(t, "h1", msg1)
		b.reloadUntil(t, "#deliveries", "2 of 2 delivered")
		b.wantText(t, "#payload", "fail-one")
		b.screenshot(t, "11-message")
		if got := s.receiver.answered(msg1); got != http.StatusOK {
			t.Errorf("receiver answered %d to the resend, want 200", got)
		}
	})

	step("recover failed messages of the last hour", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/"+failingEndpoint)
		b.do(t, chromedp.Click(chromedp.CSS("details.menu summary")))
		b.submit(t, "details.menu a[href$='/recover']")
		b.wantText(t, "h1", "Recover Failed Messages")
		b.wantText(t, "#recover-form", "Last hour", "Last 6 hours", "Last 24 hours", "Last 7 days", "Since a time of my choosing")
		b.screenshot(t, "12-recover")
		b.submit(t, "#recover")
		b.wantText(t, ".notice", "Recovery started")
		b.reloadUntil(t, "#endpoint-status", "Enabled")
		b.open(t, "/app/"+appID+"/msg/"+msg2)
		b.reloadUntil(t, "#deliveries", "2 of 2 delivered")
		if got := s.receiver.answered(msg2); got != http.StatusOK {
			t.Errorf("receiver answered %d to the recovered message, want 200", got)
		}
	})

	step("disable and enable", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/"+failingEndpoint)
		b.do(t, chromedp.Click(chromedp.CSS("details.menu summary")))
		b.submit(t, "details.menu form[action$='/disable'] button")
		b.wantText(t, ".notice", "Endpoint disabled.")
		b.wantText(t, "#endpoint-status", "Disabled", "since", "Disabled by hand")
		b.screenshot(t, "13-endpoint-disabled")
		b.submit(t, "#enable")
		b.wantText(t, ".notice", "Endpoint enabled.")
		b.wantText(t, "#endpoint-status", "Enabled")
	})

	step("rotate the secret", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/"+playEndpoint)
		b.submit(t, "#reveal-secret")
		before := b.text(t, "#secret-value")
		if !strings.HasPrefix(before, "whsec_") {
			t.Fatalf("revealed secret %q", before)
		}
		b.submit(t, "#rotate-secret")
		b.wantText(t, ".notice", "Secret rotated")
		b.submit(t, "#reveal-secret")
		after := b.text(t, "#secret-value")
		if !strings.HasPrefix(after, "whsec_") || after == before {
			t.Fatalf("secret after rotation = %q, before %q: want a new one", after, before)
		}
		// Play still verifies: the message is signed with the new secret
		// (and the old one, during its grace period).
		s.sendMessage(t, appID, "v1.end_user.updated", "after-rotation")
		b.open(t, "/play/"+playURL[strings.LastIndex(playURL, "/")+1:])
		b.waitText(t, "#play-requests", "after-rotation")
		b.wantText(t, ".play-request", "after-rotation", "Signature verified")
	})

	step("send an example from the catalog", func(t *testing.T) {
		b.open(t, "/event-types")
		b.wantText(t, "main", "v1.conversation.message", "v1.end_user.created", "Example payload")
		b.wantText(t, "#et-v1\\.end_user\\.created", "end_user_id")
		b.screenshot(t, "14-event-types")
		sel := "#et-v1\\.conversation\\.message"
		b.do(t, chromedp.SetValue(chromedp.CSS(sel+" select"), appID+"/"+playEndpoint))
		b.submit(t, sel+" form button")
		b.wantText(t, ".notice", "Example sent")
		b.wantText(t, "main", "v1.conversation.message")
		b.open(t, "/play/"+playURL[strings.LastIndex(playURL, "/")+1:])
		b.waitText(t, ".play-request", "v1.conversation.message")
		b.wantText(t, ".play-request", "Signature verified")
	})

	step("filter the messages log by event type", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/msg?event_type=v1.conversation.ended")
		b.wantText(t, "#messages", msg1, msg2)
		if got := b.text(t, "#messages"); strings.Contains(got, "v1.end_user") {
			t.Errorf("filtered log shows other types: %q", got)
		}
	})

	step("delete an endpoint", func(t *testing.T) {
		b.open(t, "/app/"+appID+"/endpoint/"+failingEndpoint)
		b.do(t, chromedp.Click(chromedp.CSS("details.menu summary")))
		b.submit(t, "details.menu a.danger")
		b.wantText(t, "main", "Delete endpoint?", s.receiver.url, "cannot be undone")
		b.submit(t, "#confirm-delete")
		b.wantText(t, ".notice", "Endpoint deleted.")
		if got := b.text(t, "#endpoints"); strings.Contains(got, s.receiver.url) {
			t.Errorf("the app still lists the deleted endpoint: %q", got)
		}
	})
}
