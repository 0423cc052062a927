package delivery

import (
	"context"
	"sync"

	"github.com/hookstep/hookstep/internal/webhook"
)

// fanoutEndpoints bounds the endpoints the fan-out keeps, all apps
// together: past it, the lists start over.
const fanoutEndpoints = 1 << 16

// fanout keeps each app's endpoints as last read for a message's fan-out,
// over a store that counts its changes (webhook.ChangeCounter), and gives
// them back while the count has not moved: a message then reads nothing
// but its app. Any change of the store drops them all (changes are rare:
// a new, updated or deleted endpoint or app, a resend).
type fanout struct {
	mu      sync.Mutex
	changes uint64                         // the count the lists were read at
	apps    map[string][]*webhook.Endpoint // by app id
	n       int                            // endpoints in apps
}

// endpointsOf returns the app's endpoints, every page, and the store's
// change count read before them (0 without a ChangeCounter): what was
// read stands for the store for as long as the count stays the same.
// The endpoints are shared: callers must not change them.
func (s *Service) endpointsOf(ctx context.Context, appID string) ([]*webhook.Endpoint, uint64, error) {
	cc, counted := s.Store.(webhook.ChangeCounter)
	var changes uint64
	if counted {
		changes = cc.Changes()
		s.fanout.mu.Lock()
		eps, ok := s.fanout.apps[appID]
		if s.fanout.changes != changes {
			ok = false
		}
		s.fanout.mu.Unlock()
		if ok {
			return eps, changes, nil
		}
	}
	var eps []*webhook.Endpoint
	opts := webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}
	for {
		page, err := s.Store.ListEndpoints(ctx, appID, opts)
		if err != nil {
			return nil, 0, err
		}
		for i := range page.Items {
			eps = append(eps, &page.Items[i])
		}
		if !page.More || len(page.Items) == 0 {
			break
		}
		opts.Cursor = page.Items[len(page.Items)-1].ID
	}
	if counted {
		s.fanout.mu.Lock()
		switch {
		case s.fanout.apps != nil && changes < s.fanout.changes:
			// Read before what is kept: older.
		case len(eps) > fanoutEndpoints:
			// Too many to keep.
		default:
			if s.fanout.apps == nil || s.fanout.changes != changes || s.fanout.n+len(eps) > fanoutEndpoints {
				s.fanout.changes, s.fanout.apps, s.fanout.n = changes, map[string][]*webhook.Endpoint{}, 0
			}
			s.fanout.n += len(eps) - len(s.fanout.apps[appID])
			s.fanout.apps[appID] = eps
		}
		s.fanout.mu.Unlock()
	}
	return eps, changes, nil
}
