package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/authtoken"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
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

func TestMemoryPlay(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := NewMemoryPlay(clock)

	if _, err := m.LinkOf(ctx, "t1"); !webhook.IsNotFound(err) {
		t.Errorf("LinkOf of an unknown token: %v, want NotFound", err)
	}
	if err := m.Link(ctx, "t1", PlayLink{AppID: "app_1", EndpointID: "ep_1"}); err != nil {
		t.Fatal(err)
	}
	for i := range PlayKeep + 5 {
		if err := m.Add(ctx, "t1", PlayRequest{Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	reqs, err := m.Requests(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != PlayKeep || string(reqs[0].Body) != fmt.Sprint(PlayKeep+4) || string(reqs[PlayKeep-1].Body) != "5" {
		t.Errorf("kept %d requests from %s to %s, want the newest %d, newest first", len(reqs), reqs[0].Body, reqs[len(reqs)-1].Body, PlayKeep)
	}

	clock.Advance(PlayTTL - time.Second)
	if link, err := m.LinkOf(ctx, "t1"); err != nil || link.EndpointID != "ep_1" {
		t.Errorf("before the TTL: link %+v, %v", link, err)
	}
	clock.Advance(time.Second)
	if reqs, _ := m.Requests(ctx, "t1"); len(reqs) != 0 {
		t.Errorf("after the TTL: %d requests kept", len(reqs))
	}
	if _, err := m.LinkOf(ctx, "t1"); !webhook.IsNotFound(err) {
		t.Errorf("after the TTL: LinkOf = %v, want NotFound", err)
	}

	for i := range maxPlayTokens + 1 {
		clock.Advance(time.Millisecond)
		m.Add(ctx, fmt.Sprint("tok", i), PlayRequest{})
	}
	if reqs, _ := m.Requests(ctx, "tok0"); len(reqs) != 0 {
		t.Errorf("the least recently used token was kept beyond %d tokens", maxPlayTokens)
	}
	if reqs, _ := m.Requests(ctx, fmt.Sprint("tok", maxPlayTokens)); len(reqs) != 1 {
		t.Errorf("the newest token was not kept")
	}
}

func TestPlayReceiver(t *testing.T) {
	h := newHarness(t)
	app := h.createApp("Acme")
	token := h.newPlayToken()
	playURL := h.srv.URL + "/play/" + token
	ep := h.createEndpoint(app, playURL)
	if err := h.play.Link(context.Background(), token, PlayLink{AppID: app.ID, EndpointID: ep.ID}); err != nil {
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
