package sender

import (
	"context"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/hookstep/hookstep/internal/webhook"
)

// guardDial is a net.Dialer ControlContext. It runs after DNS resolution,
// once per address tried, after the socket is created and before it
// connects, so a denied address (webhook.CheckAddr) never sees a packet.
func guardDial(_ context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%w: network %q", ErrBlocked, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable dial address %q", ErrBlocked, address)
	}
	return webhook.CheckAddr(ap.Addr())
}
