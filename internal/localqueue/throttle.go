package localqueue

import (
	"context"
	"sync"
	"time"

	"github.com/hookstep/hookstep/internal/throttle"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Throttling (endpoints' throttleRate) in local mode.
//
// The delivery engine asks Throttle for a token before each attempt to a
// throttled endpoint (delivery.Limiter); Throttle keeps each such
// endpoint's token log in memory (internal/throttle: N tokens, each back
// a second after its use). Without a token, the attempt is not made and
// fails with an error that says until when (delivery.ThrottledError); the
// queue then keeps the delivery aside, without a worker and without
// counting it against the endpoint's share or as failing, and gives it to
// a worker again at that time (runner.keepAside). Throttle remembers the
// reservation by run, so that attempt sends without a new token: each
// delivery takes one token, however long it waited.
//
// A throttled delivery kept aside counts as parked for its endpoint's
// room, so a backlog to a throttled endpoint waits in the store (as any
// backlog beyond an endpoint's share does, fairness.go), and is claimed
// back as the kept-aside ones go out: memory holds at most about two
// shares of it. A delivery that waited past its claim (Lease less
// AttemptTimeout) goes to wait in the store instead of being attempted;
// its reservation waits for it there, and is forgotten if it is not used
// within reservationTTL.
//
// The log is in memory: a restart gives every endpoint its full N tokens
// again (at most one extra burst of N, at the restart).

// reservationTTL is how long a reservation unused past its time is kept.
const reservationTTL = 10 * time.Minute

// Throttle is local mode's delivery.Limiter: every throttled endpoint's
// token log, and the reservations made for runs, in memory.
type Throttle struct {
	mu       sync.Mutex
	eps      map[string]*endpointTokens
	forgotAt time.Time // the last look for what to forget
}

type endpointTokens struct {
	log      throttle.Log
	reserved map[webhook.Ref]time.Time
}

// NewThrottle returns a Throttle with every token free.
func NewThrottle() *Throttle {
	return &Throttle{eps: map[string]*endpointTokens{}}
}

// Reserve implements delivery.Limiter. A run that holds a reservation
// gets it back (and uses it up once it is due) instead of a new token.
func (t *Throttle) Reserve(_ context.Context, ref webhook.Ref, rate int, now time.Time) (time.Time, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.eps[ref.EndpointID]
	if e == nil {
		e = &endpointTokens{reserved: map[webhook.Ref]time.Time{}}
		t.eps[ref.EndpointID] = e
	}
	if at, ok := e.reserved[ref]; ok {
		if !at.After(now) {
			delete(e.reserved, ref)
		}
		return at, nil
	}
	var at time.Time
	e.log, at = e.log.Reserve(now, rate)
	if at.After(now) {
		e.reserved[ref] = at
	}
	t.forget(now)
	return at, nil
}

// forget drops reservations unused long past their time and the logs of
// endpoints with every token back and nothing reserved.
func (t *Throttle) forget(now time.Time) {
	if now.Sub(t.forgotAt) < throttle.Window {
		return // at most once a second: it looks at every reservation
	}
	t.forgotAt = now
	for id, e := range t.eps {
		for ref, at := range e.reserved {
			if now.Sub(at) > reservationTTL {
				delete(e.reserved, ref)
			}
		}
		if len(e.reserved) == 0 && (len(e.log) == 0 || now.Sub(time.UnixMilli(e.log[len(e.log)-1].At)) > throttle.Window) {
			delete(t.eps, id)
		}
	}
}
