// Package sender makes the HTTP request of one delivery attempt: a signed
// POST of a message's payload to an endpoint's URL, with the protections of
// RELIABILITY.md ("Outbound request safety") built in.
//
// The destination is checked twice. webhook.ValidateURL checks the URL
// text when an endpoint is saved and again before each send. The dialer
// (guardDial, with webhook.CheckAddr) then checks
// every IP address it is about to connect to, after DNS resolution, so a
// name that resolves (or is rebound) to a private, loopback, link-local or
// otherwise reserved address is refused before a packet leaves. Redirects
// are never followed, no compressed encodings are requested, at most
// Config.MaxResponseBytes of a response are read, and every phase of the
// request is bounded by Config.Timeout.
package sender
