package localqueue

import (
	"slices"
	"sync"
	"time"
)

// Fair shares of the workers.
//
// Every endpoint may have at most EndpointShare attempts in flight, so
// that one endpoint cannot take every worker. A delivery claimed for an
// endpoint at its share is parked: the worker that finishes one of that
// endpoint's attempts runs it next, and the other workers go on with
// other endpoints.
//
// An endpoint is slow while one of its attempts has been running for
// SlowAfter or longer, or its last attempt took that long (it hangs until
// the timeout, or answers slowly); its share is then SlowShare, until an
// attempt to it is quick again. A slow endpoint's deliveries beyond its
// share and as many parked are not attempted: they stay claimed, and are
// due again when their lease ends. So a hanging endpoint holds SlowShare
// workers, not all of them, and its backlog is looked at once per lease
// rather than at every claim.
//
// An endpoint is failing while its last attempt failed and scheduled a
// retry; its share is then FailingShare, until an attempt to it ends
// without scheduling one (it succeeded, or the run ended). Its deliveries
// beyond that share are parked like a healthy endpoint's: a retry storm
// runs on a few workers at a time, spread out, instead of taking a burst
// of them — and the CPU and the write connection with them — from the
// healthy endpoints' first attempts.
//
// Any endpoint's deliveries beyond its share in flight and as many again
// parked (a healthy or failing endpoint: EndpointShare parked) are left
// to their lease like a slow endpoint's surplus: a burst that large to one
// endpoint waits a lease rather than holding claims in memory. New
// messages' deliveries to a healthy endpoint (held, see Queue.Hold) are
// the exception: they are in memory already, bounded by the room of Hold,
// so they park whatever their number, and a burst of new messages to one
// endpoint goes out at its share's pace instead of its surplus waiting a
// lease. Once the endpoint turns slow or failing, shed leaves those
// beyond its park limit to their claim like any other.

// admission is what becomes of a claimed delivery.
type admission int

const (
	runNow  admission = iota // a slot of its endpoint is free: attempt it
	parked                   // wait for a slot of its endpoint
	dropped                  // beyond what may park: left to its lease
)

// shares keeps the per-endpoint counts.
type shares struct {
	share, slowShare, failingShare int
	slowAfter                      time.Duration

	mu  sync.Mutex
	eps map[string]*endpointLoad
}

type endpointLoad struct {
	starts  []time.Time // of the attempts in flight
	slow    bool        // the last attempt took slowAfter or longer
	failing bool        // the last attempt failed and scheduled a retry
	parked  []claimed
}

func newShares(share, slowShare, failingShare int, slowAfter time.Duration) *shares {
	return &shares{share: share, slowShare: slowShare, failingShare: failingShare, slowAfter: slowAfter, eps: map[string]*endpointLoad{}}
}

// isSlow reports whether the endpoint is slow at now.
func (s *shares) isSlow(e *endpointLoad, now time.Time) bool {
	return e.slow || len(e.starts) > 0 && now.Sub(slices.MinFunc(e.starts, time.Time.Compare)) >= s.slowAfter
}

// limit is the endpoint's share of attempts in flight at now: the
// smallest of those that apply to it.
func (s *shares) limit(e *endpointLoad, now time.Time) int {
	limit := s.share
	if s.isSlow(e, now) {
		limit = min(limit, s.slowShare)
	}
	if e.failing {
		limit = min(limit, s.failingShare)
	}
	return limit
}

// parkLimit is how many of the endpoint's deliveries may wait for a slot.
func (s *shares) parkLimit(e *endpointLoad, now time.Time) int {
	if s.isSlow(e, now) {
		return s.slowShare
	}
	return s.share
}

// admit takes a slot of the delivery's endpoint at now, or parks or
// drops the delivery.
func (s *shares) admit(c claimed, now time.Time) admission {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.eps[c.ref.EndpointID]
	if e == nil {
		e = &endpointLoad{}
		s.eps[c.ref.EndpointID] = e
	}
	limit := s.limit(e, now)
	switch {
	case len(e.starts) < limit:
		e.starts = append(e.starts, now)
		return runNow
	case len(e.parked) < s.parkLimit(e, now),
		c.held && !e.failing && !s.isSlow(e, now):
		e.parked = append(e.parked, c)
		return parked
	}
	return dropped
}

// done records that the endpoint's attempt started at start has ended at
// now, having failed (and scheduled a retry) or not, and passes its slot
// to a parked delivery of the endpoint if there is one and the endpoint's
// share allows; otherwise it frees the slot.
func (s *shares) done(endpointID string, start, now time.Time, failed bool) (claimed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.eps[endpointID]
	if e == nil {
		return claimed{}, false // not admitted here
	}
	if i := slices.Index(e.starts, start); i >= 0 {
		e.starts = slices.Delete(e.starts, i, i+1)
	}
	e.slow = now.Sub(start) >= s.slowAfter
	e.failing = failed
	return s.handOff(endpointID, e, now)
}

// skip gives up a slot that done passed to a parked delivery which is
// not attempted after all (too old, or shutting down), passing it on in
// turn.
func (s *shares) skip(endpointID string, start, now time.Time) (claimed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.eps[endpointID]
	if e == nil {
		return claimed{}, false
	}
	if i := slices.Index(e.starts, start); i >= 0 {
		e.starts = slices.Delete(e.starts, i, i+1)
	}
	return s.handOff(endpointID, e, now)
}

// handOff passes a freed slot (already removed from starts) to the first
// parked delivery, if the share allows, starting it at now. With nothing
// left in flight the share (at least 1) always allows: a parked delivery
// is never stranded.
func (s *shares) handOff(endpointID string, e *endpointLoad, now time.Time) (claimed, bool) {
	if len(e.parked) > 0 && len(e.starts) < s.limit(e, now) {
		next := e.parked[0]
		e.parked = e.parked[1:]
		e.starts = append(e.starts, now)
		return next, true
	}
	if len(e.starts) == 0 && len(e.parked) == 0 && !e.slow && !e.failing {
		delete(s.eps, endpointID) // forget idle healthy endpoints
	}
	return claimed{}, false
}

// shed returns the parked deliveries of endpoints that are slow or
// failing at now beyond their park limit, removing them: the caller
// leaves them to their lease. (They parked beyond it while the endpoint
// was healthy, or, slow, took longer than its share.)
func (s *shares) shed(now time.Time) []claimed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []claimed
	for _, e := range s.eps {
		if keep := s.parkLimit(e, now); len(e.parked) > keep && (e.failing || s.isSlow(e, now)) {
			out = append(out, e.parked[keep:]...)
			e.parked = slices.Clip(e.parked[:keep])
		}
	}
	return out
}
