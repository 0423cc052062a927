package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
)

// mostInWindow is the most of times (sorted) that fall in one window
// [t, t+window).
func mostInWindow(times []time.Time, window time.Duration) int {
	most, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= window {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// TestThrottleRateSpreadsABacklog: an endpoint with throttleRate 5 gets
// 50 messages published at once over at least 9 s, never more than 5 in
// a second, each in exactly one attempt, while an endpoint of the same
// app without a throttle gets the same 50 at once.
//
// The windows are measured at the receiver, whose clock sees each
// request a few milliseconds after the limiter granted it, by an amount
// that varies (the first burst's attempts use what Publish read, later
// ones read the store): they are 50 ms short of a second, which still
// catches a limiter that lets a second burst start within the second
// (a token bucket refilled at 5 a second would put 9 in one).
func TestThrottleRateSpreadsABacklog(t *testing.T) {
	ctx := context.Background()
	const n, rate = 50, 5
	s := startServer(t, nil)
	c := s.Client
	slow, fast := newReceiver(t, nil), newReceiver(t, nil)
	app, err := c.Application.Create(ctx, models.ApplicationIn{Name: "Acme"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	throttle := uint16(rate)
	throttled, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: slow.URL, ThrottleRate: &throttle}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: fast.URL}, nil); err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	var wg sync.WaitGroup
	ids := make([]string, n)
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < n; i += 10 {
				msg, err := c.Message.Create(ctx, app.Id, models.MessageIn{EventType: "v1.end_user.created", Payload: payload("v1.end_user.created", i)}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = msg.Id
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	eventually(t, 5*time.Second, "the unthrottled endpoint to get every message", func() bool { return fast.succeededAll(ids) == n })
	fastTimes := arrivals(fast)
	if spread := fastTimes[len(fastTimes)-1].Sub(fastTimes[0]); spread > time.Second {
		t.Errorf("the unthrottled endpoint got its %d messages over %s, want at once (under a second)", n, spread)
	}
	if got := slow.count(); got >= n {
		t.Errorf("the throttled endpoint had %d requests when the unthrottled one had all %d, want them spread over 9 s", got, n)
	}

	eventually(t, 20*time.Second, "the throttled endpoint to get every message", func() bool { return slow.succeededAll(ids) == n })
	slowTimes := arrivals(slow)
	if len(slowTimes) != n {
		t.Errorf("the throttled endpoint got %d requests, want %d (one per message)", len(slowTimes), n)
	}
	if took := slowTimes[len(slowTimes)-1].Sub(published); took < 9*time.Second {
		t.Errorf("the throttled endpoint got its %d messages %s after they were published, want at least 9 s at %d a second", n, took, rate)
	}
	if most := mostInWindow(slowTimes, time.Second-50*time.Millisecond); most > rate {
		t.Errorf("the throttled endpoint got %d requests within a second, want at most %d", most, rate)
	}
	if most := mostInWindow(slowTimes, 50*time.Millisecond); most < rate {
		t.Errorf("the throttled endpoint got at most %d requests at once, want bursts of %d", most, rate)
	}
	limit := uint64(250)
	var attempts int
	eventually(t, 5*time.Second, "every attempt to be recorded", func() bool {
		page, err := c.MessageAttempt.ListByEndpoint(ctx, app.Id, throttled.Id, &svix.MessageAttemptListByEndpointOptions{Limit: &limit})
		if err != nil {
			t.Fatal(err)
		}
		attempts = len(page.Data)
		return attempts >= n
	})
	if attempts != n {
		t.Errorf("the throttled endpoint's attempt log has %d attempts, want %d: a throttled delivery waits, it is not an attempt", attempts, n)
	}
}

// arrivals returns the times of the receiver's requests, sorted.
func arrivals(r *receiver) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Time, len(r.requests))
	for i, q := range r.requests {
		out[i] = q.At
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}
