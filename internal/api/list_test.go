package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type page struct {
	ids          []string
	iterator     any
	prevIterator any
	done         bool
	body         []byte // the response as sent
}

func (h *harness) page(path string) page {
	h.t.Helper()
	res := h.must(http.StatusOK, "GET", path, nil)
	m := res.JSON(h.t)
	wantKeys(h.t, "list", m, "data", "iterator", "prevIterator", "done")
	p := page{body: res.Body}
	for _, d := range m["data"].([]any) {
		item := d.(map[string]any)
		id := item["id"]
		if id == nil {
			id = item["name"]
		}
		p.ids = append(p.ids, id.(string))
	}
	p.iterator, p.prevIterator, p.done = m["iterator"], m["prevIterator"], m["done"].(bool)
	return p
}

func withIterator(path string, it any) string {
	return path + "&iterator=" + url.QueryEscape(it.(string))
}

func TestPaginationForwardAndBackward(t *testing.T) {
	h := newHarness(t)
	var all []string
	for i := 0; i < 5; i++ {
		all = append(all, str(h.createApp(map[string]any{"name": fmt.Sprint("app", i)})["id"]))
	}
	base := "/api/v1/app?limit=2"

	p1 := h.page(base)
	if !sameIDs(p1.ids, all[0], all[1]) || p1.done || p1.iterator == nil || p1.prevIterator == nil {
		t.Fatalf("page 1: %+v", p1)
	}
	p2 := h.page(withIterator(base, p1.iterator))
	if !sameIDs(p2.ids, all[2], all[3]) || p2.done {
		t.Fatalf("page 2: %+v", p2)
	}
	p3 := h.page(withIterator(base, p2.iterator))
	if !sameIDs(p3.ids, all[4]) || !p3.done {
		t.Fatalf("page 3: %+v", p3)
	}
	// Back from page 3 gives page 2, then page 1, which is the start.
	b2 := h.page(withIterator(base, p3.prevIterator))
	if !sameIDs(b2.ids, all[2], all[3]) || b2.done {
		t.Fatalf("back to page 2: %+v", b2)
	}
	b1 := h.page(withIterator(base, b2.prevIterator))
	if !sameIDs(b1.ids, all[0], all[1]) || !b1.done {
		t.Fatalf("back to page 1: %+v", b1)
	}
	// Past the end: an empty page with null iterators.
	end := h.page(withIterator(base, p3.iterator))
	if len(end.ids) != 0 || !end.done || end.iterator != nil || end.prevIterator != nil {
		t.Fatalf("past the end: %+v", end)
	}
	// Descending.
	d := h.page("/api/v1/app?limit=3&order=descending")
	if !sameIDs(d.ids, all[4], all[3], all[2]) || d.done {
		t.Fatalf("descending: %+v", d)
	}
	d2 := h.page(withIterator("/api/v1/app?limit=3&order=descending", d.iterator))
	if !sameIDs(d2.ids, all[1], all[0]) || !d2.done {
		t.Fatalf("descending page 2: %+v", d2)
	}
}

func TestPaginationEventTypesByName(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"c", "a", "b"} {
		h.createEventType(n)
	}
	p := h.page("/api/v1/event-type?limit=2")
	if !sameIDs(p.ids, "a", "b") || p.iterator == nil || p.done {
		t.Fatalf("page 1: %+v", p)
	}
	p = h.page(withIterator("/api/v1/event-type?limit=2", p.iterator))
	if !sameIDs(p.ids, "c") || !p.done {
		t.Fatalf("page 2: %+v", p)
	}
}

// TestPaginationNamesStartingWithDash walks event types whose names start
// with '-' one at a time, both ways and in both orders: a name such as
// "-dash" must not read as "backwards from dash" (iterators are opaque).
func TestPaginationNamesStartingWithDash(t *testing.T) {
	h := newHarness(t)
	names := []string{"--x", "-a", "-dash", "-z", "a", "dash", "z"} // ascending
	for _, n := range names {
		h.createEventType(n)
	}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)

	for _, tc := range []struct {
		order string
		want  []string
	}{{"ascending", names}, {"descending", reversed}} {
		t.Run(tc.order, func(t *testing.T) {
			base := "/api/v1/event-type?limit=1&order=" + tc.order
			var got []string
			p := h.page(base)
			for {
				got = append(got, p.ids...)
				if p.done {
					break
				}
				if len(got) > len(names) {
					t.Fatalf("forward walk does not end: %v", got)
				}
				p = h.page(withIterator(base, p.iterator))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("forward, one at a time: got %v, want %v", got, tc.want)
			}

			// Back from the last page to the first.
			var back []string
			for {
				p = h.page(withIterator(base, p.prevIterator))
				back = append(p.ids, back...)
				if p.done || len(back) > len(names) {
					break
				}
			}
			if want := tc.want[:len(tc.want)-1]; !slices.Equal(back, want) {
				t.Errorf("backward, one at a time: got %v, want %v", back, want)
			}
		})
	}
}

// TestIteratorEarlierForms checks that the iterators given out before they
// became opaque — the key, and "-" + the key — still work.
func TestIteratorEarlierForms(t *testing.T) {
	h := newHarness(t)
	var all []string
	for i := 0; i < 4; i++ {
		all = append(all, str(h.createApp(map[string]any{"name": fmt.Sprint("app", i)})["id"]))
	}
	base := "/api/v1/app?limit=2"
	if p := h.page(withIterator(base, all[1])); !sameIDs(p.ids, all[2], all[3]) {
		t.Errorf("iterator=<id>: got %v, want %v", p.ids, all[2:])
	}
	if p := h.page(withIterator(base, "-"+all[2])); !sameIDs(p.ids, all[0], all[1]) {
		t.Errorf("iterator=-<id>: got %v, want %v", p.ids, all[:2])
	}
	for _, n := range []string{"b", "c"} {
		h.createEventType(n)
	}
	if p := h.page("/api/v1/event-type?iterator=b"); !sameIDs(p.ids, "c") {
		t.Errorf("iterator=<name>: got %v, want [c]", p.ids)
	}
}

func TestBadIterators(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	b64 := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct{ name, path, it string }{
		{"not base64", "/api/v1/event-type", "~*!"},
		{"empty", "/api/v1/event-type", "~"},
		{"direction only", "/api/v1/event-type", "~" + b64([]byte("f"))},
		{"unknown direction", "/api/v1/event-type", "~" + b64([]byte("xname"))},
		{"bad name", "/api/v1/event-type", "~" + b64([]byte("fa b"))},
		{"key of another list", "/api/v1/app", "~" + b64([]byte("f"+strings.Replace(app, "app_", "msg_", 1)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantValidation(t, h.do("GET", withIterator(tc.path+"?limit=1", tc.it), nil), []string{"query", "iterator"})
		})
	}
}

func TestLimits(t *testing.T) {
	h := newHarness(t)
	for i := 0; i < 3; i++ {
		h.createApp(map[string]any{"name": "a"})
	}
	tests := []struct {
		limit string
		n     int // items expected, or -1 for 422
	}{
		{"", 3}, {"1", 1}, {"250", 3}, {"0", -1}, {"251", -1}, {"-1", -1}, {"x", -1}, {"1.5", -1},
	}
	for _, tt := range tests {
		t.Run("limit="+tt.limit, func(t *testing.T) {
			res := h.do("GET", "/api/v1/app?limit="+tt.limit, nil)
			if tt.n < 0 {
				wantValidation(t, res, []string{"query", "limit"})
				return
			}
			if got := len(res.Data(t)); got != tt.n {
				t.Errorf("%d items, want %d", got, tt.n)
			}
		})
	}
}

func TestLimit250(t *testing.T) {
	h := newHarness(t)
	app := str(h.createApp(map[string]any{"name": "a"})["id"])
	for i := 0; i < 251; i++ {
		h.sendMessage(app, map[string]any{})
	}
	p := h.page("/api/v1/app/" + app + "/msg?limit=250")
	if len(p.ids) != 250 || p.done {
		t.Fatalf("limit=250: %d items, done %v", len(p.ids), p.done)
	}
	p = h.page(withIterator("/api/v1/app/"+app+"/msg?limit=250", p.iterator))
	if len(p.ids) != 1 || !p.done {
		t.Fatalf("rest: %d items, done %v", len(p.ids), p.done)
	}
	if p = h.page("/api/v1/app/" + app + "/msg?with_content=false"); len(p.ids) != 50 {
		t.Fatalf("default limit: %d items, want 50", len(p.ids))
	}
}
