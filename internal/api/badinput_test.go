package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
)

// payloadOfSize returns a message body whose payload is exactly n bytes of
// compact JSON.
func payloadOfSize(n int) map[string]any {
	filler := strings.Repeat("x", n-len(`{"a":""}`))
	return map[string]any{"eventType": "big", "payload": json.RawMessage(`{"a":"` + filler + `"}`)}
}

// TestBadInput sends malformed and hostile requests, and requests at each
// limit's boundary: every one gets the documented 4xx (or succeeds at the
// boundary), none a 5xx, and nothing stored before changes.
func TestBadInput(t *testing.T) {
	h := newHarness(t)
	h.createEventType("fx.type")
	app := str(h.createApp(map[string]any{"name": "Fixture", "uid": "fx", "metadata": map[string]string{"k": "v"}})["id"])
	ep := str(h.createEndpoint(app, map[string]any{"uid": "fx-ep", "filterTypes": []string{"fx.type"}, "headers": map[string]string{"X-A": "a"}})["id"])
	msg := str(h.sendMessage(app, map[string]any{"eventType": "fx.type", "eventId": "fx-evt"})["id"])

	snapshotPaths := []string{
		"/api/v1/app/fx",
		"/api/v1/app/fx/endpoint/fx-ep",
		"/api/v1/app/fx/endpoint/fx-ep/secret",
		"/api/v1/app/fx/endpoint/fx-ep/headers",
		"/api/v1/app/fx/msg/fx-evt",
		"/api/v1/app/fx/endpoint/fx-ep/msg",
		"/api/v1/event-type/fx.type",
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, p := range snapshotPaths {
			out[p] = string(h.must(http.StatusOK, "GET", p, nil).Body)
		}
		return out
	}
	before := snapshot()

	A := "/api/v1/app/fx"
	E := A + "/endpoint/fx-ep"
	long := func(n int) string { return strings.Repeat("n", n) }
	huge := `{"name":"` + strings.Repeat("x", maxBodyBytes) + `"}`
	url2048 := "https://example.com/" + strings.Repeat("p", 2048-len("https://example.com/"))

	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string   // for non-422 errors
		loc          []string // for 422
	}{
		// Bodies that are not a JSON object.
		{"app: malformed JSON", "POST", "/api/v1/app", `{"name":`, 422, "", []string{"body"}},
		{"app: not JSON", "POST", "/api/v1/app", `name=x`, 422, "", []string{"body"}},
		{"app: empty body", "POST", "/api/v1/app", "", 422, "", []string{"body"}},
		{"app: array body", "POST", "/api/v1/app", `[{"name":"x"}]`, 422, "", []string{"body"}},
		{"app: null body", "POST", "/api/v1/app", `null`, 422, "", []string{"body"}},
		{"app: string body", "POST", "/api/v1/app", `"x"`, 422, "", []string{"body"}},
		{"app: trailing garbage", "POST", "/api/v1/app", `{"name":"x"} {}`, 422, "", []string{"body"}},
		{"app: huge body", "POST", "/api/v1/app", huge, 413, "payload_too_large", nil},
		{"endpoint patch: array body", "PATCH", E, `[]`, 422, "", []string{"body"}},
		{"endpoint put: malformed", "PUT", E, `{"url": "https://x.example",}`, 422, "", []string{"body"}},

		// Wrong types.
		{"app: name number", "POST", "/api/v1/app", `{"name":5}`, 422, "", []string{"body", "name"}},
		{"app: name missing", "POST", "/api/v1/app", `{"uid":"x"}`, 422, "", []string{"body", "name"}},
		{"app: name blank", "POST", "/api/v1/app", `{"name":"  "}`, 422, "", []string{"body", "name"}},
		{"app: metadata string", "POST", "/api/v1/app", `{"name":"x","metadata":"k=v"}`, 422, "", []string{"body", "metadata"}},
		{"app: metadata number value", "POST", "/api/v1/app", `{"name":"x","metadata":{"k":1}}`, 422, "", []string{"body", "metadata"}},
		{"app: metadata null value", "POST", "/api/v1/app", `{"name":"x","metadata":{"k":null}}`, 422, "", []string{"body", "metadata"}},
		{"app: throttleRate string", "POST", "/api/v1/app", `{"name":"x","throttleRate":"fast"}`, 422, "", []string{"body", "throttleRate"}},
		{"app: rateLimit fraction", "POST", "/api/v1/app", `{"name":"x","rateLimit":1.5}`, 422, "", []string{"body", "rateLimit"}},
		{"app: throttleRate negative", "POST", "/api/v1/app", `{"name":"x","throttleRate":-1}`, 422, "", []string{"body", "throttleRate"}},
		{"app: throttleRate huge", "POST", "/api/v1/app", `{"name":"x","throttleRate":1e40}`, 422, "", []string{"body", "throttleRate"}},
		{"app: uid number", "POST", "/api/v1/app", `{"name":"x","uid":7}`, 422, "", []string{"body", "uid"}},
		{"app patch: name array", "PATCH", A, `{"name":["x"]}`, 422, "", []string{"body", "name"}},
		{"app put: metadata array", "PUT", A, `{"name":"x","metadata":[]}`, 422, "", []string{"body", "metadata"}},

		// Names, uids and their limits.
		{"app: name 256 ok", "POST", "/api/v1/app", map[string]any{"name": long(256)}, 201, "", nil},
		{"app: name 257", "POST", "/api/v1/app", map[string]any{"name": long(257)}, 422, "", []string{"body", "name"}},
		{"app: uid 256 ok", "POST", "/api/v1/app", map[string]any{"name": "x", "uid": long(256)}, 201, "", nil},
		{"app: uid 257", "POST", "/api/v1/app", map[string]any{"name": "x", "uid": long(257)}, 422, "", []string{"body", "uid"}},
		{"app: uid bad chars", "POST", "/api/v1/app", map[string]any{"name": "x", "uid": "a b/c"}, 422, "", []string{"body", "uid"}},
		{"app: uid empty", "POST", "/api/v1/app", map[string]any{"name": "x", "uid": ""}, 422, "", []string{"body", "uid"}},
		{"app: uid id-prefixed", "POST", "/api/v1/app", map[string]any{"name": "x", "uid": "app_123"}, 422, "", []string{"body", "uid"}},
		{"endpoint: uid id-prefixed", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "uid": "ep_1"}, 422, "", []string{"body", "uid"}},
		{"app patch: uid taken", "PATCH", "/api/v1/app/" + long(256), map[string]any{"uid": "fx"}, 409, "conflict", nil},
		{"event type: name 256 ok", "POST", "/api/v1/event-type", map[string]any{"name": long(256), "description": "d"}, 201, "", nil},
		{"event type: name 257", "POST", "/api/v1/event-type", map[string]any{"name": long(257), "description": "d"}, 422, "", []string{"body", "name"}},
		{"event type: name with space", "POST", "/api/v1/event-type", map[string]any{"name": "a b", "description": "d"}, 422, "", []string{"body", "name"}},
		{"event type: description missing", "POST", "/api/v1/event-type", map[string]any{"name": "ok.name"}, 422, "", []string{"body", "description"}},
		{"event type: schemas string", "POST", "/api/v1/event-type", map[string]any{"name": "ok.name", "description": "d", "schemas": "x"}, 422, "", []string{"body", "schemas"}},
		{"event type: schemas array", "POST", "/api/v1/event-type", map[string]any{"name": "ok.name", "description": "d", "schemas": []int{1}}, 422, "", []string{"body", "schemas"}},
		{"event type: archived string", "PATCH", "/api/v1/event-type/fx.type", `{"archived":"yes"}`, 422, "", []string{"body", "archived"}},
		{"event type put: bad path name", "PUT", "/api/v1/event-type/bad%20name", map[string]any{"description": "d"}, 422, "", []string{"path", "event_type_name"}},

		// Unknown ids.
		{"unknown app", "GET", "/api/v1/app/app_2zzzzzzzzzzzzzzzzzzzzzzzzzz", nil, 404, "not_found", nil},
		{"unknown app uid", "POST", "/api/v1/app/nope/msg", map[string]any{"eventType": "a", "payload": map[string]any{}}, 404, "not_found", nil},
		{"unknown endpoint", "GET", A + "/endpoint/ep_2zzzzzzzzzzzzzzzzzzzzzzzzzz", nil, 404, "not_found", nil},
		{"unknown endpoint patch", "PATCH", A + "/endpoint/nope", map[string]any{"description": "x"}, 404, "not_found", nil},
		{"unknown message", "GET", A + "/msg/msg_2zzzzzzzzzzzzzzzzzzzzzzzzzz", nil, 404, "not_found", nil},
		{"unknown attempt", "GET", A + "/msg/fx-evt/attempt/atmpt_2zzzzzzzzzzzzzzzzzzzzzzzzzz", nil, 404, "not_found", nil},
		{"unknown event type", "GET", "/api/v1/event-type/nope", nil, 404, "not_found", nil},
		{"overlong path id", "GET", "/api/v1/app/" + long(600), nil, 404, "not_found", nil},

		// Endpoints.
		{"endpoint: url missing", "POST", A + "/endpoint", map[string]any{}, 422, "", []string{"body", "url"}},
		{"endpoint: url not a string", "POST", A + "/endpoint", map[string]any{"url": 1}, 422, "", []string{"body", "url"}},
		{"endpoint: ftp url", "POST", A + "/endpoint", map[string]any{"url": "ftp://x.example/"}, 422, "", []string{"body", "url"}},
		{"endpoint: loopback url", "POST", A + "/endpoint", map[string]any{"url": "http://127.0.0.1:8080/"}, 422, "", []string{"body", "url"}},
		{"endpoint: metadata service", "POST", A + "/endpoint", map[string]any{"url": "http://169.254.169.254/latest"}, 422, "", []string{"body", "url"}},
		{"endpoint: decimal ip", "POST", A + "/endpoint", map[string]any{"url": "http://2130706433/"}, 422, "", []string{"body", "url"}},
		{"endpoint: userinfo", "POST", A + "/endpoint", map[string]any{"url": "https://u:p@x.example/"}, 422, "", []string{"body", "url"}},
		{"endpoint: relative url", "POST", A + "/endpoint", map[string]any{"url": "/hook"}, 422, "", []string{"body", "url"}},
		{"endpoint: url 2048 ok", "POST", A + "/endpoint", map[string]any{"url": url2048}, 201, "", nil},
		{"endpoint: url 2049", "POST", A + "/endpoint", map[string]any{"url": url2048 + "p"}, 422, "", []string{"body", "url"}},
		{"endpoint: bad secret", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "secret": "hunter2"}, 422, "", []string{"body", "secret"}},
		{"endpoint: short secret", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "secret": "whsec_c2hvcnQ="}, 422, "", []string{"body", "secret"}},
		{"endpoint: secret number", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "secret": 5}, 422, "", []string{"body", "secret"}},
		{"endpoint: empty channels", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "channels": []string{}}, 422, "", []string{"body", "channels"}},
		{"endpoint: 11 channels", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "channels": strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}, 422, "", []string{"body", "channels"}},
		{"endpoint: bad channel", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "channels": []string{"a b"}}, 422, "", []string{"body", "channels", "0"}},
		{"endpoint: channels string", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "channels": "a"}, 422, "", []string{"body", "channels"}},
		{"endpoint: filterTypes string", "POST", A + "/endpoint", map[string]any{"url": "https://x.example", "filterTypes": "fx.type"}, 422, "", []string{"body", "filterTypes"}},
		{"endpoint: filterTypes null item", "POST", A + "/endpoint", `{"url":"https://x.example","filterTypes":[null]}`, 422, "", []string{"body", "filterTypes"}},
		{"endpoint: unknown filter type", "PATCH", E, map[string]any{"filterTypes": []string{"nope"}}, 422, "", []string{"body", "filterTypes"}},
		{"endpoint: version 0", "PATCH", E, map[string]any{"version": 0}, 422, "", []string{"body", "version"}},
		{"endpoint: disabled string", "PATCH", E, map[string]any{"disabled": "true"}, 422, "", []string{"body", "disabled"}},
		{"endpoint: description too long", "PUT", E, map[string]any{"url": "https://x.example", "description": long(1025)}, 422, "", []string{"body", "description"}},
		{"endpoint: headers not strings", "PUT", E + "/headers", `{"headers":{"X-A":1}}`, 422, "", []string{"body", "headers"}},
		{"endpoint: headers missing", "PUT", E + "/headers", `{}`, 422, "", []string{"body", "headers"}},
		{"endpoint: reserved header", "PATCH", E + "/headers", map[string]any{"headers": map[string]string{"Transfer-Encoding": "chunked"}}, 422, "", []string{"body", "headers", "Transfer-Encoding"}},
		{"endpoint: header CRLF", "PUT", E + "/headers", map[string]any{"headers": map[string]string{"X-A": "a\r\nb"}}, 422, "", []string{"body", "headers", "X-A"}},
		{"endpoint: rotate grace negative", "POST", E + "/secret/rotate", map[string]any{"gracePeriodSeconds": -1}, 422, "", []string{"body", "gracePeriodSeconds"}},
		{"endpoint: rotate grace string", "POST", E + "/secret/rotate", map[string]any{"gracePeriodSeconds": "1"}, 422, "", []string{"body", "gracePeriodSeconds"}},
		{"endpoint: rotate bad key", "POST", E + "/secret/rotate", map[string]any{"key": "whsec_!!!"}, 422, "", []string{"body", "key"}},
		{"endpoint: recover empty", "POST", E + "/recover", "", 422, "", []string{"body"}},

		// Messages.
		{"msg: payload 256 KiB ok", "POST", A + "/msg", payloadOfSize(256 << 10), 202, "", nil},
		{"msg: payload 256 KiB + 1", "POST", A + "/msg", payloadOfSize(256<<10 + 1), 413, "payload_too_large", nil},
		{"msg: pretty payload compacts under the limit", "POST", A + "/msg",
			`{"eventType":"a","payload":{"a":` + strings.Repeat(" ", 300<<10) + `1}}`, 202, "", nil},
		{"msg: body over 1 MiB", "POST", A + "/msg", payloadOfSize(maxBodyBytes), 413, "payload_too_large", nil},
		{"msg: payload array", "POST", A + "/msg", `{"eventType":"a","payload":[1]}`, 422, "", []string{"body", "payload"}},
		{"msg: payload string", "POST", A + "/msg", `{"eventType":"a","payload":"{}"}`, 422, "", []string{"body", "payload"}},
		{"msg: payload number", "POST", A + "/msg", `{"eventType":"a","payload":5}`, 422, "", []string{"body", "payload"}},
		{"msg: payload null", "POST", A + "/msg", `{"eventType":"a","payload":null}`, 422, "", []string{"body", "payload"}},
		{"msg: payload missing", "POST", A + "/msg", `{"eventType":"a"}`, 422, "", []string{"body", "payload"}},
		{"msg: payload invalid UTF-8 is kept", "POST", A + "/msg", "{\"eventType\":\"a\",\"payload\":{\"a\":\"\xff\"}}", 202, "", nil},
		{"msg: eventType missing", "POST", A + "/msg", `{"payload":{}}`, 422, "", []string{"body", "eventType"}},
		{"msg: eventType number", "POST", A + "/msg", `{"eventType":1,"payload":{}}`, 422, "", []string{"body", "eventType"}},
		{"msg: eventType bad chars", "POST", A + "/msg", `{"eventType":"a/b","payload":{}}`, 422, "", []string{"body", "eventType"}},
		{"msg: eventType 257", "POST", A + "/msg", map[string]any{"eventType": long(257), "payload": map[string]any{}}, 422, "", []string{"body", "eventType"}},
		{"msg: eventId 256 ok", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "eventId": long(256)}, 202, "", nil},
		{"msg: eventId 257", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "eventId": long(257)}, 422, "", []string{"body", "eventId"}},
		{"msg: eventId reused", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "eventId": "fx-evt"}, 409, "conflict", nil},
		{"msg: 10 channels ok", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "channels": strings.Split("a,b,c,d,e,f,g,h,i,j", ",")}, 202, "", nil},
		{"msg: 11 channels", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "channels": strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}, 422, "", []string{"body", "channels"}},
		{"msg: 6 tags", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "tags": strings.Split("a,b,c,d,e,f", ",")}, 422, "", []string{"body", "tags"}},
		{"msg: retention 0", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "payloadRetentionPeriod": 0}, 422, "", []string{"body", "payloadRetentionPeriod"}},
		{"msg: retention 91", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "payloadRetentionPeriod": 91}, 422, "", []string{"body", "payloadRetentionPeriod"}},
		{"msg: deliverAt", "POST", A + "/msg", map[string]any{"eventType": "a", "payload": map[string]any{}, "deliverAt": "2030-01-01T00:00:00Z"}, 422, "", []string{"body", "deliverAt"}},

		// Query parameters.
		{"limit 251", "GET", "/api/v1/app?limit=251", nil, 422, "", []string{"query", "limit"}},
		{"limit 0", "GET", A + "/msg?limit=0", nil, 422, "", []string{"query", "limit"}},
		{"bad iterator", "GET", A + "/msg?iterator=garbage", nil, 422, "", []string{"query", "iterator"}},
		{"iterator of another list", "GET", "/api/v1/app?iterator=" + msg, nil, 422, "", []string{"query", "iterator"}},
		{"backward bad iterator", "GET", A + "/endpoint?iterator=-x", nil, 422, "", []string{"query", "iterator"}},
		{"bad event-type iterator", "GET", "/api/v1/event-type?iterator=a%20b", nil, 422, "", []string{"query", "iterator"}},
		{"bad order", "GET", "/api/v1/app?order=sideways", nil, 422, "", []string{"query", "order"}},
		{"bad before", "GET", A + "/msg?before=yesterday", nil, 422, "", []string{"query", "before"}},
		{"bad after", "GET", A + "/attempt/endpoint/fx-ep?after=2025-13-01T00:00:00Z", nil, 422, "", []string{"query", "after"}},
		{"bad date on E/msg", "GET", E + "/msg?before=1700000000", nil, 422, "", []string{"query", "before"}},
		{"bad status", "GET", A + "/attempt/endpoint/fx-ep?status=9", nil, 422, "", []string{"query", "status"}},
		{"bad status text", "GET", E + "/msg?status=fail", nil, 422, "", []string{"query", "status"}},
		{"bad status_code_class", "GET", A + "/attempt/msg/fx-evt?status_code_class=250", nil, 422, "", []string{"query", "status_code_class"}},
		{"bad with_content", "GET", A + "/msg?with_content=maybe", nil, 422, "", []string{"query", "with_content"}},
		{"bad expanded_statuses", "GET", A + "/msg/fx-evt/endpoint?expanded_statuses=2", nil, 422, "", []string{"query", "expanded_statuses"}},
		{"bad event_types", "GET", A + "/msg?event_types=a%20b", nil, 422, "", []string{"query", "event_types"}},
		{"bad channel", "GET", A + "/msg?channel=a%20b", nil, 422, "", []string{"query", "channel"}},
		{"bad get_if_exists", "POST", "/api/v1/app?get_if_exists=perhaps", map[string]any{"name": "x"}, 422, "", []string{"query", "get_if_exists"}},
		{"bad expunge", "DELETE", "/api/v1/event-type/fx.type?expunge=yes", nil, 422, "", []string{"query", "expunge"}},
		{"stats until before since", "GET", E + "/stats?since=2025-06-02T00:00:00Z&until=2025-06-01T00:00:00Z", nil, 422, "", []string{"query", "until"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(tt.method, tt.path, tt.body)
			switch {
			case tt.status == http.StatusUnprocessableEntity:
				wantValidation(t, res, tt.loc)
			case tt.status >= 400:
				wantError(t, res, tt.status, tt.code)
			case res.Status != tt.status:
				t.Errorf("status %d, want %d; body %s", res.Status, tt.status, res.Body)
			}
			if res.Status >= 500 {
				t.Errorf("5xx for bad input: %d %s", res.Status, res.Body)
			}
		})
	}

	after := snapshot()
	for _, p := range snapshotPaths {
		if before[p] != after[p] {
			t.Errorf("GET %s changed:\nbefore %s\nafter  %s", p, before[p], after[p])
		}
	}
	if ep == "" || msg == "" || !bytes.Contains([]byte(before[snapshotPaths[1]]), []byte(ep)) {
		t.Fatalf("fixture not set up")
	}
}

// TestTextLimitsCountCharacters checks the boundaries of text limits with
// two-byte characters: n characters are accepted and n+1 refused,
// whatever their size in bytes.
func TestTextLimitsCountCharacters(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": strings.Repeat("é", webhook.MaxNameLen)})["id"])
	wantValidation(t, h.do("POST", "/api/v1/app", map[string]any{"name": strings.Repeat("é", webhook.MaxNameLen+1)}), []string{"body", "name"})
	h.createEndpoint(app, map[string]any{"description": strings.Repeat("é", webhook.MaxDescriptionLen)})
	wantValidation(t, h.do("POST", "/api/v1/app/"+app+"/endpoint", map[string]any{
		"url": "https://example.com/hook", "description": strings.Repeat("é", webhook.MaxDescriptionLen+1),
	}), []string{"body", "description"})
	h.must(http.StatusCreated, "POST", "/api/v1/event-type", map[string]any{"name": "a", "description": strings.Repeat("é", webhook.MaxDescriptionLen)})
}

// TestBadHeadersReportedInOrder sends several bad custom headers: the 422
// lists them sorted by name, the same on every request.
func TestBadHeadersReportedInOrder(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	ep := str(h.createEndpoint(app, map[string]any{})["id"])
	headers := map[string]any{"Svix-Id": "x", "Host": "x", "X-Ok": "x", "Content-Type": "x", "Webhook-Id": "x", "User-Agent": "x"}
	want := []string{"Content-Type", "Host", "Svix-Id", "User-Agent", "Webhook-Id"}
	for range 10 {
		res := h.do("PUT", "/api/v1/app/"+app+"/endpoint/"+ep+"/headers", map[string]any{"headers": headers})
		wantValidation(t, res, nil)
		var got []string
		for _, d := range res.JSON(t)["detail"].([]any) {
			l := d.(map[string]any)["loc"].([]any)
			got = append(got, l[len(l)-1].(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("problems at %v, want %v", got, want)
		}
	}
}
