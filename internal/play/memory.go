package play

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// maxMemoryTokens bounds Memory (with Keep and KeepBytes, to about
// 300 MiB at worst): beyond it the token used least recently is
// forgotten.
const maxMemoryTokens = 100

// Memory is a Store in memory, for local mode: what Play received is lost
// when the process stops (the Play URLs keep working). It keeps at most
// 100 tokens; beyond that it forgets the one used least recently.
type Memory struct {
	clock webhook.Clock
	mu    sync.Mutex
	bins  map[string]*bin
}

// bin is what Memory keeps of one token.
type bin struct {
	link      Link
	linked    bool
	requests  []kept    // newest first
	expiresAt time.Time // TTL after the last Link or Add
}

// kept is a request with its expiry.
type kept struct {
	req       Request
	expiresAt time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory that expires entries by clock.
func NewMemory(clock webhook.Clock) *Memory {
	return &Memory{clock: clock, bins: map[string]*bin{}}
}

// bin returns token's live bin, creating it if create; create also renews
// the bin's expiry. It forgets token's bin if it expired. The caller holds
// mu.
func (m *Memory) bin(token string, now time.Time, create bool) *bin {
	b, ok := m.bins[token]
	if ok && !now.Before(b.expiresAt) {
		delete(m.bins, token)
		ok = false
	}
	if !ok {
		if !create {
			return nil
		}
		m.evict(now)
		b = &bin{}
		m.bins[token] = b
	}
	if create {
		b.expiresAt = now.Add(TTL)
	}
	return b
}

// evict makes room for one more bin: it drops expired bins and, if the
// store is still full, the one closest to expiry (the least recently used).
func (m *Memory) evict(now time.Time) {
	if len(m.bins) < maxMemoryTokens {
		return
	}
	oldest := ""
	for t, b := range m.bins {
		if !now.Before(b.expiresAt) {
			delete(m.bins, t)
			continue
		}
		if oldest == "" || b.expiresAt.Before(m.bins[oldest].expiresAt) {
			oldest = t
		}
	}
	if len(m.bins) >= maxMemoryTokens && oldest != "" {
		delete(m.bins, oldest)
	}
}

// Link implements Store.
func (m *Memory) Link(_ context.Context, token string, link Link) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.bin(token, m.clock.Now(), true)
	b.link, b.linked = link, true
	return nil
}

// LinkOf implements Store.
func (m *Memory) LinkOf(_ context.Context, token string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.bin(token, m.clock.Now(), false); b != nil && b.linked {
		return b.link, nil
	}
	return Link{}, webhook.NotFound("play: no endpoint linked")
}

// Add implements Store.
func (m *Memory) Add(_ context.Context, token string, req Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	b := m.bin(token, now, true)
	req = Cut(req)
	req.Headers = slices.Clone(req.Headers)
	b.requests = slices.Insert(b.requests, 0, kept{req: req, expiresAt: now.Add(TTL)})
	if len(b.requests) > Keep {
		b.requests = slices.Clip(b.requests[:Keep])
	}
	return nil
}

// Requests implements Store.
func (m *Memory) Requests(_ context.Context, token string) ([]Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	b := m.bin(token, now, false)
	if b == nil {
		return nil, nil
	}
	var reqs []Request
	for _, k := range b.requests {
		if now.Before(k.expiresAt) {
			reqs = append(reqs, k.req)
		}
	}
	return reqs, nil
}
