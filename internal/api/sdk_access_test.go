package api

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/svix/svix-webhooks/go/models"
)

// TestSvixGoSDKAppPortal drives the Authentication API through the
// official Go SDK, as a platform's backend would, on both stores: an
// access link that creates its app, the older dashboard access, then a
// second SDK client with the link's token that sees its app and nothing
// else, logs out, and is cut off by an expire-all of its session.
func TestSvixGoSDKAppPortal(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		_, base, sdk := sdkHarness(t, open)
		admin := sdk(testToken)
		ctx := context.Background()
		check := sdkCheck(t)
		checkURL := func(what, raw, token string) {
			t.Helper()
			u, err := url.Parse(raw)
			if err != nil || !strings.Contains(raw, "/portal#key=") || u.RawQuery != "" || u.Fragment != "key="+token ||
				!strings.HasPrefix(raw, base+"/") {
				t.Errorf("%s: url %q: want %s/portal#key=<token>, no query", what, raw, base)
			}
		}

		access, err := admin.Authentication.AppPortalAccess(ctx, "customer-a", models.AppPortalAccessIn{
			Application: &models.ApplicationIn{Name: "Customer A", Uid: ptr("customer-a")},
			SessionId:   ptr("session-1"),
			Expiry:      ptr(uint64(3600)),
		}, nil)
		check("app portal access creating the app", err)
		checkURL("app portal access", access.Url, access.Token)
		appA, err := admin.Application.Get(ctx, "customer-a")
		check("get the created app", err)
		appB, err := admin.Application.Create(ctx, models.ApplicationIn{Name: "Customer B"}, nil)
		check("create app B", err)
		_, err = admin.Endpoint.Create(ctx, appA.Id, models.EndpointIn{Url: "https://example.com/a"}, nil)
		check("create A's endpoint", err)
		_, err = admin.Endpoint.Create(ctx, appB.Id, models.EndpointIn{Url: "https://example.com/b"}, nil)
		check("create B's endpoint", err)

		dash, err := admin.Authentication.DashboardAccess(ctx, appA.Id, nil)
		check("dashboard access", err)
		checkURL("dashboard access", dash.Url, dash.Token)
		_, err = admin.Authentication.AppPortalAccess(ctx, "customer-c", models.AppPortalAccessIn{}, nil)
		wantSDKStatus(t, "app portal access to an unknown app without application", err, http.StatusNotFound)

		customer := sdk(access.Token)
		eps, err := customer.Endpoint.List(ctx, "customer-a", nil)
		check("list A's endpoints with A's token", err)
		if len(eps.Data) != 1 || eps.Data[0].Url != "https://example.com/a" {
			t.Errorf("A's endpoints: %+v", eps.Data)
		}
		_, err = customer.Endpoint.List(ctx, appB.Id, nil)
		wantSDKStatus(t, "list B's endpoints with A's token", err, http.StatusNotFound)
		_, err = customer.Application.Get(ctx, appB.Id)
		wantSDKStatus(t, "get B with A's token", err, http.StatusNotFound)
		_, err = customer.Application.List(ctx, nil)
		wantSDKStatus(t, "list apps with A's token", err, http.StatusForbidden)
		_, err = customer.Message.Create(ctx, appA.Id, models.MessageIn{EventType: "x", Payload: map[string]any{}}, nil)
		wantSDKStatus(t, "create a message with A's token", err, http.StatusForbidden)
		_, err = customer.EventType.List(ctx, nil)
		check("read the event-type catalog with A's token", err)

		_, err = sdk(dash.Token).Endpoint.List(ctx, appA.Id, nil)
		check("list A's endpoints with the dashboard-access token", err)

		check("logout", customer.Authentication.Logout(ctx, nil))
		_, err = customer.Endpoint.List(ctx, "customer-a", nil)
		wantSDKStatus(t, "a logged-out token", err, http.StatusUnauthorized)
		wantSDKStatus(t, "logout with the admin token", admin.Authentication.Logout(ctx, nil), http.StatusForbidden)

		s1, err := admin.Authentication.AppPortalAccess(ctx, appA.Id, models.AppPortalAccessIn{SessionId: ptr("s1")}, nil)
		check("access for session s1", err)
		s2, err := admin.Authentication.AppPortalAccess(ctx, appA.Id, models.AppPortalAccessIn{
			SessionId:    ptr("s2"),
			Capabilities: []models.AppPortalCapability{models.APPPORTALCAPABILITY_VIEW_BASE},
			ReadOnly:     ptr(true),
		}, nil)
		check("access for session s2", err)
		check("expire-all of session s1", admin.Authentication.ExpireAll(ctx, "customer-a", models.ApplicationTokenExpireIn{SessionIds: []string{"s1"}}, nil))
		_, err = sdk(s1.Token).Endpoint.List(ctx, appA.Id, nil)
		wantSDKStatus(t, "session s1 after its expire-all", err, http.StatusUnauthorized)
		_, err = sdk(s2.Token).Endpoint.List(ctx, appA.Id, nil)
		check("session s2 after s1's expire-all", err)
		_, err = sdk(s2.Token).Endpoint.Create(ctx, appA.Id, models.EndpointIn{Url: "https://example.com/ro"}, nil)
		wantSDKStatus(t, "a read-only token creating an endpoint", err, http.StatusForbidden)
		_, err = sdk(dash.Token).Endpoint.List(ctx, appA.Id, nil)
		check("a token without a session after s1's expire-all", err)

		check("expire-all of the app", admin.Authentication.ExpireAll(ctx, appA.Id, models.ApplicationTokenExpireIn{}, nil))
		_, err = sdk(dash.Token).Endpoint.List(ctx, appA.Id, nil)
		wantSDKStatus(t, "a token after the app's expire-all", err, http.StatusUnauthorized)
		err = admin.Authentication.ExpireAll(ctx, appA.Id, models.ApplicationTokenExpireIn{Expiry: ptr(int64(259201))}, nil)
		wantSDKStatus(t, "expire-all over 72 h", err, http.StatusUnprocessableEntity)
	})
}
