// Package signing implements Standard Webhooks signatures, the scheme Svix
// uses: endpoint secrets written as "whsec_" + base64, and a signature header
// holding "v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>" once per
// active key, so that receivers keep verifying during a secret rotation.
//
// Every request carries the values twice, under the webhook-* names of the
// Standard Webhooks specification and the svix-* names older Svix receivers
// read; Verify accepts either set.
package signing
