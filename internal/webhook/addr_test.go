package webhook

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// deniedRanges is RELIABILITY.md's deny list plus the IPv4-compatible ::/96,
// written out again here so that the test does not trust the production
// table.
var deniedRanges = []string{
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
	"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
	"::/128", "::/96", "::1/128", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
	"2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
}

// rangeAddrs returns the first, a middle and the last address of p.
func rangeAddrs(p netip.Prefix) []netip.Addr {
	first := p.Masked().Addr()
	b := first.AsSlice()
	last, mid := append([]byte(nil), b...), append([]byte(nil), b...)
	for bit := p.Bits(); bit < len(b)*8; bit++ {
		last[bit/8] |= 0x80 >> (bit % 8)
	}
	if bit := p.Bits(); bit < len(b)*8 {
		mid[bit/8] |= 0x80 >> (bit % 8) // first address of the upper half
	}
	l, _ := netip.AddrFromSlice(last)
	m, _ := netip.AddrFromSlice(mid)
	return []netip.Addr{first, m, l}
}

func inDeniedRanges(t *testing.T, ip netip.Addr) bool {
	t.Helper()
	ip = ip.Unmap()
	for _, s := range deniedRanges {
		if netip.MustParsePrefix(s).Contains(ip) {
			return true
		}
	}
	return false
}

// TestCheckAddrDeniedRanges checks every denied range at its first, middle
// and last address (and as IPv4-mapped IPv6 for IPv4 ranges), and the
// addresses just outside each range: denied exactly when another range
// holds them.
func TestCheckAddrDeniedRanges(t *testing.T) {
	for _, s := range deniedRanges {
		p := netip.MustParsePrefix(s)
		t.Run(s, func(t *testing.T) {
			addrs := rangeAddrs(p)
			for _, ip := range addrs {
				if err := CheckAddr(ip); !errors.Is(err, ErrBlocked) {
					t.Errorf("CheckAddr(%s) = %v, want ErrBlocked", ip, err)
				}
				if ip.Is4() {
					mapped := netip.AddrFrom16(ip.As16())
					if err := CheckAddr(mapped); !errors.Is(err, ErrBlocked) {
						t.Errorf("CheckAddr(%s) = %v, want ErrBlocked", mapped, err)
					}
				}
			}
			for _, ip := range []netip.Addr{addrs[0].Prev(), addrs[2].Next()} {
				if !ip.IsValid() {
					continue // the range starts or ends its address space
				}
				want := inDeniedRanges(t, ip)
				if err := CheckAddr(ip); (err != nil) != want {
					t.Errorf("neighbour CheckAddr(%s) = %v, want denied: %t", ip, err, want)
				}
			}
		})
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		ip      string
		blocked bool
	}{
		// Named in RELIABILITY.md and the usual SSRF targets.
		{"127.0.0.1", true},
		{"169.254.169.254", true}, // cloud instance metadata
		{"fd00:ec2::254", true},   // AWS IMDS over IPv6
		{"::ffff:127.0.0.1", true},
		{"::ffff:7f00:1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"64:ff9b::7f00:1", true},    // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"64:ff9b:1::7f00:1", true},
		{"2002:7f00:1::", true},                        // 6to4 of 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true}, // Teredo
		{"::", true},
		{"::1", true},
		{"::127.0.0.1", true}, // IPv4-compatible form
		{"::a00:1", true},     // ::10.0.0.1
		{"0.0.0.0", true},
		{"255.255.255.255", true},
		{"fe80::1%eth0", true}, // a zone must not hide the range
		{"fe80::1", true},
		{"ff02::1", true},
		{"100::1", true},
		{"2001:db8::1", true},
		// Allowed: public addresses, including ones next to denied ranges.
		{"1.1.1.1", false},
		{"8.8.8.8", false},
		{"93.184.215.14", false},
		{"::ffff:8.8.8.8", false},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.0.1.0", false},
		{"192.167.255.255", false},
		{"198.17.255.255", false},
		{"198.20.0.0", false},
		{"223.255.255.255", false},
		{"2606:4700:4700::1111", false},
		{"2001:4860:4860::8888", false},
		{"2001:200::1", false}, // just after 2001::/23
		{"2a00:1450:4001:82b::200e", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(tt.ip))
			if got := errors.Is(err, ErrBlocked); got != tt.blocked || (err != nil) != tt.blocked {
				t.Errorf("CheckAddr(%s) = %v, want blocked: %t", tt.ip, err, tt.blocked)
			}
		})
	}
}

func TestCheckAddrInvalidAddr(t *testing.T) {
	if err := CheckAddr(netip.Addr{}); !errors.Is(err, ErrBlocked) {
		t.Errorf("CheckAddr(zero Addr) = %v, want ErrBlocked", err)
	}
}

func TestCheckAddrErrorNamesRange(t *testing.T) {
	err := CheckAddr(netip.MustParseAddr("::ffff:10.1.2.3"))
	if err == nil || !strings.Contains(err.Error(), "10.1.2.3 is in the reserved range 10.0.0.0/8") {
		t.Errorf("CheckAddr error = %v, want it to name 10.1.2.3 and 10.0.0.0/8", err)
	}
}
