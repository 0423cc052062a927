package dashboard

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/play"
	"github.com/hookstep/hookstep/internal/signing"
)

func TestPlayTokens(t *testing.T) {
	h := &handler{tokenHash: authtoken.Hash("a")}
	tok := h.newPlayToken()
	if !h.validPlayToken(tok) {
		t.Fatalf("own token %q not valid", tok)
	}
	if tok == h.newPlayToken() {
		t.Error("two tokens are equal")
	}
	other := &handler{tokenHash: authtoken.Hash("b")}
	flipped := []byte(tok)
	flipped[3] ^= 1
	for name, bad := range map[string]string{
		"another admin token's": other.newPlayToken(),
		"changed":               string(flipped),
		"short":                 tok[:20],
		"empty":                 "",
		"not base64":            strings.Repeat("!", len(tok)),
	} {
		if h.validPlayToken(bad) {
			t.Errorf("%s token %q is valid", name, bad)
		}
	}
}

func TestPlayReceiver(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	token := h.newPlayToken()
	playURL := h.srv.URL + "/play/" + token
	ep := h.createEndpoint(app, playURL)
	if err := h.play.Link(context.Background(), token, play.Link{AppID: app.ID, EndpointID: ep.ID}); err != nil {
		t.Fatal(err)
	}
	unlinked := h.newPlayToken()

	send := func(url string, keys [][]byte, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		now := h.clock.Now()
		signing.SetHeaders(req.Header, "msg_play1", now, signing.Sign(keys, "msg_play1", now, []byte(body)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		return resp
	}
	if resp := send(playURL, [][]byte{ep.Keys[0].Key}, `{"n":"good"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("Play answered %d, want 200", resp.StatusCode)
	}
	send(playURL, [][]byte{bytes.Repeat([]byte{7}, 24)}, `{"n":"forged"}`)
	send(h.srv.URL+"/play/"+unlinked, [][]byte{ep.Keys[0].Key}, `{"n":"unlinked"}`)
	if resp := send(h.srv.URL+"/play/made-up", nil, `{}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("made-up token: %d, want 404", resp.StatusCode)
	}

	reqs, err := h.play.Requests(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 {
		t.Fatalf("kept %d requests, want 2", len(reqs))
	}
	if got := reqs[1].Signature; !got.Verified || string(reqs[1].Body) != `{"n":"good"}` {
		t.Errorf("signed request: %+v %s, want verified", got, reqs[1].Body)
	}
	if got := reqs[0].Signature; got.Verified || !got.Checked || got.Detail != "no matching signature" {
		t.Errorf("forged request: %+v, want checked, not verified", got)
	}

	h.signIn()
	resp, page := h.get("/play/" + token)
	wantStatus(t, resp, page, http.StatusOK)
	for _, want := range []string{"For testing only", "Signature verified", "Signature invalid", "&#34;good&#34;", "webhook-signature", playURL} {
		if !strings.Contains(page, want) {
			t.Errorf("Play page lacks %q", want)
		}
	}
	_, page = h.get("/play/" + unlinked + "/requests")
	if !strings.Contains(page, "Signature not checked") || strings.Contains(page, "<html") {
		t.Errorf("the polled fragment of an unlinked URL:\n%s", page)
	}
}
