package dynamo

import (
	"context"

	"github.com/hookstep/hookstep/internal/webhook"
)

// seededKey is the marker that the catalog seeded the event type name
// once. It sits beside the type's item (sk SEEDED), in no index, and
// outlives the type: DeleteEventType removes only the ET item.
func seededKey(name string) key { return key{"ET#" + name, "SEEDED"} }

// SeedEventTypes creates each of ets that was never seeded before, and
// returns the names it created. A type is seeded at most once per table:
// after it, a marker item remembers it, so that what the API does to the
// type later — an edit, an archive, an expunge — survives every later
// call (the api function calls it on each cold start). A type that exists
// without a marker (created through the API first) is left as it is and
// marked.
//
// Its cost once every type is marked is one BatchGetItem. Two concurrent
// calls (two cold starts) may both create a type: one CreateEventType
// wins, the other is a Conflict, which is ignored.
func (s *Store) SeedEventTypes(ctx context.Context, ets []webhook.EventType) ([]string, error) {
	keys := make([]key, len(ets))
	for i, et := range ets {
		keys[i] = seededKey(et.Name)
	}
	marked, err := s.getMany(ctx, keys, true)
	if err != nil {
		return nil, wrapf(err, "seed event types")
	}
	done := make(map[key]bool, len(marked))
	for _, it := range marked {
		done[keyOf(it)] = true
	}
	var created []string
	for i := range ets {
		et := &ets[i]
		k := seededKey(et.Name)
		if done[k] {
			continue
		}
		switch err := s.CreateEventType(ctx, et); {
		case err == nil:
			created = append(created, et.Name)
		case !webhook.IsConflict(err):
			return created, err
		}
		if err := s.putNew(ctx, k.item()); err != nil && !conditionFailed(err) {
			return created, wrapf(err, "seed event type %s: mark", et.Name)
		}
	}
	return created, nil
}
