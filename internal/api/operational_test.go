package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"

	"github.com/svix/svix-webhooks/go/models"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

const opsPath = "/api/v1/operational-webhook/endpoint"

// withOps gives the server an operational.Emitter that publishes through
// the harness's Deliveries (the real fan-out, no dispatch).
func withOps(c *Config) {
	c.Operational = operational.New(operational.Config{Store: c.Store, Publisher: c.Deliveries, Clock: c.Clock})
}

// opsEvents returns the operational events published so far, oldest
// first: their types and payloads.
func opsEvents(t *testing.T, store webhook.Store) []webhook.Message {
	t.Helper()
	page, err := store.ListMessages(context.Background(), webhook.MessageFilter{
		AppID: operational.AppID, ListOptions: webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}})
	if webhook.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

func eventTypes(msgs []webhook.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.EventType
	}
	return out
}

// TestOperationalEndpointCRUD drives every OperationalWebhookEndpoint
// route and checks the OperationalWebhookEndpointOut shape; the reserved
// app behind them stays invisible to the app routes.
func TestOperationalEndpointCRUD(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open, withOps)
		created := h.must(http.StatusCreated, "POST", opsPath, map[string]any{
			"url": "https://ops.example.com/hook", "uid": "ops-1", "description": "pager",
			"filterTypes": []string{"endpoint.disabled", "message.attempt.exhausted"},
			"metadata":    map[string]string{"team": "sre"}, "throttleRate": 10,
		}).JSON(t)
		id := str(created["id"])
		var keys []string
		for k := range created {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := []string{"createdAt", "description", "disabled", "filterTypes", "id", "metadata", "rateLimit", "throttleRate", "uid", "updatedAt", "url"}
		if !slices.Equal(keys, want) {
			t.Errorf("create: fields %v, want %v (OperationalWebhookEndpointOut)", keys, want)
		}
		var out models.OperationalWebhookEndpointOut
		if err := json.Unmarshal(h.must(http.StatusOK, "GET", opsPath+"/ops-1", nil).Body, &out); err != nil {
			t.Fatal(err)
		}
		if out.Id != id || out.Url != "https://ops.example.com/hook" || out.Description != "pager" ||
			!slices.Equal(out.FilterTypes, []string{"endpoint.disabled", "message.attempt.exhausted"}) ||
			out.Metadata["team"] != "sre" || out.ThrottleRate == nil || *out.ThrottleRate != 10 {
			t.Errorf("get by uid: %+v", out)
		}

		list := h.must(http.StatusOK, "GET", opsPath, nil).Data(t)
		if len(list) != 1 || str(list[0]["id"]) != id {
			t.Errorf("list: %v, want the one endpoint", list)
		}

		h.must(http.StatusOK, "PUT", opsPath+"/"+id, map[string]any{"url": "https://ops.example.com/v2", "description": "pager v2"})
		got := h.must(http.StatusOK, "GET", opsPath+"/"+id, nil).JSON(t)
		if got["url"] != "https://ops.example.com/v2" || got["description"] != "pager v2" || got["filterTypes"] != nil {
			t.Errorf("after PUT: %v, want new url and description and no filter", got)
		}

		secret := str(h.must(http.StatusOK, "GET", opsPath+"/"+id+"/secret", nil).JSON(t)["key"])
		h.must(http.StatusNoContent, "POST", opsPath+"/"+id+"/secret/rotate", map[string]any{})
		rotated := str(h.must(http.StatusOK, "GET", opsPath+"/"+id+"/secret", nil).JSON(t)["key"])
		if secret == "" || rotated == "" || rotated == secret {
			t.Errorf("secret %q rotated to %q, want a new one", secret, rotated)
		}
		const given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		h.must(http.StatusNoContent, "POST", opsPath+"/"+id+"/secret/rotate", map[string]any{"key": given})
		if key := str(h.must(http.StatusOK, "GET", opsPath+"/"+id+"/secret", nil).JSON(t)["key"]); key != given {
			t.Errorf("secret after rotating to a given key: %q, want %q", key, given)
		}

		h.must(http.StatusNoContent, "PUT", opsPath+"/"+id+"/headers", map[string]any{"headers": map[string]string{"X-Team": "sre", "Authorization": "Bearer x"}})
		hd := h.must(http.StatusOK, "GET", opsPath+"/"+id+"/headers", nil).JSON(t)
		if hd["headers"].(map[string]any)["X-Team"] != "sre" || len(hd["sensitive"].([]any)) != 1 {
			t.Errorf("headers: %v, want X-Team shown and Authorization sensitive", hd)
		}

		// The reserved app is nobody's app.
		for _, a := range h.must(http.StatusOK, "GET", "/api/v1/app?limit=250", nil).Data(t) {
			if a["id"] == operational.AppID {
				t.Errorf("app list shows the reserved app %v", a)
			}
		}
		for _, p := range []string{"/api/v1/app/" + operational.AppID, "/api/v1/app/" + operational.AppID + "/endpoint",
			"/api/v1/app/" + operational.AppID + "/endpoint/" + id, "/api/v1/app/" + operational.AppID + "/msg"} {
			h.must(http.StatusNotFound, "GET", p, nil)
		}
		h.must(http.StatusNotFound, "POST", "/api/v1/auth/app-portal-access/"+operational.AppID, map[string]any{})

		// An app's endpoint is not an operational endpoint, nor the reverse.
		app := str(h.createApp(map[string]any{"name": "A"})["id"])
		ep := str(h.createEndpoint(app, map[string]any{})["id"])
		h.must(http.StatusNotFound, "GET", opsPath+"/"+ep, nil)

		h.must(http.StatusNoContent, "DELETE", opsPath+"/"+id, nil)
		h.must(http.StatusNotFound, "GET", opsPath+"/"+id, nil)
		h.must(http.StatusNotFound, "DELETE", opsPath+"/"+id, nil)
		if n := len(h.must(http.StatusOK, "GET", opsPath, nil).Data(t)); n != 0 {
			t.Errorf("list after delete: %d endpoints, want 0", n)
		}
	})
}

// TestOperationalEventsOfHeadersAndSecret: changing an endpoint's headers
// or rotating its secret is an endpoint.updated, and only that even on a
// disabled endpoint (the change flips nothing); the operational endpoints'
// own changes announce nothing.
func TestOperationalEventsOfHeadersAndSecret(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open, withOps)
		appID := str(h.createApp(map[string]any{"name": "Acme"})["id"])
		ops := str(h.must(http.StatusCreated, "POST", opsPath, map[string]any{"url": "https://ops.example.com/all"}).JSON(t)["id"])
		ep := str(h.createEndpoint(appID, map[string]any{"disabled": true})["id"])
		E := "/api/v1/app/" + appID + "/endpoint/" + ep
		seen := len(opsEvents(t, h.store)) // endpoint.created, endpoint.disabled
		updated := []string{"endpoint.updated"}
		for _, tc := range []struct {
			name, method, path string
			body               any
			want               []string
		}{
			{"PutHeaders", "PUT", E + "/headers", map[string]any{"headers": map[string]string{"X-A": "a"}}, updated},
			{"PatchHeaders", "PATCH", E + "/headers", map[string]any{"headers": map[string]string{"X-B": "b"}}, updated},
			{"RotateSecret", "POST", E + "/secret/rotate", map[string]any{}, updated},
			{"OperationalPutHeaders", "PUT", opsPath + "/" + ops + "/headers", map[string]any{"headers": map[string]string{"X-A": "a"}}, nil},
			{"OperationalRotateSecret", "POST", opsPath + "/" + ops + "/secret/rotate", map[string]any{}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if res := h.do(tc.method, tc.path, tc.body); res.Status != http.StatusNoContent {
					t.Fatalf("%s %s: status %d, want 204; body %s", tc.method, tc.path, res.Status, res.Body)
				}
				events := opsEvents(t, h.store)
				events, seen = events[seen:], len(events)
				if got := eventTypes(events); !slices.Equal(got, tc.want) {
					t.Fatalf("events %v, want %v", got, tc.want)
				}
				for _, m := range events {
					var e models.EndpointUpdatedEvent
					if err := json.Unmarshal(m.Payload, &e); err != nil || e.Data.EndpointId != ep || e.Data.AppId != appID {
						t.Errorf("%s payload %s (%v), want endpoint %s of app %s", m.EventType, m.Payload, err, ep, appID)
					}
				}
			})
		}
	})
}

// reservedReads is a store that counts the reads of the reserved app.
type reservedReads struct {
	webhook.Store
	n *int
}

func (s reservedReads) GetApp(ctx context.Context, idOrUID string) (*webhook.App, error) {
	if idOrUID == operational.AppID {
		*s.n++
	}
	return s.Store.GetApp(ctx, idOrUID)
}

// TestOperationalRoutesReadTheReservedAppOnce: an operational webhook
// route reads the reserved app once (opsRoute, which creates it on first
// use) and its endpoint handler works on that copy.
func TestOperationalRoutesReadTheReservedAppOnce(t *testing.T) {
	var reads int
	h := newHarness(t, func(c *Config) { c.Store = reservedReads{c.Store, &reads} })
	id := str(h.must(http.StatusCreated, "POST", opsPath, map[string]any{"url": "https://ops.example.com/hook"}).JSON(t)["id"])
	if reads != 1 {
		t.Errorf("POST %s: %d reads of the reserved app, want 1", opsPath, reads)
	}
	E := opsPath + "/" + id
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", opsPath, nil, http.StatusOK},
		{"GET", E, nil, http.StatusOK},
		{"PUT", E, map[string]any{"url": "https://ops.example.com/other"}, http.StatusOK},
		{"GET", E + "/secret", nil, http.StatusOK},
		{"POST", E + "/secret/rotate", map[string]any{}, http.StatusNoContent},
		{"GET", E + "/headers", nil, http.StatusOK},
		{"PUT", E + "/headers", map[string]any{"headers": map[string]string{"X-A": "a"}}, http.StatusNoContent},
		{"DELETE", E, nil, http.StatusNoContent},
	} {
		reads = 0
		h.must(tc.want, tc.method, tc.path, tc.body)
		if reads != 1 {
			t.Errorf("%s %s: %d reads of the reserved app, want 1", tc.method, tc.path, reads)
		}
	}
}

// TestOperationalEndpointBadInput: what Svix refuses is a 4xx in the API's
// error format, never a 5xx (the harness fails on those).
func TestOperationalEndpointBadInput(t *testing.T) {
	h := newHarness(t, withOps)
	h.createEventType("user.created")
	id := str(h.must(http.StatusCreated, "POST", opsPath, map[string]any{"url": "https://ops.example.com/hook"}).JSON(t)["id"])
	cases := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"no url", "POST", opsPath, map[string]any{}, 422},
		{"not a url", "POST", opsPath, map[string]any{"url": "nope"}, 422},
		{"a customer event type", "POST", opsPath, map[string]any{"url": "https://x.example.com", "filterTypes": []string{"user.created"}}, 422},
		{"unknown event type", "POST", opsPath, map[string]any{"url": "https://x.example.com", "filterTypes": []string{"endpoint.exploded"}}, 422},
		{"channels", "POST", opsPath, map[string]any{"url": "https://x.example.com", "channels": []string{"a"}}, 422},
		{"bad secret", "POST", opsPath, map[string]any{"url": "https://x.example.com", "secret": "plain"}, 422},
		{"uid with an id prefix", "POST", opsPath, map[string]any{"url": "https://x.example.com", "uid": "ep_x"}, 422},
		{"not JSON", "POST", opsPath, "{", 422},
		{"array body", "POST", opsPath, "[]", 422},
		{"PUT without url", "PUT", opsPath + "/" + id, map[string]any{"description": "x"}, 422},
		{"PUT unknown", "PUT", opsPath + "/ep_nope", map[string]any{"url": "https://x.example.com"}, 404},
		{"GET unknown", "GET", opsPath + "/ep_nope", nil, 404},
		{"rotate to a bad key", "POST", opsPath + "/" + id + "/secret/rotate", map[string]any{"key": "nope"}, 422},
		{"headers missing", "PUT", opsPath + "/" + id + "/headers", map[string]any{}, 422},
		{"reserved header", "PUT", opsPath + "/" + id + "/headers", map[string]any{"headers": map[string]string{"webhook-id": "x"}}, 422},
		{"bad limit", "GET", opsPath + "?limit=0", nil, 422},
		{"PATCH is not a route", "PATCH", opsPath + "/" + id, map[string]any{}, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.t = t
			res := h.do(c.method, c.path, c.body)
			if res.Status != c.want {
				t.Fatalf("status %d, want %d; body %s", res.Status, c.want, res.Body)
			}
			if body := res.JSON(t); body["detail"] == nil {
				t.Errorf("body %s is not in the error format", res.Body)
			}
		})
	}
}

// TestOperationalEventsOfEndpointChanges: each change of a customer's
// endpoint through the API is an event of Svix's shape, delivered to the
// operational endpoints whose filter takes it and to no customer endpoint;
// changes of operational endpoints make no events.
func TestOperationalEventsOfEndpointChanges(t *testing.T) {
	eachStore(t, func(t *testing.T, open storeOpener) {
		h := newHarnessOn(t, open, withOps)
		app := h.createApp(map[string]any{"name": "Acme", "uid": "acme"})
		appID := str(app["id"])

		// Before any operational endpoint, nothing is published.
		before := str(h.createEndpoint(appID, map[string]any{})["id"])
		if got := opsEvents(t, h.store); len(got) != 0 {
			t.Fatalf("events before any operational endpoint: %v", eventTypes(got))
		}

		all := str(h.must(http.StatusCreated, "POST", opsPath, map[string]any{"url": "https://ops.example.com/all"}).JSON(t)["id"])
		disabledOnly := str(h.must(http.StatusCreated, "POST", opsPath, map[string]any{
			"url": "https://ops.example.com/disabled", "filterTypes": []string{"endpoint.disabled"}}).JSON(t)["id"])
		h.must(http.StatusOK, "PUT", opsPath+"/"+all, map[string]any{"url": "https://ops.example.com/all"})
		if got := opsEvents(t, h.store); len(got) != 0 {
			t.Fatalf("operational endpoints' own changes made events: %v", eventTypes(got))
		}

		ep := str(h.createEndpoint(appID, map[string]any{"uid": "acme-hook"})["id"])
		E := "/api/v1/app/acme/endpoint/" + ep
		h.must(http.StatusOK, "PATCH", E, map[string]any{"disabled": true})
		h.must(http.StatusOK, "PATCH", E, map[string]any{"disabled": false})
		h.must(http.StatusNoContent, "PUT", E+"/headers", map[string]any{"headers": map[string]string{"X-A": "a"}})
		h.must(http.StatusNoContent, "DELETE", E, nil)
		h.must(http.StatusNoContent, "DELETE", "/api/v1/app/acme/endpoint/"+before, nil)

		events := opsEvents(t, h.store)
		wantTypes := []string{"endpoint.created", "endpoint.updated", "endpoint.disabled", "endpoint.updated",
			"endpoint.enabled", "endpoint.updated", "endpoint.deleted", "endpoint.deleted"}
		if got := eventTypes(events); !slices.Equal(got, wantTypes) {
			t.Fatalf("events %v, want %v", got, wantTypes)
		}
		var created models.EndpointCreatedEvent
		if err := json.Unmarshal(events[0].Payload, &created); err != nil {
			t.Fatal(err)
		}
		if created.Type != "endpoint.created" || created.Data.AppId != appID || created.Data.AppUid == nil || *created.Data.AppUid != "acme" ||
			created.Data.EndpointId != ep || created.Data.EndpointUid == nil || *created.Data.EndpointUid != "acme-hook" {
			t.Errorf("endpoint.created payload %s", events[0].Payload)
		}
		var disabled models.EndpointDisabledEvent
		if err := json.Unmarshal(events[2].Payload, &disabled); err != nil {
			t.Fatal(err)
		}
		if disabled.Data.EndpointId != ep || disabled.Data.Trigger == nil || *disabled.Data.Trigger != models.ENDPOINTDISABLEDTRIGGER_MANUAL {
			t.Errorf("endpoint.disabled payload %s, want trigger manual", events[2].Payload)
		}
		var deleted models.EndpointDeletedEvent
		if err := json.Unmarshal(events[7].Payload, &deleted); err != nil || deleted.Data.EndpointId != before || deleted.Data.EndpointUid != nil {
			t.Errorf("endpoint.deleted payload %s (%v), want the first endpoint, no uid", events[7].Payload, err)
		}

		// Fan-out: the unfiltered endpoint got all, the filtered one only
		// endpoint.disabled.
		for _, m := range events {
			page, err := h.store.ListDeliveries(context.Background(), webhook.DeliveryFilter{
				AppID: operational.AppID, MsgID: m.ID, ListOptions: webhook.ListOptions{Limit: 10, Ascending: true}})
			if err != nil {
				t.Fatal(err)
			}
			var to []string
			for _, d := range page.Items {
				to = append(to, d.EndpointID)
			}
			want := []string{all}
			if m.EventType == "endpoint.disabled" {
				want = []string{all, disabledOnly}
				slices.Sort(want)
			}
			if slices.Sort(to); !slices.Equal(to, want) {
				t.Errorf("%s went to %v, want %v", m.EventType, to, want)
			}
		}
		// The customer's app has no message: no customer endpoint can
		// receive an operational event.
		if page, err := h.store.ListMessages(context.Background(), webhook.MessageFilter{AppID: appID}); err != nil || len(page.Items) != 0 {
			t.Errorf("customer app messages: %v, %v; want none", page.Items, err)
		}
	})
}
