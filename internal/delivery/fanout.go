package delivery

import (
	"context"
	"sync"

	"github.com/hookstep/hookstep/internal/webhook"
)

// fanoutApps bounds the apps whose endpoints the fan-out keeps: past it,
// the list starts over.
const fanoutApps = 4096

// fanout keeps each app's endpoints as last read for a message's fan-out,
// over a store that counts its changes (webhook.ChangeCounter), and gives
// them back while the count has not moved: a message then reads nothing
// but its app. Any change of the store drops them all (changes are rare:
// a new, updated or deleted endpoint or app, a resend).
type fanout struct {
	mu      sync.Mutex
	changes uint64                         // the count the lists were read at
	apps    map[string][]*webhook.Endpoint // by app id
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
		if s.fanout.apps == nil || s.fanout.changes != changes || len(s.fanout.apps) >= fanoutApps {
			s.fanout.changes, s.fanout.apps = changes, map[string][]*webhook.Endpoint{}
		}
		s.fanout.apps[appID] = eps
		s.fanout.mu.Unlock()
	}
	return eps, changes, nil
}
