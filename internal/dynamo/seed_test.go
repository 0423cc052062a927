package dynamo

import (
	"maps"
	"slices"
	"testing"

	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// TestSeedEventTypes: the first seed creates the catalog; later seeds
// (later cold starts) create nothing and leave what the API did since —
// an edited description, an expunged type, a type created through the API
// first — and cost one BatchGetItem; the markers are in no list.
func TestSeedEventTypes(t *testing.T) {
	clock := storetest.NewClock(storetest.Epoch)
	s := newStore(t, clock)
	ctx := t.Context()
	catalog := func() []webhook.EventType {
		var ets []webhook.EventType
		for _, name := range []string{"a.one", "b.two", "c.three"} {
			ets = append(ets, webhook.EventType{Name: name, Description: "seeded " + name, Schemas: []byte(`{}`),
				CreatedAt: clock.Now(), UpdatedAt: clock.Now()})
		}
		return ets
	}

	// c.three was created through the API before the first seed.
	mine := webhook.EventType{Name: "c.three", Description: "mine", CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
	if err := s.CreateEventType(ctx, &mine); err != nil {
		t.Fatal(err)
	}
	created, err := s.SeedEventTypes(ctx, catalog())
	if err != nil {
		t.Fatalf("first seed: %v", err)
	}
	if want := []string{"a.one", "b.two"}; !slices.Equal(created, want) {
		t.Errorf("first seed created %v, want %v", created, want)
	}

	// What the API does afterwards.
	a, err := s.GetEventType(ctx, "a.one")
	if err != nil {
		t.Fatal(err)
	}
	prev := a.UpdatedAt
	a.Description, a.UpdatedAt = "edited", clock.Advance(1000)
	if err := s.UpdateEventType(ctx, a, prev); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEventType(ctx, "b.two"); err != nil {
		t.Fatal(err)
	}

	for _, round := range []string{"second", "third"} {
		s.rec.reset()
		created, err = s.SeedEventTypes(ctx, catalog())
		if err != nil {
			t.Fatalf("%s seed: %v", round, err)
		}
		if len(created) != 0 {
			t.Errorf("%s seed created %v, want nothing", round, created)
		}
		if got, want := s.rec.counts(), map[string]int{"BatchGetItem": 1}; !maps.Equal(got, want) {
			t.Errorf("%s seed: operations %v, want %v", round, got, want)
		}
		page, err := s.ListEventTypes(ctx, webhook.EventTypeFilter{IncludeArchived: true, ListOptions: webhook.ListOptions{Ascending: true}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, et := range page.Items {
			got[et.Name] = et.Description
		}
		if want := map[string]string{"a.one": "edited", "c.three": "mine"}; !maps.Equal(got, want) {
			t.Errorf("after the %s seed: event types %v, want %v", round, got, want)
		}
	}
}
