package webhook

import "time"

// Secret rotation limits, as in Svix.
const (
	// MaxOldKeys is how many rotated-out keys may still be in their grace
	// period; a rotation that would keep more is refused.
	MaxOldKeys = 10
	// DefaultRotationGrace is how long a rotated-out key keeps signing
	// unless the caller says otherwise.
	DefaultRotationGrace = 24 * time.Hour
	// MaxRotationGrace is the longest grace period a rotation may ask for.
	MaxRotationGrace = 7 * 24 * time.Hour
)

// RotateKey makes key the endpoint's current secret. The previous current
// key keeps signing until now+grace (a zero grace drops it at once) and
// keys whose grace period has ended are dropped. It refuses, with a
// BadRequest of code "limit_reached", a rotation that would leave more than
// MaxOldKeys keys in their grace period.
func (ep *Endpoint) RotateKey(key []byte, grace time.Duration, now time.Time) error {
	keys := []SigningKey{{Key: key}}
	for i, k := range ep.Keys {
		if i == 0 {
			k.ExpiresAt = now.Add(grace)
		}
		if k.ExpiresAt.IsZero() || k.ExpiresAt.After(now) {
			keys = append(keys, k)
		}
	}
	if old := len(keys) - 1; old > MaxOldKeys {
		return BadRequest("limit_reached",
			"the endpoint already has %d previous secrets in their grace period; wait for one to expire or rotate with no grace period",
			old-1)
	}
	ep.Keys = keys
	return nil
}

// SetDisabled disables the endpoint by hand or re-enables it, and reports
// whether it went from enabled to disabled (the caller then cancels its
// pending deliveries). Disabling a disabled endpoint keeps its reason;
// re-enabling clears the failure clock, so the week before the sweeper
// disables it again starts anew.
func (ep *Endpoint) SetDisabled(disabled bool, now time.Time) bool {
	switch {
	case disabled && !ep.Disabled:
		ep.Disabled, ep.DisabledWhy, ep.DisabledAt = true, DisabledManual, now
		return true
	case !disabled && ep.Disabled:
		ep.Disabled, ep.DisabledWhy, ep.DisabledAt = false, "", time.Time{}
		ep.FailingSince = time.Time{}
	}
	return false
}
