package sender

import (
	"errors"
	"testing"
)

func TestGuardDialRejectsBadInput(t *testing.T) {
	tests := []struct{ network, address string }{
		{"udp4", "8.8.8.8:53"},
		{"tcp4", "not-an-address"},
		{"tcp4", "8.8.8.8"},
	}
	for _, tt := range tests {
		if err := guardDial(t.Context(), tt.network, tt.address, nil); !errors.Is(err, ErrBlocked) {
			t.Errorf("guardDial(%s, %s) = %v, want ErrBlocked", tt.network, tt.address, err)
		}
	}
	if err := guardDial(t.Context(), "tcp4", "8.8.8.8:443", nil); err != nil {
		t.Errorf("guardDial(tcp4, 8.8.8.8:443) = %v, want nil", err)
	}
}
