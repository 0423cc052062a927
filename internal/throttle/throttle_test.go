package throttle

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 3_000_000) // not on a Quantum

// maxInWindow is the most times of sends that fall in one window [t, t+Window).
func maxInWindow(sends []time.Time) int {
	s := slices.Clone(sends)
	slices.SortFunc(s, time.Time.Compare)
	most, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= Window {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

func TestABacklogGoesOutInBurstsOfTheRateEverySecond(t *testing.T) {
	var l Log
	var sends []time.Time
	for range 50 {
		var at time.Time
		l, at = l.Reserve(t0, 5)
		sends = append(sends, at)
	}
	for i, at := range sends {
		want := t0
		if k := i / 5; k > 0 {
			want = t0.Truncate(Quantum).Add(Quantum).Add(time.Duration(k) * Window)
		}
		if !at.Equal(want) {
			t.Errorf("request %d: send at %s, want %s", i, at.Sub(t0), want.Sub(t0))
		}
	}
	if got := maxInWindow(sends); got != 5 {
		t.Errorf("most sends in a second: got %d, want 5", got)
	}
	if got := len(l); got != 1 {
		t.Errorf("the log holds %d runs, want 1 (the last burst): %v", got, l)
	}
}

func TestNeverMoreThanTheRateInAnySecond(t *testing.T) {
	for _, rate := range []int{1, 3, 10, 100} {
		r := rand.New(rand.NewPCG(uint64(rate), 7))
		var l Log
		var sends []time.Time
		now := t0
		for range 2000 {
			now = now.Add(time.Duration(r.ExpFloat64() * float64(time.Second) / float64(2*rate)))
			var at time.Time
			l, at = l.Reserve(now, rate)
			if at.Before(now) {
				t.Fatalf("rate %d: send at %s, before the request at %s", rate, at, now)
			}
			sends = append(sends, at)
			if l.Len() > rate {
				t.Fatalf("rate %d: the log holds %d grants, want at most the rate", rate, l.Len())
			}
		}
		if got := maxInWindow(sends); got > rate {
			t.Errorf("rate %d: %d sends in one second", rate, got)
		}
		if got := maxInWindow(sends); got < rate {
			t.Errorf("rate %d: at most %d sends in a second with requests at twice the rate: the tokens are not all used", rate, got)
		}
	}
}

func TestAnIdleEndpointSendsAtOnce(t *testing.T) {
	var l Log
	step := Window + Quantum // grant times are rounded up to a Quantum
	for i := range 3 {
		var at time.Time
		l, at = l.Reserve(t0.Add(time.Duration(i)*step), 1)
		if want := t0.Add(time.Duration(i) * step); !at.Equal(want) {
			t.Errorf("request %d a second after the last at rate 1: send at %s, want at once (%s)", i, at.Sub(t0), want.Sub(t0))
		}
	}
}

func TestARateChangeKeepsTheLog(t *testing.T) {
	var l Log
	for range 4 {
		l, _ = l.Reserve(t0, 2) // two now, two a second later
	}
	l, at := l.Reserve(t0, 10)
	if !at.Equal(t0) {
		t.Errorf("after raising the rate to 10 with 4 tokens out: send at %s, want at once", at.Sub(t0))
	}
	l, at = l.Reserve(t0, 1)
	if want := t0.Truncate(Quantum).Add(Quantum).Add(2 * Window); !at.Equal(want) {
		t.Errorf("after lowering the rate to 1: send at %s, want %s (a second after the newest)", at.Sub(t0), want.Sub(t0))
	}
	if l.Len() != 1 {
		t.Errorf("the log holds %d grants at rate 1, want 1", l.Len())
	}
}
