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
// attempt to it is quick again, and it parks no more than SlowShare. So a
// hanging endpoint holds SlowShare workers, not all of them, and its
// backlog waits in the store (below) rather than in memory.
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
// parked (a healthy or failing endpoint: EndpointShare parked) wait in the
// store: they are put back due, marked as waiting for a slot of their
// endpoint (Store.Wait), so that no claim takes them again meanwhile, and
// as the endpoint's slots free the queue claims them back for it
// (Store.ClaimWaiting), half a park at a time. A backlog to one endpoint
// (a Recover over days, a receiver back after an outage, a restart after
// a crash) thus goes out at the endpoint's own pace, without holding
// claims in memory and without waiting out a lease. New messages'
// deliveries to a healthy endpoint (held, see Queue.Hold) are the
// exception: they are in memory already, bounded by the room of Hold, so
// they park whatever their number, and a burst of new messages to one
// endpoint goes out at its share's pace without a write. Once the
// endpoint turns slow or failing, shed sends those beyond its park limit
// to wait in the store like any other.

// admission is what becomes of a claimed delivery.
type admission int

const (
	runNow   admission = iota // a slot of its endpoint is free: attempt it
	parked                    // wait in memory for a slot of its endpoint
	overflow                  // beyond what may park, or too old: wait in the store
)

// shares keeps the per-endpoint counts.
type shares struct {
	share, slowShare, failingShare int
	slowAfter                      time.Duration

	// kick wakes the queue's loop when an endpoint with deliveries
	// waiting in the store has room for them (see refills).
	kick func()

	mu  sync.Mutex
	eps map[string]*endpointLoad
}

type endpointLoad struct {
	starts  []time.Time // of the attempts in flight
	slow    bool        // the last attempt took slowAfter or longer
	failing bool        // the last attempt failed and scheduled a retry
	parked  []claimed
	// waiting: some of its deliveries wait in the store. toWait: how many
	// the queue has still to put there; incoming: how many it claimed
	// back from there that are not admitted yet.
	waiting          bool
	toWait, incoming int
	// sleeping: how many of its deliveries the throttle holds back,
	// kept aside until their reservations (throttle.go).
	sleeping int
}

func newShares(share, slowShare, failingShare int, slowAfter time.Duration, kick func()) *shares {
	return &shares{share: share, slowShare: slowShare, failingShare: failingShare, slowAfter: slowAfter,
		kick: kick, eps: map[string]*endpointLoad{}}
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

// admit takes a slot of the delivery's endpoint at now, or parks it, or
// sends it to wait in the store: so does a delivery that is not fresh
// (it waited in memory so long that its attempt could outlast its claim).
func (s *shares) admit(c claimed, now time.Time, fresh bool) admission {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.eps[c.ref.EndpointID]
	if e == nil {
		e = &endpointLoad{}
		s.eps[c.ref.EndpointID] = e
	}
	if c.fromStore {
		e.incoming--
	}
	slept := c.slept
	if slept {
		e.sleeping--
		c.slept = false
	}
	limit := s.limit(e, now)
	switch {
	case !fresh:
	case !c.held && !slept && e.sleeping >= s.parkLimit(e, now):
		// The endpoint's throttle holds a park's worth back already: a
		// delivery claimed from the store waits there (memory holds a
		// bounded part of a throttled backlog, and parked it would
		// count as outstanding for a second or more).
	case len(e.starts) < limit:
		e.starts = append(e.starts, now)
		return runNow
	case len(e.parked) < s.parkLimit(e, now),
		c.held && !e.failing && !s.isSlow(e, now):
		e.parked = append(e.parked, c)
		return parked
	}
	e.waiting = true
	e.toWait++
	return overflow
}

// done records that the endpoint's attempt started at start has ended at
// now, having failed (and scheduled a retry) or not, and passes its slot
// to a parked delivery of the endpoint if there is one and the endpoint's
// share allows; otherwise it frees the slot.
func (s *shares) done(endpointID string, start, now time.Time, failed bool) (claimed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ended(endpointID, start)
	if e == nil {
		return claimed{}, false // not admitted here
	}
	e.slow = now.Sub(start) >= s.slowAfter
	e.failing = failed
	return s.handOff(endpointID, e, now)
}

// throttled records that the endpoint's attempt started at start was
// not made — its throttle holds the delivery back, which the queue keeps
// aside until then (counted as sleeping until it is admitted again) —
// and passes the slot on as done does. The endpoint's health is
// unchanged: nothing was sent.
func (s *shares) throttled(endpointID string, start, now time.Time) (claimed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ended(endpointID, start)
	if e == nil {
		return claimed{}, false
	}
	e.sleeping++
	return s.handOff(endpointID, e, now)
}

// skip gives up a slot that done passed to a parked delivery which is
// not attempted after all, passing it on in turn: the delivery is too
// old, and goes to wait in the store (toStore), or the queue is stopping.
func (s *shares) skip(endpointID string, start, now time.Time, toStore bool) (claimed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.ended(endpointID, start)
	if e == nil {
		return claimed{}, false
	}
	if toStore {
		e.waiting = true
		e.toWait++
	}
	return s.handOff(endpointID, e, now)
}

// ended removes the endpoint's attempt started at start from those in
// flight (the caller holds mu), and returns the endpoint's load; nil if
// the endpoint is not tracked (the delivery was not admitted here).
func (s *shares) ended(endpointID string, start time.Time) *endpointLoad {
	e := s.eps[endpointID]
	if e != nil {
		if i := slices.Index(e.starts, start); i >= 0 {
			e.starts = slices.Delete(e.starts, i, i+1)
		}
	}
	return e
}

// handOff passes a freed slot (already removed from starts) to the first
// parked delivery, if the share allows, starting it at now. With nothing
// left in flight the share (at least 1) always allows: a parked delivery
// is never stranded. It kicks the queue's loop when the endpoint has
// deliveries waiting in the store and room for them.
func (s *shares) handOff(endpointID string, e *endpointLoad, now time.Time) (claimed, bool) {
	defer func() {
		if e.waiting && s.room(e, now) >= s.refillAt(e, now) {
			s.kick()
		}
	}()
	if len(e.parked) > 0 && len(e.starts) < s.limit(e, now) {
		next := e.parked[0]
		e.parked = e.parked[1:]
		e.starts = append(e.starts, now)
		return next, true
	}
	s.forgetIdle(endpointID, e)
	return claimed{}, false
}

// forgetIdle stops tracking a healthy endpoint that has nothing in
// flight, parked, or waiting in the store.
func (s *shares) forgetIdle(endpointID string, e *endpointLoad) {
	if len(e.starts) == 0 && len(e.parked) == 0 && !e.slow && !e.failing && !e.waiting && e.incoming == 0 && e.sleeping == 0 {
		delete(s.eps, endpointID)
	}
}

// room is how many more of the endpoint's deliveries may be in flight or
// parked at now, counting those on their way from the store.
func (s *shares) room(e *endpointLoad, now time.Time) int {
	room := s.limit(e, now) + s.parkLimit(e, now) - len(e.starts) - len(e.parked) - e.incoming
	if e.sleeping > 0 {
		// Held back by its throttle: no more than a park's worth (see
		// admit).
		room = min(room-e.sleeping, s.parkLimit(e, now)-e.sleeping-e.incoming)
	}
	return room
}

// refillAt is the room at which deliveries waiting in the store are
// claimed back: half a park, so that the endpoint's slots never run dry
// while the claim is written, and a backlog costs a claim per half park
// rather than per attempt.
func (s *shares) refillAt(e *endpointLoad, now time.Time) int {
	return max(1, s.parkLimit(e, now)/2)
}

// refill is a claim of deliveries waiting in the store for one endpoint.
type refill struct {
	endpointID string
	n          int
}

// refills returns the claims to make for endpoints with deliveries
// waiting in the store and room for them, at most free deliveries in
// all, and counts them as incoming; report each one's result with
// refilled.
func (s *shares) refills(now time.Time, free int) []refill {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []refill
	for id, e := range s.eps {
		if free <= 0 {
			break
		}
		if room := s.room(e, now); e.waiting && room >= s.refillAt(e, now) {
			n := min(room, free)
			e.incoming += n
			free -= n
			out = append(out, refill{id, n})
		}
	}
	return out
}

// refilled records that a refill of r.n deliveries claimed got of them,
// or failed (failed true, got 0). Fewer than asked means none are left
// waiting in the store, unless some are still on their way there; a
// failed claim says nothing of what waits, so the endpoint still waits,
// and the next pass of the loop tries again.
func (s *shares) refilled(r refill, got int, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.eps[r.endpointID]
	if e == nil {
		return
	}
	e.incoming -= r.n - got
	if !failed && got < r.n && e.toWait == 0 {
		e.waiting = false
		s.forgetIdle(r.endpointID, e)
	}
}

// stored records that n of the endpoint's deliveries sent to wait in the
// store were put there (or failed to be: then they are due again when
// their claims end).
func (s *shares) stored(endpointID string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.eps[endpointID]; e != nil {
		e.toWait -= n
	}
}

// shed returns the parked deliveries of endpoints that are slow or
// failing at now beyond their park limit, removing them: the caller sends
// them to wait in the store. (They parked beyond it while the endpoint
// was healthy, or, slow, took longer than its share.)
func (s *shares) shed(now time.Time) []claimed {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []claimed
	for _, e := range s.eps {
		if keep := s.parkLimit(e, now); len(e.parked) > keep && (e.failing || s.isSlow(e, now)) {
			out = append(out, e.parked[keep:]...)
			e.toWait += len(e.parked) - keep
			e.waiting = true
			e.parked = slices.Clip(e.parked[:keep])
		}
	}
	return out
}
