package webhook

import (
	"testing"
	"time"
)

func TestRotateKey(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ep := &Endpoint{Keys: []SigningKey{{Key: []byte("k0")}}}
	if err := ep.RotateKey([]byte("k1"), time.Hour, now); err != nil {
		t.Fatal(err)
	}
	if len(ep.Keys) != 2 || string(ep.Keys[0].Key) != "k1" || !ep.Keys[0].ExpiresAt.IsZero() || !ep.Keys[1].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("after one rotation: %+v", ep.Keys)
	}
	// Keys past their grace period are dropped; a zero grace drops the old key at once.
	if err := ep.RotateKey([]byte("k2"), 0, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if len(ep.Keys) != 1 || string(ep.Keys[0].Key) != "k2" {
		t.Fatalf("after expiry and a zero grace: %+v", ep.Keys)
	}
	// MaxOldKeys keys in grace are allowed; one more is refused, unchanged.
	for i := range MaxOldKeys {
		if err := ep.RotateKey([]byte{byte(i)}, time.Hour, now); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}
	before := len(ep.Keys)
	err := ep.RotateKey([]byte("one-too-many"), time.Hour, now)
	if e, ok := err.(*Error); !ok || e.Kind != KindBadRequest || e.Code != "limit_reached" {
		t.Fatalf("rotation past the limit: got %v, want limit_reached", err)
	}
	if len(ep.Keys) != before {
		t.Errorf("a refused rotation changed the keys: %d, want %d", len(ep.Keys), before)
	}
}

func TestSetDisabled(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ep := &Endpoint{FailingSince: now.Add(-time.Hour)}
	if !ep.SetDisabled(true, now) || !ep.Disabled || ep.DisabledWhy != DisabledManual || !ep.DisabledAt.Equal(now) {
		t.Fatalf("disable: %+v", ep)
	}
	ep.DisabledWhy = DisabledFailing
	if ep.SetDisabled(true, now.Add(time.Minute)) || ep.DisabledWhy != DisabledFailing || !ep.DisabledAt.Equal(now) {
		t.Errorf("disabling a disabled endpoint changed it: %+v", ep)
	}
	if ep.SetDisabled(false, now) || ep.Disabled || ep.DisabledWhy != "" || !ep.DisabledAt.IsZero() || !ep.FailingSince.IsZero() {
		t.Errorf("enable: %+v, want enabled with the failure clock cleared", ep)
	}
}
