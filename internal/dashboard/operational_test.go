package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// opsRecorder is an operational.Publisher that keeps the events, and
// counts the apps the emitter reads.
type opsRecorder struct {
	msgs     []*webhook.Message
	appReads atomic.Int64
}

// countAppReads is the emitter's store: it counts GetApp calls into n.
type countAppReads struct {
	webhook.Store
	n *atomic.Int64
}

func (s countAppReads) GetApp(ctx context.Context, idOrUID string) (*webhook.App, error) {
	s.n.Add(1)
	return s.Store.GetApp(ctx, idOrUID)
}

func (r *opsRecorder) Publish(_ context.Context, msg *webhook.Message) error {
	r.msgs = append(r.msgs, msg)
	return nil
}

// events returns "type endpointId [trigger]" of each event.
func (r *opsRecorder) events(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, m := range r.msgs {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				EndpointID string `json:"endpointId"`
				Trigger    string `json:"trigger"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(ev.Type+" "+ev.Data.EndpointID+" "+ev.Data.Trigger))
	}
	return out
}

// withOps sends the operational webhooks to rec, with the reserved app in
// place (an operational endpoint exists); rec counts the emitter's app
// reads.
func withOps(rec *opsRecorder) harnessOption {
	return func(c *Config) {
		ctx, now := context.Background(), c.Clock.Now()
		if _, err := operational.EnsureApp(ctx, c.Store, now); err != nil {
			panic(err)
		}
		if err := c.Store.CreateEndpoint(ctx, &webhook.Endpoint{ID: "ep_ops", AppID: operational.AppID, URL: "https://ops.example/hooks",
			Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdef01234567")}}, Version: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
			panic(err)
		}
		c.Operational = operational.New(operational.Config{Store: countAppReads{c.Store, &rec.appReads}, Publisher: rec, Clock: c.Clock})
	}
}

// TestOperationalEventsOfDashboardActions: the admin's and the portal's
// endpoint actions send the operational events the API's do, and the
// reserved app is nowhere to be seen.
func TestOperationalEventsOfDashboardActions(t *testing.T) {
	rec := &opsRecorder{}
	h := newHarness(t, withOps(rec), withPortal("Acme webhooks"))
	h.signIn()
	app := h.createApp("Acme")

	resp, body := h.post("/app/"+app.ID+"/endpoint", url.Values{"url": {"https://example.com/hook"}, "event_types": {"v1.end_user.created"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create endpoint: %d %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	epID := loc[strings.LastIndex(loc, "/")+1 : strings.Index(loc, "?")]
	E := "/app/" + app.ID + "/endpoint/" + epID
	h.post(E+"/disable", nil)
	h.post(E+"/enable", nil)

	// The portal's customer disables it too.
	c := h.customer()
	c.open(h.appToken(app, false, webhook.CapViewBase, webhook.CapManageEndpoint))
	if resp, body := c.post("/portal"+E+"/disable", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("portal disable: %d %s", resp.StatusCode, body)
	}
	h.post(E+"/delete", nil)

	want := []string{
		"endpoint.created " + epID,
		"endpoint.updated " + epID, "endpoint.disabled " + epID + " manual",
		"endpoint.updated " + epID, "endpoint.enabled " + epID,
		"endpoint.updated " + epID, "endpoint.disabled " + epID + " manual",
		"endpoint.deleted " + epID,
	}
	if got := rec.events(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, page := h.get("/")
	if strings.Contains(page, operational.AppID) {
		t.Errorf("the apps page shows the reserved app %s", operational.AppID)
	}
	if resp, _ := h.get("/app/" + operational.AppID); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /app/%s: %d, want 404", operational.AppID, resp.StatusCode)
	}
	_, page = h.get("/event-types")
	if strings.Contains(page, operational.AppID) {
		t.Errorf("the event types page offers the reserved app")
	}
}

// TestOperationalEventsReuseTheLoadedApp: each endpoint change of the
// dashboard hands the emitter the app the page loaded, so announcing the
// change reads no app again.
func TestOperationalEventsReuseTheLoadedApp(t *testing.T) {
	rec := &opsRecorder{}
	h := newHarness(t, withOps(rec))
	h.signIn()
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://example.com/hook")
	E := "/app/" + app.ID + "/endpoint/" + ep.ID
	for _, action := range []struct {
		path string
		form url.Values
	}{
		{E + "/event-types", url.Values{"event_types": {"v1.end_user.created"}}},
		{E + "/secret/rotate", nil},
		{E + "/headers", url.Values{"name": {"X-A"}, "value": {"a"}}},
		{E + "/headers/delete", url.Values{"name": {"X-A"}}},
		{E + "/disable", nil},
		{E + "/enable", nil},
	} {
		if resp, body := h.post(action.path, action.form); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %s", action.path, resp.StatusCode, body)
		}
	}
	updated := "endpoint.updated " + ep.ID
	want := []string{updated, updated, updated, updated,
		updated, "endpoint.disabled " + ep.ID + " manual", updated, "endpoint.enabled " + ep.ID}
	if got := rec.events(t); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := rec.appReads.Load(); n != 0 {
		t.Errorf("announcing the changes read the app %d times, want 0: the dashboard has it", n)
	}
}
