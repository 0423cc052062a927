package webhook

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// The kinds of URL error: ValidateURL's errors wrap ErrInvalidURL, and
// also ErrBlocked for a denied literal IP; internal/sender's attempt
// errors wrap the same two.
var (
	// ErrInvalidURL: the URL fails ValidateURL.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrBlocked: the destination is a denied address (CheckAddr), by the
	// URL's literal IP or, when sending, by an address its name resolved
	// to.
	ErrBlocked = errors.New("destination address not allowed")
)

// URLPolicy is what ValidateURL allows beyond its fixed rules.
type URLPolicy struct {
	// AllowPrivate admits literal IP hosts in the denied ranges (CheckAddr).
	// Only for local development and tests, as sender.Config.AllowPrivate.
	AllowPrivate bool
	// RequireHTTPS rejects http URLs. Off by default so that plain-http
	// receivers work, as in Svix; a deployment turns it on to insist on TLS.
	RequireHTTPS bool
}

// ValidateURL checks the text of an endpoint URL: the api and the
// dashboard before they store it, internal/sender before each send. It rejects URLs over MaxURLLen bytes, schemes other than
// http and https (only https with RequireHTTPS), opaque URLs, userinfo, a
// missing host, ports outside 1–65535, hosts written as non-canonical IPv4
// numbers (decimal "2130706433", hex "0x7f.1", octal "017700000001",
// short "127.1", leading zeros), whatever the policy, and, unless
// p.AllowPrivate, literal IP hosts that CheckAddr denies.
//
// It never resolves the host: a name that resolves to a denied address is
// caught when dialling (internal/sender). Errors wrap ErrInvalidURL, and also ErrBlocked for
// denied addresses; their text is fit to show to whoever supplied the URL.
func ValidateURL(raw string, p URLPolicy) error {
	if len(raw) > MaxURLLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL; say only what is wrong.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && !p.RequireHTTPS:
	case p.RequireHTTPS:
		return fmt.Errorf("%w: scheme must be https", ErrInvalidURL)
	default:
		return fmt.Errorf("%w: scheme must be http or https", ErrInvalidURL)
	}
	if u.Opaque != "" {
		return fmt.Errorf("%w: must be an absolute URL with a host (scheme://host/...)", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: must not contain a user name or password", ErrInvalidURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: host is required", ErrInvalidURL)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: port must be 1 to 65535", ErrInvalidURL)
		}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if isNumericHost(host) {
			return fmt.Errorf("%w: host %q is a non-standard IPv4 form; write IPv4 addresses as four decimal numbers", ErrInvalidURL, host)
		}
		return nil
	}
	if p.AllowPrivate {
		return nil
	}
	if err := CheckAddr(ip); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	return nil
}

// isNumericHost reports whether a host that is not a canonical IP address
// would nevertheless be read as an IPv4 address by some resolver (inet_aton,
// browsers, the WHATWG URL standard): its last label, ignoring a trailing
// dot, is a decimal number or a 0x-prefixed hex number. No top-level domain
// looks like that, so such hosts are rejected outright.
func isNumericHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	digits := "0123456789"
	if len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') {
		last, digits = last[2:], "0123456789abcdefABCDEF"
	}
	for _, c := range []byte(last) {
		if strings.IndexByte(digits, c) < 0 {
			return false
		}
	}
	return true
}
