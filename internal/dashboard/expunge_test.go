package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
)

// TestExpungedMessagePage: after its payload is expunged, a message's page
// and its endpoint's attempt log say so instead of showing a payload, the
// page offers no resend, a resend posted anyway is refused, and the
// delivery log stays.
func TestExpungedMessagePage(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	ep := h.createEndpoint(app, "https://acme.example/hook")
	msg := h.deliver(app, ep, "v1.end_user.created", webhook.StatusFail)
	h.signIn()

	msgPage := "/app/" + app.ID + "/msg/" + msg.ID
	resp, body := h.get(msgPage)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(body, "&#34;n&#34;: 1") || !strings.Contains(body, `id="resend"`) {
		t.Fatalf("before the expunge, the page should show the payload and a resend:\n%s", body)
	}

	if err := h.store.ExpungeContent(context.Background(), app.ID, msg.ID); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{msgPage, "/app/" + app.ID + "/endpoint/" + ep.ID} {
		resp, body = h.get(path)
		wantStatus(t, resp, body, http.StatusOK)
		if strings.Contains(body, "&#34;n&#34;") {
			t.Errorf("%s still shows the payload:\n%s", path, body)
		}
		if !strings.Contains(body, "The payload was expunged") {
			t.Errorf("%s does not say the payload was expunged:\n%s", path, body)
		}
		if !strings.Contains(body, "500") { // the attempt's response code: the log stays
			t.Errorf("%s lost the delivery log:\n%s", path, body)
		}
	}
	_, body = h.get(msgPage)
	if !strings.Contains(body, `id="payload">The payload was expunged`) {
		t.Errorf("the message's payload section does not say it was expunged:\n%s", body)
	}
	if strings.Contains(body, `id="resend"`) {
		t.Errorf("the page of an expunged message offers a resend")
	}
	resp, body = h.post(msgPage+"/resend", url.Values{"endpoint_id": {ep.ID}})
	wantStatus(t, resp, body, http.StatusBadRequest)
	if !strings.Contains(body, "expunged") || len(h.deliveries.resent) != 0 {
		t.Errorf("resend of an expunged message: runs %v, page:\n%s", h.deliveries.resent, body)
	}
}
