package delivery_test

import (
	"context"
	"testing"

	"github.com/hookstep/hookstep/internal/delivery"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestAnExpungedMessageIsNeitherSentNorResent: once its payload is
// expunged, a pending run is canceled at its next attempt without a POST
// (an empty body would be signed and sent otherwise), and a resend is a
// bad request.
func TestAnExpungedMessageIsNeitherSentNorResent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 200)
	ep := f.endpoint(t, nil)
	msg := f.publish(t, "v1.end_user.created")
	if err := f.store.ExpungeContent(ctx, f.app.ID, msg.ID); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Attempt(ctx, webhook.Ref{AppID: f.app.ID, MsgID: msg.ID, EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != delivery.Stop || !res.Final {
		t.Errorf("attempt: got %+v, want stop", res)
	}
	if len(f.post.requests) != 0 {
		t.Errorf("got %d requests, want none", len(f.post.requests))
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Status != webhook.StatusCanceled {
		t.Errorf("delivery status: got %v, want %v", d.Status, webhook.StatusCanceled)
	}

	expunged, err := f.store.GetMessage(ctx, f.app.ID, msg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Resend(ctx, expunged, ep); webhook.ErrorKind(err) != webhook.KindBadRequest {
		t.Errorf("resend of an expunged message: got %v, want a bad request", err)
	}
	if d := f.delivery(t, msg.ID, ep.ID); d.Run != 0 {
		t.Errorf("resend started run %d, want none", d.Run)
	}
}
