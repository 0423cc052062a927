package webhook

import (
	"slices"
	"time"
)

// Subscribed reports whether a message goes to an endpoint on fan-out: the
// endpoint is enabled, its event-type filter is empty or names the type, and
// its channels are empty or share one with the message (a message without
// channels does not reach an endpoint that has channels). Resend and recover
// skip this check.
func Subscribed(ep *Endpoint, msg *Message) bool {
	if ep.Disabled {
		return false
	}
	if len(ep.FilterTypes) > 0 && !slices.Contains(ep.FilterTypes, msg.EventType) {
		return false
	}
	if len(ep.Channels) == 0 {
		return true
	}
	for _, c := range msg.Channels {
		if slices.Contains(ep.Channels, c) {
			return true
		}
	}
	return false
}

// CurrentKeys returns the endpoint's keys that still sign at now: the
// current one and any rotated-out key within its grace period.
func (ep *Endpoint) CurrentKeys(now time.Time) [][]byte {
	keys := make([][]byte, 0, len(ep.Keys))
	for _, k := range ep.Keys {
		if k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt) {
			keys = append(keys, k.Key)
		}
	}
	return keys
}
