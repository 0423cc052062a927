package webhook

import "testing"

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
