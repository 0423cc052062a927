package sender

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/hookstep/hookstep/internal/webhook"
)

// The kinds of failed attempt. Result.Err wraps one of them (test with
// errors.Is), or for a URL with a denied literal IP both ErrInvalidURL and
// ErrBlocked. Its text adds the detail and is fit to show to the endpoint's
// owner.
var (
	// ErrInvalidURL: the URL fails webhook.ValidateURL (it is that error).
	ErrInvalidURL = webhook.ErrInvalidURL
	// ErrBlocked: the destination is a denied address (webhook.CheckAddr),
	// by the URL's literal IP or by an address its name resolved to.
	// Wrapped together with ErrInvalidURL for literal IPs. It is
	// webhook.ErrBlocked.
	ErrBlocked = webhook.ErrBlocked
	// ErrInvalidRequest: the Request itself is unusable (no message id, no
	// keys, a malformed custom header). No connection was attempted.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrDNS: the host name did not resolve.
	ErrDNS = errors.New("host name not resolved")
	// ErrConnRefused: the endpoint refused the connection.
	ErrConnRefused = errors.New("connection refused")
	// ErrTimeout: Config.Timeout (or a phase bound inside it) ran out
	// before the response headers arrived.
	ErrTimeout = errors.New("timed out")
	// ErrTLS: the TLS handshake or certificate verification failed.
	ErrTLS = errors.New("TLS error")
	// ErrConnection: any other transport failure (reset, closed, protocol
	// error).
	ErrConnection = errors.New("connection failed")
	// ErrRedirect: the endpoint answered 3xx. Redirects are not followed.
	ErrRedirect = errors.New("redirect not followed")
	// ErrStatus: the endpoint answered with a status that is not 2xx or 3xx.
	ErrStatus = errors.New("unsuccessful status")
	// ErrCanceled: the caller's context ended (shutdown, Lambda deadline)
	// before the attempt completed. Also wraps the context's error. The
	// endpoint is not at fault; callers may choose not to count the attempt.
	ErrCanceled = errors.New("attempt canceled")
)

// classify turns an error from http.Client.Do into one wrapping a kind.
// parent is the caller's context, to tell its cancellation from our own
// time budget running out.
func classify(parent context.Context, err error) error {
	var (
		dnsErr  *net.DNSError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		unkAuth x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invErr  x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, ErrBlocked):
		return err
	case parent.Err() != nil:
		return fmt.Errorf("%w: %w", ErrCanceled, parent.Err())
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.As(err, &dnsErr):
		// Not dnsErr.Error(): it names this machine's resolver, which the
		// attempt log would then show to endpoint owners.
		return fmt.Errorf("%w: %s", ErrDNS, dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %w", ErrConnRefused, err)
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert),
		errors.As(err, &unkAuth), errors.As(err, &hostErr), errors.As(err, &invErr):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	default:
		return fmt.Errorf("%w: %w", ErrConnection, err)
	}
}
