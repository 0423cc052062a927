package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
)

// TestWantPage pins the reference model that checkPaging holds stores to.
func TestWantPage(t *testing.T) {
	keys := []string{"b", "d", "f", "h", "j"}
	for _, tc := range []struct {
		name     string
		opts     webhook.ListOptions
		want     []string
		wantMore bool
	}{
		{"FirstAscending", webhook.ListOptions{Limit: 2, Ascending: true}, []string{"b", "d"}, true},
		{"FirstDescending", webhook.ListOptions{Limit: 2}, []string{"j", "h"}, true},
		{"DefaultLimit", webhook.ListOptions{}, []string{"j", "h", "f", "d", "b"}, false},
		{"AfterCursor", webhook.ListOptions{Limit: 2, Cursor: "d", Ascending: true}, []string{"f", "h"}, true},
		{"LastPage", webhook.ListOptions{Limit: 2, Cursor: "h", Ascending: true}, []string{"j"}, false},
		{"CursorBetweenKeys", webhook.ListOptions{Limit: 2, Cursor: "e", Ascending: true}, []string{"f", "h"}, true},
		{"CursorPastEnd", webhook.ListOptions{Limit: 2, Cursor: "z", Ascending: true}, nil, false},
		{"DescendingAfterCursor", webhook.ListOptions{Limit: 2, Cursor: "h"}, []string{"f", "d"}, true},
		{"Backward", webhook.ListOptions{Limit: 2, Cursor: "h", Backward: true, Ascending: true}, []string{"d", "f"}, true},
		{"BackwardToStart", webhook.ListOptions{Limit: 2, Cursor: "f", Backward: true, Ascending: true}, []string{"b", "d"}, false},
		{"BackwardDescending", webhook.ListOptions{Limit: 2, Cursor: "d", Backward: true}, []string{"h", "f"}, true},
		{"BackwardWithoutCursor", webhook.ListOptions{Limit: 2, Backward: true, Ascending: true}, []string{"b", "d"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, more := wantPage(keys, tc.opts)
			if d := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); d != "" || more != tc.wantMore {
				t.Errorf("wantPage(%+v): got more=%v, want %v; keys (-want +got):\n%s", tc.opts, more, tc.wantMore, d)
			}
		})
	}
}

func TestClock(t *testing.T) {
	c := NewClock(Epoch)
	if got := c.Advance(3); !got.Equal(Epoch.Add(3)) || !c.Now().Equal(got) {
		t.Errorf("Advance(3) = %v, Now() = %v; want both %v", got, c.Now(), Epoch.Add(3))
	}
	c.Set(Epoch)
	if got := c.Now(); !got.Equal(Epoch) {
		t.Errorf("Now() after Set = %v, want %v", got, Epoch)
	}
}
