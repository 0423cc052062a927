// Package throttle is the rate limit behind an endpoint's throttleRate,
// shared by local mode's queue (internal/localqueue) and the AWS limiter
// (internal/dynamo): the algorithm, as a value, with no storage.
//
// Semantics: an endpoint with throttleRate N has N tokens; a request
// takes one, and the token comes back one second after the request was
// granted. So the endpoint receives at most N requests in any one-second
// window (not merely N per second on average), in bursts of at most N,
// whatever the backlog. This is a token bucket of N tokens whose refill
// is per token, one second after its use, rather than a steady trickle: a
// bucket refilled at N per second would let a burst of N be followed by
// N-1 more within the same second. A backlog thus goes out as N requests
// at once every second.
//
// A request without a token is not refused: it reserves the time its
// token comes back (Reserve returns it), and waits until then. Every
// request reserves exactly once, so a backlog of B costs B reservations,
// not B²/N retries of waiters woken together.
//
// The log holds the grants of the last second and the reservations ahead
// of now — at most N of them, the N newest: older ones cannot hold a
// token back. Grant times are rounded up to Quantum, which only delays a
// token's return, and lets a burst share one entry (Run).
//
// When the rate changes, the log is kept: a higher rate gives the extra
// tokens at once, a lower one keeps its newest grants and lets the others
// go. Reservations made under the old rate stand (they are at most the
// backlog of the moment, divided by the rate, ahead).
package throttle

import (
	"slices"
	"time"
)

// Quantum is the resolution of the log: grant times are rounded up to it.
const Quantum = 10 * time.Millisecond

// Window is how long a token stays taken.
const Window = time.Second

// Run is Count grants at the same time At (Unix milliseconds, a multiple
// of Quantum).
type Run struct {
	At    int64 `json:"at" dynamodbav:"at"`
	Count int   `json:"n" dynamodbav:"n"`
}

// Log is one endpoint's grants whose tokens have not come back, and its
// reservations, oldest first. The zero Log has every token.
type Log []Run

// Reserve takes a token for a request made at now at rate per second
// (rate > 0). It returns the log with the grant, and when the request may
// be sent: now when a token is free, otherwise when the oldest of the
// rate newest grants gives its token back.
func (l Log) Reserve(now time.Time, rate int) (Log, time.Time) {
	q := Quantum.Nanoseconds()
	nowMs := (now.UnixNano() + q - 1) / q * q / int64(time.Millisecond) // rounded up
	window := Window.Milliseconds()
	out := make(Log, 0, len(l)+1)
	for _, r := range l {
		if time.UnixMilli(r.At+window).After(now) && r.Count > 0 { // its tokens are still out
			out = append(out, r)
		}
	}
	out = out.newest(rate)
	at, sendAt := nowMs, now
	if out.count() >= rate {
		at = out[0].At + window // the oldest of the rate newest
		sendAt = time.UnixMilli(at)
		if !sendAt.After(now) {
			at, sendAt = nowMs, now
		}
	}
	out = out.add(at)
	return out.newest(rate), sendAt
}

// Len is how many grants the log holds.
func (l Log) Len() int { return l.count() }

func (l Log) count() int {
	n := 0
	for _, r := range l {
		n += r.Count
	}
	return n
}

// newest keeps the n newest grants.
func (l Log) newest(n int) Log {
	excess := l.count() - n
	for excess > 0 && len(l) > 0 {
		if l[0].Count <= excess {
			excess -= l[0].Count
			l = l[1:]
			continue
		}
		l = append(Log{{At: l[0].At, Count: l[0].Count - excess}}, l[1:]...)
		excess = 0
	}
	return l
}

// add records a grant at at, in time order.
func (l Log) add(at int64) Log {
	i, found := slices.BinarySearchFunc(l, at, func(r Run, at int64) int {
		switch {
		case r.At < at:
			return -1
		case r.At > at:
			return 1
		}
		return 0
	})
	if found {
		l[i].Count++
		return l
	}
	return slices.Insert(l, i, Run{At: at, Count: 1})
}
