package webhook

import (
	"slices"
	"testing"
	"time"
)

// TestAppTokenCan: ViewBase always; the secret capabilities follow from
// the stronger ones; read-only leaves reading only.
func TestAppTokenCan(t *testing.T) {
	tests := []struct {
		caps     []Capability
		readOnly bool
		want     map[Capability]bool
	}{
		{nil, false, map[Capability]bool{CapViewBase: true, CapViewEndpointSecret: false, CapCreateAttempts: false, CapManageEndpoint: false}},
		{[]Capability{CapViewBase, CapManageEndpoint}, false, map[Capability]bool{CapViewEndpointSecret: true, CapManageEndpointSecret: true, CapManageEndpoint: true, CapCreateAttempts: false}},
		{[]Capability{CapManageEndpointSecret}, false, map[Capability]bool{CapViewEndpointSecret: true, CapManageEndpointSecret: true, CapManageEndpoint: false}},
		{Capabilities, true, map[Capability]bool{CapViewBase: true, CapViewEndpointSecret: true, CapManageEndpointSecret: false, CapCreateAttempts: false, CapManageEndpoint: false}},
		{Capabilities, false, map[Capability]bool{CapViewEndpointSecret: true, CapManageEndpointSecret: true, CapCreateAttempts: true, CapManageEndpoint: true}},
	}
	for _, tt := range tests {
		tok := &AppToken{Capabilities: tt.caps, ReadOnly: tt.readOnly}
		for c, want := range tt.want {
			if got := tok.Can(c); got != want {
				t.Errorf("caps %v read-only %v: Can(%s) = %v, want %v", tt.caps, tt.readOnly, c, got, want)
			}
		}
	}
}

// TestAppTokenCutoffs: Add keeps the staircase of cut-offs that can still
// decide a death, and DeadAt takes the earliest that covers a token.
func TestAppTokenCutoffs(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cut := func(created, dead time.Duration) AppTokenCutoff {
		return AppTokenCutoff{CreatedBy: at(created), DeadAt: at(dead)}
	}
	tests := []struct {
		name string
		have AppTokenCutoffs
		add  AppTokenCutoff
		now  time.Duration
		want AppTokenCutoffs
	}{
		{"first", nil, cut(0, time.Hour), 0, AppTokenCutoffs{cut(0, time.Hour)}},
		{"at in the past means now", nil, cut(0, -time.Hour), 0, AppTokenCutoffs{cut(0, 0)}},
		{"a later call that dies later keeps the earlier one",
			AppTokenCutoffs{cut(0, time.Hour)}, cut(time.Minute, 2*time.Hour), time.Minute,
			AppTokenCutoffs{cut(0, time.Hour), cut(time.Minute, 2*time.Hour)}},
		{"a later call that dies earlier replaces it",
			AppTokenCutoffs{cut(0, 2*time.Hour)}, cut(time.Minute, time.Hour), time.Minute,
			AppTokenCutoffs{cut(time.Minute, time.Hour)}},
		{"of the cut-offs in effect the latest stays",
			AppTokenCutoffs{cut(0, time.Minute), cut(2*time.Minute, 3*time.Minute)}, cut(5*time.Minute, 6*time.Hour), 5 * time.Minute,
			AppTokenCutoffs{cut(2*time.Minute, 3*time.Minute), cut(5*time.Minute, 6*time.Hour)}},
		{"an immediate cut-off ends the staircase",
			AppTokenCutoffs{cut(0, time.Hour), cut(time.Minute, 2*time.Hour)}, cut(2*time.Minute, 2*time.Minute), 2 * time.Minute,
			AppTokenCutoffs{cut(2*time.Minute, 2*time.Minute)}},
		{"cut-offs whose tokens have all expired go",
			AppTokenCutoffs{cut(0, 0)}, cut(MaxAppTokenLife, MaxAppTokenLife+time.Hour), MaxAppTokenLife,
			AppTokenCutoffs{cut(MaxAppTokenLife, MaxAppTokenLife+time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.have.Add(tt.add, at(tt.now))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Add = %v, want %v", got, tt.want)
			}
		})
	}

	cs := AppTokenCutoffs{cut(0, time.Hour), cut(time.Minute, 2*time.Hour)}
	for _, tt := range []struct {
		created time.Duration
		want    time.Time
	}{
		{-time.Hour, at(time.Hour)},
		{0, at(time.Hour)},
		{time.Second, at(2 * time.Hour)},
		{time.Minute, at(2 * time.Hour)},
		{time.Minute + time.Millisecond, time.Time{}},
	} {
		if got := cs.DeadAt(at(tt.created)); !got.Equal(tt.want) {
			t.Errorf("DeadAt(created %v) = %v, want %v", tt.created, got, tt.want)
		}
	}
	if got, want := cs.ExpiresAt(), at(time.Minute+MaxAppTokenLife); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}

	tok := &AppToken{CreatedAt: at(30 * time.Second), ExpiresAt: at(90 * time.Minute)}
	for _, tt := range []struct {
		now  time.Duration
		cuts []AppTokenCutoffs
		want bool
	}{
		{time.Hour, nil, true},
		{90 * time.Minute, nil, false},
		{time.Hour, []AppTokenCutoffs{cs}, true}, // created after the first cut-off
		{time.Hour, []AppTokenCutoffs{nil, {cut(time.Minute, time.Hour)}}, false},
		{time.Hour - time.Millisecond, []AppTokenCutoffs{nil, {cut(time.Minute, time.Hour)}}, true},
	} {
		if got := tok.Alive(at(tt.now), tt.cuts...); got != tt.want {
			t.Errorf("Alive(%v, %v) = %v, want %v", tt.now, tt.cuts, got, tt.want)
		}
	}
}

// TestCheckAppTokenLife: a token lives after now and at most
// MaxAppTokenLife.
func TestCheckAppTokenLife(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for life, ok := range map[time.Duration]bool{0: false, time.Millisecond: true, MaxAppTokenLife: true, MaxAppTokenLife + time.Millisecond: false} {
		err := CheckAppTokenLife(&AppToken{ExpiresAt: now.Add(life)}, now)
		if (err == nil) != ok || err != nil && ErrorKind(err) != KindInvalid {
			t.Errorf("life %v: %v, want ok %v", life, err, ok)
		}
	}
}
