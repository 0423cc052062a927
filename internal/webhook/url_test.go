package webhook

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestValidateURL(t *testing.T) {
	const (
		valid   = iota // accepted
		invalid        // ErrInvalidURL only
		blocked        // ErrInvalidURL and ErrBlocked
	)
	long := func(n int) string {
		const base = "https://receiver.example.invalid/"
		return base + strings.Repeat("a", n-len(base))
	}
	tests := []struct {
		name   string
		url    string
		policy URLPolicy
		want   int
	}{
		{"https", "https://receiver.example.invalid/hooks?x=1#frag", URLPolicy{}, valid},
		{"http allowed by default", "http://receiver.example.invalid/hooks", URLPolicy{}, valid},
		{"http with RequireHTTPS", "http://receiver.example.invalid/hooks", URLPolicy{RequireHTTPS: true}, invalid},
		{"https with RequireHTTPS", "https://receiver.example.invalid/hooks", URLPolicy{RequireHTTPS: true}, valid},
		{"upper-case scheme", "HTTPS://receiver.example.invalid/", URLPolicy{}, valid},
		{"port", "https://receiver.example.invalid:8443/", URLPolicy{}, valid},
		{"public IPv4", "https://93.184.215.14/", URLPolicy{}, valid},
		{"public IPv6", "https://[2606:4700:4700::1111]/", URLPolicy{}, valid},
		{"numeric-looking label not last", "https://0x7f.example.invalid/", URLPolicy{}, valid},
		{"max length", long(MaxURLLen), URLPolicy{}, valid},
		{"over max length", long(MaxURLLen + 1), URLPolicy{}, invalid},

		{"empty", "", URLPolicy{}, invalid},
		{"relative", "/hooks", URLPolicy{}, invalid},
		{"no scheme", "receiver.example.invalid/hooks", URLPolicy{}, invalid},
		{"ftp", "ftp://receiver.example.invalid/", URLPolicy{}, invalid},
		{"file", "file:///etc/passwd", URLPolicy{AllowPrivate: true}, invalid},
		{"gopher", "gopher://receiver.example.invalid:70/", URLPolicy{}, invalid},
		{"javascript", "javascript:alert(1)", URLPolicy{}, invalid},
		{"opaque", "http:receiver.example.invalid", URLPolicy{}, invalid},
		{"userinfo", "https://user:pass@receiver.example.invalid/", URLPolicy{}, invalid},
		{"user only", "https://user@receiver.example.invalid/", URLPolicy{}, invalid},
		{"userinfo hiding host", "https://receiver.example.invalid@127.0.0.1/", URLPolicy{AllowPrivate: true}, invalid},
		{"no host", "https:///hooks", URLPolicy{}, invalid},
		{"port only", "https://:443/", URLPolicy{}, invalid},
		{"port 0", "https://receiver.example.invalid:0/", URLPolicy{}, invalid},
		{"port too big", "https://receiver.example.invalid:65536/", URLPolicy{}, invalid},
		{"non-numeric port", "https://receiver.example.invalid:https/", URLPolicy{}, invalid},
		{"space in host", "https://receiver example.invalid/", URLPolicy{}, invalid},
		{"control character", "https://receiver.example.invalid/\n", URLPolicy{}, invalid},

		// Literal IPs in the deny list.
		{"loopback", "http://127.0.0.1:8080/", URLPolicy{}, blocked},
		{"loopback elsewhere in 127/8", "http://127.8.9.10/", URLPolicy{}, blocked},
		{"IPv6 loopback", "http://[::1]:8080/", URLPolicy{}, blocked},
		{"mapped loopback", "http://[::ffff:127.0.0.1]/", URLPolicy{}, blocked},
		{"mapped loopback, hex", "http://[::ffff:7f00:1]/", URLPolicy{}, blocked},
		{"mapped private", "http://[::ffff:10.0.0.1]/", URLPolicy{}, blocked},
		{"NAT64 loopback", "http://[64:ff9b::7f00:1]/", URLPolicy{}, blocked},
		{"6to4 loopback", "http://[2002:7f00:1::]/", URLPolicy{}, blocked},
		{"metadata", "http://169.254.169.254/latest/meta-data/", URLPolicy{}, blocked},
		{"IPv6 metadata", "http://[fd00:ec2::254]/", URLPolicy{}, blocked},
		{"link-local with zone", "http://[fe80::1%25eth0]/", URLPolicy{}, blocked},
		{"unspecified", "http://0.0.0.0:8080/", URLPolicy{}, blocked},
		{"private", "https://10.1.2.3/", URLPolicy{}, blocked},
		{"private allowed", "https://10.1.2.3/", URLPolicy{AllowPrivate: true}, valid},
		{"loopback allowed", "http://127.0.0.1:8080/", URLPolicy{AllowPrivate: true}, valid},
		{"IPv6 loopback allowed", "http://[::1]:8080/", URLPolicy{AllowPrivate: true}, valid},

		// Non-canonical IPv4 forms: rejected even with AllowPrivate.
		{"decimal", "http://2130706433/", URLPolicy{AllowPrivate: true}, invalid},
		{"decimal with port", "http://2130706433:8080/", URLPolicy{}, invalid},
		{"hex", "http://0x7f000001/", URLPolicy{AllowPrivate: true}, invalid},
		{"hex dotted", "http://0x7f.1/", URLPolicy{AllowPrivate: true}, invalid},
		{"hex dotted, upper case", "http://0X7F.0.0.1/", URLPolicy{AllowPrivate: true}, invalid},
		{"bare 0x", "http://0x/", URLPolicy{AllowPrivate: true}, invalid},
		{"octal", "http://017700000001/", URLPolicy{AllowPrivate: true}, invalid},
		{"octal dotted", "http://0177.0.0.1/", URLPolicy{AllowPrivate: true}, invalid},
		{"short form", "http://127.1/", URLPolicy{AllowPrivate: true}, invalid},
		{"leading zero", "http://127.0.0.01/", URLPolicy{AllowPrivate: true}, invalid},
		{"five parts", "http://1.2.3.4.5/", URLPolicy{AllowPrivate: true}, invalid},
		{"trailing dot", "http://127.0.0.1./", URLPolicy{AllowPrivate: true}, invalid},
		{"public decimal", "http://134744072/", URLPolicy{}, invalid}, // 8.8.8.8
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateURL(tt.url, tt.policy)
			var got int
			switch {
			case err == nil:
				got = valid
			case errors.Is(err, ErrBlocked) && errors.Is(err, ErrInvalidURL):
				got = blocked
			case errors.Is(err, ErrInvalidURL):
				got = invalid
			default:
				t.Fatalf("ValidateURL(%q) = %v, which wraps neither ErrInvalidURL nor ErrBlocked", tt.url, err)
			}
			names := []string{"valid", "invalid", "blocked"}
			if got != tt.want {
				t.Errorf("ValidateURL(%q, %+v) = %v, want %s", tt.url, tt.policy, err, names[tt.want])
			}
		})
	}
}

func TestValidateURLErrorOmitsURL(t *testing.T) {
	err := ValidateURL("https://receiver.example.invalid:99999/?token=s3cret", URLPolicy{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("ValidateURL error = %v, want an error that does not repeat the URL", err)
	}
}

// FuzzValidateURL checks that ValidateURL never panics, that its errors have
// a kind, and that what it accepts meets every rule. Seeds are in
// testdata/fuzz/FuzzValidateURL.
func FuzzValidateURL(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		strict := ValidateURL(raw, URLPolicy{RequireHTTPS: true})
		def := ValidateURL(raw, URLPolicy{})
		loose := ValidateURL(raw, URLPolicy{AllowPrivate: true})
		for _, err := range []error{strict, def, loose} {
			if err != nil && !errors.Is(err, ErrInvalidURL) {
				t.Fatalf("ValidateURL(%q) = %v, not an ErrInvalidURL", raw, err)
			}
		}
		// Each relaxation accepts a superset.
		if strict == nil && def != nil {
			t.Fatalf("ValidateURL(%q) accepted with RequireHTTPS, rejected without: %v", raw, def)
		}
		if def == nil && loose != nil {
			t.Fatalf("ValidateURL(%q) accepted without AllowPrivate, rejected with it: %v", raw, loose)
		}
		if loose != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which url.Parse rejects: %v", raw, err)
		}
		ip, ipErr := netip.ParseAddr(u.Hostname())
		port, portErr := strconv.Atoi(u.Port())
		switch {
		case len(raw) > MaxURLLen:
			t.Fatalf("accepted %d bytes", len(raw))
		case u.Scheme != "http" && u.Scheme != "https":
			t.Fatalf("accepted scheme %q", u.Scheme)
		case strict == nil && u.Scheme != "https":
			t.Fatalf("accepted %q with RequireHTTPS", raw)
		case u.User != nil:
			t.Fatalf("accepted userinfo in %q", raw)
		case u.Hostname() == "":
			t.Fatalf("accepted %q without a host", raw)
		case u.Port() != "" && (portErr != nil || port < 1 || port > 65535):
			t.Fatalf("accepted port %q", u.Port())
		case ipErr != nil && isNumericHost(u.Hostname()):
			t.Fatalf("accepted numeric host form %q", u.Hostname())
		case ipErr == nil && def == nil && CheckAddr(ip) != nil:
			t.Fatalf("accepted denied address %s without AllowPrivate", ip)
		}
	})
}
