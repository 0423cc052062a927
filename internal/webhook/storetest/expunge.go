package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// testExpungeContent: ExpungeContent empties one message's payload for
// every read, keeps the rest of the message, its delivery and its
// attempts, leaves other messages alone, and answers NotFound for a
// message that is not the app's or has expired; ExpungeAttemptContent
// does the same for one attempt's response.
func testExpungeContent(t *testing.T, e *env) {
	app := e.createApp(t, "")
	other := e.createApp(t, "")
	ep := e.createEndpoint(t, app.ID)
	msg := e.createMessage(t, app.ID, func(m *webhook.Message) {
		m.EventID = "evt-secret"
		m.Channels = []string{"ch"}
		m.Tags = []string{"tag"}
		m.Payload = json.RawMessage(`{"ssn":"123-45-6789"}`)
	}, ep.ID)
	kept := e.createMessage(t, app.ID, nil, ep.ID)
	e.record(t, msg, ep.ID, webhook.StatusFail, 500)
	delivered := e.record(t, msg, ep.ID, webhook.StatusSuccess, 200)

	wantNotFound(t, "ExpungeContent(other app)", e.s.ExpungeContent(e.ctx, other.ID, msg.ID))
	wantNotFound(t, "ExpungeContent(unknown)", e.s.ExpungeContent(e.ctx, app.ID, webhook.NewID(webhook.PrefixMessage)))
	if err := e.s.ExpungeContent(e.ctx, app.ID, msg.ID); err != nil {
		t.Fatalf("ExpungeContent: %v", err)
	}
	if err := e.s.ExpungeContent(e.ctx, app.ID, msg.ID); err != nil {
		t.Errorf("ExpungeContent again: %v, want nil", err)
	}

	want := *msg
	want.Payload = nil
	for _, ref := range []string{msg.ID, msg.EventID} {
		got, err := e.s.GetMessage(e.ctx, app.ID, ref)
		if err != nil {
			t.Fatalf("GetMessage(%s): %v", ref, err)
		}
		if !got.Expunged() {
			t.Errorf("GetMessage(%s).Payload = %s, want empty", ref, got.Payload)
		}
		if d := diff(&want, got); d != "" {
			t.Errorf("GetMessage(%s) (-want +got):\n%s", ref, d)
		}
	}
	page, err := e.s.ListMessages(e.ctx, webhook.MessageFilter{AppID: app.ID, ListOptions: webhook.ListOptions{Ascending: true}})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	if d := diff([]webhook.Message{want, *kept}, page.Items); d != "" {
		t.Errorf("ListMessages (-want +got):\n%s", d)
	}

	// The delivery log survives.
	if d := diff(delivered, e.getDelivery(t, app.ID, msg.ID, ep.ID)); d != "" {
		t.Errorf("GetDelivery after expunge (-want +got):\n%s", d)
	}
	atts, err := e.s.ListAttempts(e.ctx, webhook.AttemptFilter{AppID: app.ID, MsgID: msg.ID})
	if err != nil {
		t.Fatalf("ListAttempts: %v", err)
	}
	if len(atts.Items) != 2 {
		t.Errorf("ListAttempts after expunge: got %d attempts, want 2", len(atts.Items))
	}
	for _, a := range atts.Items {
		if _, err := e.s.GetAttempt(e.ctx, app.ID, msg.ID, a.ID); err != nil {
			t.Errorf("GetAttempt(%s) after expunge: %v", a.ID, err)
		}
	}

	// An attempt's response: only that attempt's, and only its response.
	target, untouched := atts.Items[0], atts.Items[1]
	wantNotFound(t, "ExpungeAttemptContent(other message)", e.s.ExpungeAttemptContent(e.ctx, app.ID, kept.ID, target.ID))
	wantNotFound(t, "ExpungeAttemptContent(unknown)", e.s.ExpungeAttemptContent(e.ctx, app.ID, msg.ID, webhook.NewID(webhook.PrefixAttempt)))
	if err := e.s.ExpungeAttemptContent(e.ctx, app.ID, msg.ID, target.ID); err != nil {
		t.Fatalf("ExpungeAttemptContent: %v", err)
	}
	wantAtt := target
	wantAtt.Response = webhook.ExpungedResponse
	gotAtt, err := e.s.GetAttempt(e.ctx, app.ID, msg.ID, target.ID)
	if err != nil {
		t.Fatalf("GetAttempt(expunged): %v", err)
	}
	if d := diff(&wantAtt, gotAtt); d != "" {
		t.Errorf("GetAttempt after ExpungeAttemptContent (-want +got):\n%s", d)
	}
	listed, err := e.s.ListAttempts(e.ctx, webhook.AttemptFilter{AppID: app.ID, EndpointID: ep.ID})
	if err != nil {
		t.Fatalf("ListAttempts: %v", err)
	}
	for _, a := range listed.Items {
		want := a.ID == target.ID
		if got := a.Response == webhook.ExpungedResponse; got != want {
			t.Errorf("ListAttempts: attempt %s response %q; expunged %v, want %v", a.ID, a.Response, got, want)
		}
	}

	// Past their retention, messages and attempts are gone: nothing left
	// to expunge.
	e.clock.Set(untouched.ExpiresAt.Add(time.Millisecond))
	wantNotFound(t, "ExpungeContent(expired)", e.s.ExpungeContent(e.ctx, app.ID, kept.ID))
	wantNotFound(t, "ExpungeAttemptContent(expired)", e.s.ExpungeAttemptContent(e.ctx, app.ID, msg.ID, untouched.ID))
}
