package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzPost sends body to path and checks that the answer is one of the
// allowed statuses, never a 5xx, with a JSON body.
func fuzzPost(t *testing.T, h *harness, path string, body []byte, allowed ...int) {
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.srv.ServeHTTP(rec, req)
	ok := false
	for _, s := range allowed {
		ok = ok || rec.Code == s
	}
	if !ok {
		t.Fatalf("POST %s %q: status %d, body %s", path, body, rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("POST %s %q: body %q is not JSON", path, body, rec.Body)
	}
}

// fuzzFixture is an app with an endpoint whose stored form must not change
// whatever is posted.
func fuzzFixture(f *testing.F) (*harness, func(t *testing.T)) {
	h := newHarness(f)
	h.createEventType("user.created")
	h.createApp(map[string]any{"name": "fuzz", "uid": "fz"})
	h.createEndpoint("fz", map[string]any{"uid": "fz-ep", "filterTypes": []string{"user.created"}})
	get := func() []byte {
		req := httptest.NewRequest("GET", "/api/v1/app/fz/endpoint/fz-ep", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		return rec.Body.Bytes()
	}
	want := get()
	return h, func(t *testing.T) {
		if got := get(); !bytes.Equal(got, want) {
			t.Fatalf("fixture endpoint changed:\n%s\n%s", want, got)
		}
	}
}

// FuzzCreateMessage posts arbitrary bodies to POST /api/v1/app/{app}/msg.
// Seeds are in testdata/fuzz/FuzzCreateMessage.
func FuzzCreateMessage(f *testing.F) {
	h, intact := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, h, "/api/v1/app/fz/msg", body,
			http.StatusAccepted, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
		intact(t)
	})
}

// FuzzCreateEndpoint posts arbitrary bodies to POST
// /api/v1/app/{app}/endpoint. Seeds are in testdata/fuzz/FuzzCreateEndpoint.
func FuzzCreateEndpoint(f *testing.F) {
	h, intact := fuzzFixture(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, h, "/api/v1/app/fz/endpoint", body,
			http.StatusCreated, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
		intact(t)
	})
}

// FuzzPatchEndpoint patches a sibling of the fixture endpoint (by id, since
// a patch may change its uid) with arbitrary bodies. Seeds are in
// testdata/fuzz/FuzzPatchEndpoint.
func FuzzPatchEndpoint(f *testing.F) {
	h, intact := fuzzFixture(f)
	target := str(h.createEndpoint("fz", map[string]any{"uid": "fz-target"})["id"])
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("PATCH", "/api/v1/app/fz/endpoint/"+target, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.srv.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("PATCH %q: status %d, body %s", body, rec.Code, rec.Body)
		}
		intact(t)
	})
}
