package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

var endpointKeys = []string{
	"id", "uid", "url", "description", "version", "disabled", "filterTypes", "eventTypes", "channels",
	"metadata", "throttleRate", "rateLimit", "failingSince", "disabledReason", "createdAt", "updatedAt",
}

func TestEndpointCreateShape(t *testing.T) {
	h := newHarness(t)
	app := h.createApp(map[string]any{"name": "a"})
	ep := h.createEndpoint(str(app["id"]), map[string]any{"url": "https://example.com/hook"})
	wantKeys(t, "EndpointOut", ep, endpointKeys...)
	wantNull(t, "EndpointOut", ep, "uid", "filterTypes", "eventTypes", "channels", "throttleRate", "rateLimit", "failingSince", "disabledReason")
	if ep["description"] != "" || ep["version"] != 1.0 || ep["disabled"] != false || ep["url"] != "https://example.com/hook" {
		t.Errorf("defaults: %v", ep)
	}
	if !strings.HasPrefix(str(ep["id"]), "ep_") {
		t.Errorf("id %v", ep["id"])
	}
	// The secret was generated and is readable only through .../secret.
	secret := h.must(http.StatusOK, "GET", "/api/v1/app/"+str(app["id"])+"/endpoint/"+str(ep["id"])+"/secret", nil).JSON(t)
	wantKeys(t, "EndpointSecretOut", secret, "key")
	if _, err := signing.ParseSecret(str(secret["key"])); err != nil {
		t.Errorf("secret %v: %v", secret["key"], err)
	}
}

func TestEndpointFieldNameGenerations(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.createEventType("user.created")
	for _, field := range []string{"filterTypes", "eventTypes"} {
		t.Run(field, func(t *testing.T) {
			ep := h.createEndpoint(app, map[string]any{field: []string{"user.created"}, "rateLimit": 3})
			for _, k := range []string{"filterTypes", "eventTypes"} {
				if l, _ := ep[k].([]any); len(l) != 1 || l[0] != "user.created" {
					t.Errorf("%s = %v", k, ep[k])
				}
			}
			if ep["throttleRate"] != 3.0 || ep["rateLimit"] != 3.0 {
				t.Errorf("throttleRate %v rateLimit %v", ep["throttleRate"], ep["rateLimit"])
			}
		})
	}
}

func TestEndpointFilterTypesMustExist(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.createEventType("user.created")
	h.createEventType("old.type")
	h.must(http.StatusNoContent, "DELETE", "/api/v1/event-type/old.type", nil)

	res := h.do("POST", "/api/v1/app/"+app+"/endpoint", map[string]any{
		"url": "https://example.com", "filterTypes": []string{"user.created", "nope", "old.type"},
	})
	wantValidation(t, res, []string{"body", "filterTypes"})
	if !strings.Contains(string(res.Body), "The following event types don't exist: nope, old.type") {
		t.Errorf("detail %s", res.Body)
	}
	res = h.do("POST", "/api/v1/app/"+app+"/endpoint", map[string]any{"url": "https://example.com", "eventTypes": []string{"nope"}})
	wantValidation(t, res, []string{"body", "eventTypes"})
}

func TestEndpointPatchAbsentVersusNull(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.createEventType("user.created")
	ep := h.createEndpoint(app, map[string]any{
		"uid": "ep-1", "description": "d", "filterTypes": []string{"user.created"}, "channels": []string{"c1"},
		"metadata": map[string]string{"k": "v"}, "throttleRate": 9,
	})
	path := "/api/v1/app/" + app + "/endpoint/ep-1"

	got := h.must(http.StatusOK, "PATCH", path, map[string]any{"url": "https://example.org/new"}).JSON(t)
	if got["url"] != "https://example.org/new" || got["description"] != "d" || got["uid"] != "ep-1" ||
		got["filterTypes"] == nil || got["channels"] == nil || got["throttleRate"] != 9.0 {
		t.Errorf("PATCH url kept others? %v", got)
	}
	got = h.must(http.StatusOK, "PATCH", path, map[string]any{
		"filterTypes": nil, "channels": nil, "throttleRate": nil, "metadata": nil, "description": nil,
	}).JSON(t)
	if got["filterTypes"] != nil || got["eventTypes"] != nil || got["channels"] != nil || got["throttleRate"] != nil ||
		len(got["metadata"].(map[string]any)) != 0 || got["description"] != "" || got["uid"] != "ep-1" {
		t.Errorf("PATCH nulls: %v", got)
	}
	wantValidation(t, h.do("PATCH", path, map[string]any{"url": nil}), []string{"body", "url"})
	wantValidation(t, h.do("PATCH", path, map[string]any{"disabled": nil}), []string{"body", "disabled"})

	// PATCH uid null clears it; the id still works.
	got = h.must(http.StatusOK, "PATCH", path, map[string]any{"uid": nil}).JSON(t)
	if got["uid"] != nil {
		t.Errorf("uid %v", got["uid"])
	}
	h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/endpoint/"+str(ep["id"]), nil)
	wantError(t, h.do("GET", path, nil), http.StatusNotFound, "not_found")
}

func TestEndpointPutIsFullUpdate(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	h.createEndpoint(app, map[string]any{
		"uid": "ep-1", "description": "d", "channels": []string{"c1"}, "metadata": map[string]string{"k": "v"}, "version": 2,
	})
	path := "/api/v1/app/" + app + "/endpoint/ep-1"
	got := h.must(http.StatusOK, "PUT", path, map[string]any{"url": "https://example.net"}).JSON(t)
	if got["url"] != "https://example.net" || got["description"] != "" || got["channels"] != nil ||
		len(got["metadata"].(map[string]any)) != 0 || got["uid"] != "ep-1" || got["version"] != 2.0 {
		t.Errorf("PUT: %v", got)
	}
	wantValidation(t, h.do("PUT", path, map[string]any{"description": "no url"}), []string{"body", "url"})
}

func TestEndpointDisableCancelsAndReenables(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	msg := str(h.sendMessage(app, map[string]any{})["id"])
	path := "/api/v1/app/" + app + "/endpoint/" + ep

	// A failure marks the endpoint failing.
	h.recordAttempt(app, msg, ep, 500, webhook.StatusSending)
	got := h.must(http.StatusOK, "GET", path, nil).JSON(t)
	if got["failingSince"] == nil {
		t.Errorf("failingSince null after a failed attempt")
	}

	h.clock.Advance(time.Minute)
	got = h.must(http.StatusOK, "PATCH", path, map[string]any{"disabled": true}).JSON(t)
	if got["disabled"] != true || got["disabledReason"] != "manual" {
		t.Errorf("after disable: %v", got)
	}
	d, err := h.store.GetDelivery(ctx, app, msg, ep)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != webhook.StatusCanceled {
		t.Errorf("delivery status %v after disable, want canceled", d.Status)
	}
	stored, err := h.store.GetEndpoint(ctx, app, ep)
	if err != nil {
		t.Fatal(err)
	}
	if stored.DisabledWhy != webhook.DisabledManual || !stored.DisabledAt.Equal(h.clock.Now()) {
		t.Errorf("stored DisabledWhy %q DisabledAt %v", stored.DisabledWhy, stored.DisabledAt)
	}

	// Resend and recover refuse a disabled endpoint.
	wantError(t, h.do("POST", "/api/v1/app/"+app+"/msg/"+msg+"/endpoint/"+ep+"/resend", nil), http.StatusBadRequest, "generic_error")
	wantError(t, h.do("POST", path+"/recover", map[string]any{"since": t0.Add(-time.Hour)}), http.StatusBadRequest, "generic_error")

	got = h.must(http.StatusOK, "PATCH", path, map[string]any{"disabled": false}).JSON(t)
	if got["disabled"] != false || got["disabledReason"] != nil || got["failingSince"] != nil {
		t.Errorf("after re-enable: %v", got)
	}
	stored, err = h.store.GetEndpoint(ctx, app, ep)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.FailingSince.IsZero() {
		t.Errorf("stored FailingSince %v after re-enable, want zero", stored.FailingSince)
	}
}

func TestEndpointSecretRotation(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	given := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ep := str(h.createEndpoint(app, map[string]any{"secret": given})["id"])
	path := "/api/v1/app/" + app + "/endpoint/" + ep

	if got := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]; got != given {
		t.Fatalf("secret %v, want the one given", got)
	}

	// Rotate to a given key with the default grace period.
	next := signing.FormatSecret([]byte("0123456789abcdefghijklmnopqrstuv"))
	res := h.must(http.StatusNoContent, "POST", path+"/secret/rotate", map[string]any{"key": next})
	if len(res.Body) != 0 {
		t.Errorf("rotate body %q, want none", res.Body)
	}
	if got := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]; got != next {
		t.Errorf("after rotate: %v, want %v", got, next)
	}
	stored, err := h.store.GetEndpoint(ctx, app, ep)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Keys) != 2 || !stored.Keys[1].ExpiresAt.Equal(h.clock.Now().Add(24*time.Hour)) || !stored.Keys[0].ExpiresAt.IsZero() {
		t.Errorf("keys after rotate: %+v", stored.Keys)
	}

	// An empty body generates a key. Ten old keys in their grace period is
	// the limit: the rotation that would make eleven is refused.
	for i := 0; i < 9; i++ {
		h.must(http.StatusNoContent, "POST", path+"/secret/rotate", nil)
	}
	stored, _ = h.store.GetEndpoint(ctx, app, ep)
	if len(stored.Keys) != 11 {
		t.Fatalf("%d keys, want 11", len(stored.Keys))
	}
	wantError(t, h.do("POST", path+"/secret/rotate", map[string]any{}), http.StatusBadRequest, "limit_reached")

	// With no grace period the old key goes at once, so rotation works.
	h.must(http.StatusNoContent, "POST", path+"/secret/rotate", map[string]any{"gracePeriodSeconds": 0})

	// Once grace periods end, old keys are dropped at the next rotation.
	h.clock.Advance(25 * time.Hour)
	h.must(http.StatusNoContent, "POST", path+"/secret/rotate", map[string]any{"gracePeriodSeconds": 60})
	stored, _ = h.store.GetEndpoint(ctx, app, ep)
	if len(stored.Keys) != 2 {
		t.Errorf("%d keys after grace periods ended, want 2", len(stored.Keys))
	}

	wantValidation(t, h.do("POST", path+"/secret/rotate", map[string]any{"key": "whsec_short"}), []string{"body", "key"})
	wantValidation(t, h.do("POST", path+"/secret/rotate", map[string]any{"gracePeriodSeconds": 604801}), []string{"body", "gracePeriodSeconds"})
	h.must(http.StatusNoContent, "POST", path+"/secret/rotate", map[string]any{"gracePeriodSeconds": 604800, "key": given})
}

func TestEndpointHeaders(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := h.createEndpoint(app, map[string]any{"headers": map[string]string{"X-Team": "core", "Authorization": "Bearer s3cret"}})
	if _, ok := ep["headers"]; ok {
		t.Errorf("EndpointOut echoes headers")
	}
	path := "/api/v1/app/" + app + "/endpoint/" + str(ep["id"]) + "/headers"

	res := h.must(http.StatusOK, "GET", path, nil)
	if strings.Contains(string(res.Body), "s3cret") {
		t.Errorf("sensitive value echoed: %s", res.Body)
	}
	got := res.JSON(t)
	wantKeys(t, "EndpointHeadersOut", got, "headers", "sensitive")
	if got["headers"].(map[string]any)["X-Team"] != "core" || len(got["sensitive"].([]any)) != 1 || got["sensitive"].([]any)[0] != "Authorization" {
		t.Errorf("GET headers: %v", got)
	}

	h.must(http.StatusNoContent, "PUT", path, map[string]any{"headers": map[string]string{"X-One": "1", "X-Two": "2"}})
	got = h.must(http.StatusOK, "GET", path, nil).JSON(t)
	if hs := got["headers"].(map[string]any); len(hs) != 2 || len(got["sensitive"].([]any)) != 0 {
		t.Errorf("after PUT: %v", got)
	}

	// PATCH: a value sets (names match without case), null removes.
	h.must(http.StatusNoContent, "PATCH", path, map[string]any{"headers": map[string]any{"x-one": "uno", "X-Two": nil, "X-Three": "3"}})
	got = h.must(http.StatusOK, "GET", path, nil).JSON(t)
	hs := got["headers"].(map[string]any)
	if len(hs) != 2 || hs["x-one"] != "uno" || hs["X-Three"] != "3" {
		t.Errorf("after PATCH: %v", hs)
	}
	h.must(http.StatusNoContent, "PATCH", path, map[string]any{"headers": map[string]any{}, "deleteHeaders": []string{"X-THREE"}})
	if hs := h.must(http.StatusOK, "GET", path, nil).JSON(t)["headers"].(map[string]any); len(hs) != 1 {
		t.Errorf("after deleteHeaders: %v", hs)
	}

	bad := []struct {
		name    string
		headers map[string]any
	}{
		{"reserved host", map[string]any{"Host": "x"}},
		{"reserved content-type", map[string]any{"Content-Type": "text/plain"}},
		{"reserved svix-", map[string]any{"svix-id": "x"}},
		{"reserved webhook-", map[string]any{"Webhook-Signature": "x"}},
		{"reserved x-amz-", map[string]any{"X-Amz-Date": "x"}},
		{"CRLF in value", map[string]any{"X-A": "a\r\nX-Injected: 1"}},
		{"LF in value", map[string]any{"X-A": "a\nb"}},
		{"bad name", map[string]any{"X A": "a"}},
		{"value too long", map[string]any{"X-A": strings.Repeat("a", 4097)}},
		{"duplicate in another case", map[string]any{"X-A": "1", "x-a": "2"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			wantValidation(t, h.do("PUT", path, map[string]any{"headers": tt.headers}), nil)
			if tt.name != "duplicate in another case" {
				wantValidation(t, h.do("PATCH", path, map[string]any{"headers": tt.headers}), nil)
			}
			wantValidation(t, h.do("POST", "/api/v1/app/"+app+"/endpoint", map[string]any{"url": "https://example.com", "headers": tt.headers}), nil)
		})
	}
	h.must(http.StatusNoContent, "PUT", path, map[string]any{"headers": map[string]string{"X-A": strings.Repeat("a", 4096)}})
}

func TestEndpointStats(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	m1 := str(h.sendMessage(app, map[string]any{})["id"])
	h.sendMessage(app, map[string]any{})
	h.recordAttempt(app, m1, ep, 200, webhook.StatusSuccess)

	got := h.must(http.StatusOK, "GET", "/api/v1/app/"+app+"/endpoint/"+ep+"/stats", nil).JSON(t)
	wantKeys(t, "EndpointStats", got, "success", "pending", "sending", "fail", "canceled")
	if got["success"] != 1.0 || got["pending"] != 1.0 || got["fail"] != 0.0 {
		t.Errorf("stats %v", got)
	}
	future := "/api/v1/app/" + app + "/endpoint/" + ep + "/stats?since=2030-01-01T00:00:00Z"
	if got := h.must(http.StatusOK, "GET", future, nil).JSON(t); got["success"] != 0.0 || got["pending"] != 0.0 {
		t.Errorf("stats since 2030: %v", got)
	}
	wantValidation(t, h.do("GET", "/api/v1/app/"+app+"/endpoint/"+ep+"/stats?since=yesterday", nil), []string{"query", "since"})
}

func TestEndpointRecover(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	path := "/api/v1/app/" + app + "/endpoint/" + ep + "/recover"

	got := h.must(http.StatusAccepted, "POST", path, map[string]any{"since": "2025-06-01T10:00:00Z"}).JSON(t)
	wantKeys(t, "RecoverOut", got, "id", "status", "task", "updatedAt")
	if !strings.HasPrefix(str(got["id"]), "qtask_") || got["status"] != "running" || got["task"] != "endpoint.recover" {
		t.Errorf("RecoverOut %v", got)
	}
	if len(h.dels.recovered) != 1 || !h.dels.recovered[0].until.Equal(t0) || !h.dels.recovered[0].since.Equal(t0.Add(-2*time.Hour)) {
		t.Errorf("Recover calls %+v", h.dels.recovered)
	}

	tests := []struct {
		name string
		body map[string]any
		loc  []string
	}{
		{"missing since", map[string]any{}, []string{"body", "since"}},
		{"since not a date", map[string]any{"since": "last week"}, []string{"body", "since"}},
		{"since a number", map[string]any{"since": 12}, []string{"body", "since"}},
		{"since in the future", map[string]any{"since": "2025-06-01T12:00:01Z"}, []string{"body", "since"}},
		{"until before since", map[string]any{"since": "2025-06-01T10:00:00Z", "until": "2025-06-01T09:00:00Z"}, []string{"body", "until"}},
		{"window over 14 days", map[string]any{"since": "2025-05-18T11:59:59Z"}, []string{"body", "since"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantValidation(t, h.do("POST", path, tt.body), tt.loc)
		})
	}
	h.must(http.StatusAccepted, "POST", path, map[string]any{"since": "2025-05-18T12:00:00Z"})
}

func TestEndpointListAndDelete(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	e1 := str(h.createEndpoint(app, map[string]any{})["id"])
	e2 := str(h.createEndpoint(app, map[string]any{"uid": "second", "disabled": true})["id"])
	base := "/api/v1/app/" + app + "/endpoint"

	data := h.must(http.StatusOK, "GET", base, nil).Data(t)
	if !sameIDs(ids(data), e1, e2) {
		t.Fatalf("list %v, want oldest first", ids(data))
	}
	wantKeys(t, "EndpointOut", data[1], endpointKeys...)
	if data[1]["disabled"] != true || data[1]["disabledReason"] != "manual" {
		t.Errorf("created disabled: %v", data[1])
	}
	if got := ids(h.must(http.StatusOK, "GET", base+"?order=descending&limit=1", nil).Data(t)); !sameIDs(got, e2) {
		t.Errorf("descending: %v", got)
	}

	h.must(http.StatusNoContent, "DELETE", base+"/second", nil)
	wantError(t, h.do("GET", base+"/"+e2, nil), http.StatusNotFound, "not_found")
	wantError(t, h.do("DELETE", base+"/second", nil), http.StatusNotFound, "not_found")
	if got := ids(h.must(http.StatusOK, "GET", base, nil).Data(t)); !sameIDs(got, e1) {
		t.Errorf("after delete: %v", got)
	}
	wantError(t, h.do("GET", "/api/v1/app/nope/endpoint", nil), http.StatusNotFound, "not_found")
}

func TestEndpointPatchSecret(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	path := "/api/v1/app/" + app + "/endpoint/" + ep
	given := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

	got := h.must(http.StatusOK, "PATCH", path, map[string]any{"secret": given}).JSON(t)
	if _, ok := got["secret"]; ok {
		t.Errorf("EndpointOut echoes the secret")
	}
	if key := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]; key != given {
		t.Errorf("secret %v, want %v", key, given)
	}
	h.must(http.StatusOK, "PATCH", path, map[string]any{"secret": nil})
	key := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]
	if key == given {
		t.Errorf("PATCH secret null kept the old secret")
	}
	if _, err := signing.ParseSecret(str(key)); err != nil {
		t.Errorf("generated secret %v: %v", key, err)
	}
	stored, err := h.store.GetEndpoint(ctx, app, ep)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Keys) != 1 {
		t.Errorf("%d keys, want 1 (PATCH replaces the current key)", len(stored.Keys))
	}
	// PUT ignores a null secret (EndpointUpdate has none).
	h.must(http.StatusOK, "PUT", path, map[string]any{"url": "https://example.com", "secret": nil})
	if again := h.must(http.StatusOK, "GET", path+"/secret", nil).JSON(t)["key"]; again != key {
		t.Errorf("PUT with secret null changed the secret")
	}
}

func TestEndpointURLPolicy(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Config)
		url       string
		want      int
	}{
		{"default: http allowed", nil, "http://example.com/hook", http.StatusCreated},
		{"default: loopback refused", nil, "http://127.0.0.1:8080/hook", http.StatusUnprocessableEntity},
		{"default: private refused", nil, "http://10.0.0.1/hook", http.StatusUnprocessableEntity},
		{"allow private: loopback", func(c *Config) { c.AllowPrivateTargets = true }, "http://127.0.0.1:8080/hook", http.StatusCreated},
		{"allow private: still no numeric host", func(c *Config) { c.AllowPrivateTargets = true }, "http://0x7f.1/hook", http.StatusUnprocessableEntity},
		{"require https: http refused", func(c *Config) { c.RequireHTTPS = true }, "http://example.com/hook", http.StatusUnprocessableEntity},
		{"require https: https allowed", func(c *Config) { c.RequireHTTPS = true }, "https://example.com/hook", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.configure)
			app := str(h.createApp(map[string]any{"name": "a"})["id"])
			res := h.do("POST", "/api/v1/app/"+app+"/endpoint", map[string]any{"url": tt.url})
			if tt.want == http.StatusUnprocessableEntity {
				wantValidation(t, res, []string{"body", "url"})
			} else if res.Status != tt.want {
				t.Errorf("status %d, want %d; body %s", res.Status, tt.want, res.Body)
			}
			// PATCH applies the same policy.
			if tt.want == http.StatusUnprocessableEntity {
				ep := str(h.createEndpoint(app, map[string]any{"url": "https://example.com"})["id"])
				wantValidation(t, h.do("PATCH", "/api/v1/app/"+app+"/endpoint/"+ep, map[string]any{"url": tt.url}), []string{"body", "url"})
			}
		})
	}
}
