package webhook

import (
	"fmt"
	"strings"
	"time"
)

// Schedule is the retry schedule: the waits between consecutive attempts of
// one delivery. A delivery gets len(Schedule)+1 attempts in all; the wait
// before attempt n+1 (n counted from 1) is Schedule[n-1].
type Schedule []time.Duration

// DefaultSchedule is the seed page's policy: after a failure retry
// immediately, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h —
// nine attempts in all, spread over about 27.6 hours.
var DefaultSchedule = Schedule{
	0,
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
	10 * time.Hour,
}

// MaxAttempts is the number of attempts a delivery gets before it fails.
func (s Schedule) MaxAttempts() int { return len(s) + 1 }

// Next reports the wait before the next attempt after `attempts` attempts
// have failed, and false when the schedule is exhausted.
func (s Schedule) Next(attempts int) (time.Duration, bool) {
	if attempts < 1 || attempts > len(s) {
		return 0, false
	}
	return s[attempts-1], true
}

// String formats the schedule the way ParseSchedule reads it.
func (s Schedule) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

// ParseSchedule reads a comma-separated list of Go durations, e.g.
// "0s,1s,2s". Waits must not be negative; the list may not be empty.
func ParseSchedule(v string) (Schedule, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, fmt.Errorf("retry schedule is empty")
	}
	var s Schedule
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("retry schedule: %w", err)
		}
		if d < 0 {
			return nil, fmt.Errorf("retry schedule: negative wait %s", d)
		}
		s = append(s, d)
	}
	return s, nil
}
