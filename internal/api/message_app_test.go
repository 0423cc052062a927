package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/svix/svix-webhooks/go/models"
)

// TestSvixGoSDKMessageCreatesItsApp: MessageIn.application creates the
// path's app when it does not exist (Svix's implicit creation), on both
// stores; an existing app ignores it; a uid that disagrees with the path,
// or an invalid application, is a 422 that creates nothing; without an
// application an unknown app stays a 404.
func TestSvixGoSDKMessageCreatesItsApp(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		_, _, client := sdkHarness(t, open)
		sdk := client(testToken)
		var err error
		ctx := context.Background()
		check := sdkCheck(t)
		payload := map[string]any{"n": 1.0}

		_, err = sdk.Message.Create(ctx, "cust-1", models.MessageIn{EventType: "user.created", Payload: payload}, nil)
		wantSDKStatus(t, "message to an unknown app without application", err, http.StatusNotFound)

		msg, err := sdk.Message.Create(ctx, "cust-1", models.MessageIn{EventType: "user.created", Payload: payload,
			Application: &models.ApplicationIn{Name: "Customer 1", Metadata: &map[string]string{"tier": "gold"}}}, nil)
		check("message creating its app (uid from the path)", err)
		app, err := sdk.Application.Get(ctx, "cust-1")
		check("get the created app", err)
		if app.Name != "Customer 1" || app.Uid == nil || *app.Uid != "cust-1" || app.Metadata["tier"] != "gold" {
			t.Errorf("created app: %+v, want name Customer 1, uid cust-1, metadata tier=gold", app)
		}
		got, err := sdk.Message.Get(ctx, app.Id, msg.Id, nil)
		check("the message is the new app's", err)
		if got.Id != msg.Id {
			t.Errorf("message %s, want %s", got.Id, msg.Id)
		}

		_, err = sdk.Message.Create(ctx, "cust-1", models.MessageIn{EventType: "user.created", Payload: payload,
			Application: &models.ApplicationIn{Name: "Renamed", Uid: ptr("something-else")}}, nil)
		check("message to an existing app ignores application", err)
		if again, _ := sdk.Application.Get(ctx, "cust-1"); again == nil || again.Name != "Customer 1" {
			t.Errorf("existing app after a message with application: %+v, want it unchanged", again)
		}
		list, err := sdk.Message.List(ctx, "cust-1", nil)
		check("list messages", err)
		if len(list.Data) != 2 {
			t.Errorf("cust-1 has %d messages, want 2", len(list.Data))
		}

		_, err = sdk.Message.Create(ctx, "cust-2", models.MessageIn{EventType: "user.created", Payload: payload,
			Application: &models.ApplicationIn{Name: "Customer 2", Uid: ptr("cust-3")}}, nil)
		wantSDKStatus(t, "application uid other than the path's", err, http.StatusUnprocessableEntity)
		_, err = sdk.Application.Get(ctx, "cust-2")
		wantSDKStatus(t, "no app after a refused message", err, http.StatusNotFound)
	})
}

// TestMessageApplicationValidation: the nested application's problems are
// reported under body.application, and nothing is created.
func TestMessageApplicationValidation(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		app  any
		loc  []string
	}{
		{"NotAnObject", "cust", []string{"body", "application"}},
		{"NoName", map[string]any{"uid": "cust"}, []string{"body", "application", "name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.do("POST", "/api/v1/app/cust/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "application": tc.app})
			wantValidation(t, res, tc.loc)
			wantError(t, h.do("GET", "/api/v1/app/cust", nil), http.StatusNotFound, "not_found")
		})
	}
}
