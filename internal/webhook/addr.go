package webhook

import (
	"fmt"
	"net/netip"
)

// deniedPrefixes are the destinations no webhook may reach, exactly the
// list of RELIABILITY.md: this-network, private, shared (CGNAT), loopback,
// link-local, documentation, benchmarking, 6to4 relay, multicast, reserved
// and broadcast ranges, and the IPv6 forms that can wrap an IPv4 address
// (NAT64, 6to4, Teredo inside 2001::/23). IPv4-mapped IPv6 addresses are
// unmapped before the lookup, so ::ffff:0:0/96 needs no entry.
var deniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),

	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::/96"), // IPv4-compatible (deprecated) forms such as ::127.0.0.1
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/23"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// CheckAddr returns nil if webhooks may be sent to ip, and otherwise an
// error wrapping ErrBlocked that names the denied range. ValidateURL
// applies it to a URL's literal IP, and internal/sender to every address
// it dials. An IPv4-mapped IPv6
// address is judged as the IPv4 address it maps, and an IPv6 zone is
// ignored. The invalid (zero) Addr is denied.
func CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrBlocked)
	}
	// Prefix.Contains never matches a zoned address, so drop the zone.
	ip = ip.Unmap().WithZone("")
	for _, p := range deniedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in the reserved range %s", ErrBlocked, ip, p)
		}
	}
	return nil
}
