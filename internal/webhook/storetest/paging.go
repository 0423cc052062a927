package storetest

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hookstep/hookstep/internal/webhook"
)

// lister lists one page of a list and returns its items' keys.
type lister func(opts webhook.ListOptions) (keys []string, more bool, err error)

// listerOf adapts a Store list method to a lister.
func listerOf[T any](list func(webhook.ListOptions) (webhook.Page[T], error), key func(T) string) lister {
	return func(opts webhook.ListOptions) ([]string, bool, error) {
		p, err := list(opts)
		if err != nil {
			return nil, false, err
		}
		keys := make([]string, len(p.Items))
		for i, it := range p.Items {
			keys[i] = key(it)
		}
		return keys, p.More, nil
	}
}

// wantPage is the reference model of webhook.ListOptions: the keys and More
// of the page opts selects from a list whose keys are given in ascending
// order. It is webhook.PageOf, which every store's lists are checked
// against, so a store's own paging (SQLite's, DynamoDB's) checks it too.
func wantPage(keys []string, opts webhook.ListOptions) ([]string, bool) {
	return webhook.PageOf(keys, opts, func(k string) string { return k })
}

// checkPaging checks every page of a list against wantPage: both orders,
// forward and backward, several limits, and cursors at, between, before and
// after the items. keys are the keys the list must hold, in any order.
func checkPaging(t *testing.T, keys []string, list lister) {
	t.Helper()
	keys = slices.Sorted(slices.Values(keys))
	cursors := []string{""}
	for _, k := range keys {
		// k+"~" sorts after k and before the next key: keys are equally
		// long (KSUIDs) or made of characters below '~' (names).
		cursors = append(cursors, k, k+"~")
	}
	if len(keys) > 0 && len(keys[0]) > 1 {
		cursors = append(cursors, keys[0][:len(keys[0])-1]) // before every key
	}
	for _, asc := range []bool{true, false} {
		for _, limit := range []int{1, 2, len(keys) + 1} {
			for _, cursor := range cursors {
				for _, backward := range []bool{false, true} {
					opts := webhook.ListOptions{Limit: limit, Cursor: cursor, Backward: backward, Ascending: asc}
					got, more, err := list(opts)
					if err != nil {
						t.Fatalf("list %+v: %v", opts, err)
					}
					want, wantMore := wantPage(keys, opts)
					if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" || more != wantMore {
						t.Fatalf("list %+v: got more=%v, want more=%v; keys (-want +got):\n%s", opts, more, wantMore, d)
					}
				}
			}
		}
	}
}

// listAll returns every item of a list in ascending order.
func listAll[T any](t *testing.T, list func(webhook.ListOptions) (webhook.Page[T], error)) []T {
	t.Helper()
	p, err := list(webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if p.More {
		t.Fatalf("list: got More with %d items, want all items in one page", len(p.Items))
	}
	return p.Items
}
