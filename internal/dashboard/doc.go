// Package dashboard is hookstep's web UI: the webhooks dashboard of the
// seed page (apps, endpoints, the message and attempt logs, resend,
// recover, disable/enable, secrets, the event-type catalog), Play, a
// test receiver, and the portal: the same pages scoped to one app, for
// that app's owner, signed in with an app token and embeddable in the
// platform's own dashboard (Svix's App Portal). It is a plain
// http.Handler for every path outside /api/, served next to the API by
// the same process in local mode and by the same Lambda behind API
// Gateway.
//
// # Pages
//
// Server-rendered html/template pages, embedded with go:embed together
// with one stylesheet and one small script (static/); nothing is loaded
// from elsewhere, so it works offline, and a strict Content-Security-Policy
// forbids inline scripts and styles. Every page works without JavaScript;
// the script only shows times in the viewer's time zone (pages carry RFC
// 3339 in <time datetime>, with a UTC fallback), fills in "Use Play" in
// place, sends the viewer's UTC offset with a custom recover time, polls
// the Play list, closes menus with Escape, and drops ?done= from the
// address so that a reload does not repeat a notice. Menus are <details>
// elements, so everything is reachable with the keyboard. Forms post and
// redirect (303) back with ?done=<key>, which selects one of a fixed set
// of notices.
//
// Routes (A = /app/{app_id}, E = A/endpoint/{endpoint_id}; ids or uids,
// and a message's eventId, are accepted wherever the API accepts them):
//
//	GET  /                      apps            POST /app          create an app
//	GET  A                      endpoints, with status and 24 h success rate
//	GET  A/endpoint/new         Add Endpoint    POST A/endpoint    create
//	GET  E                      details and the Message Attempts log (?status, ?before)
//	POST E/event-types, E/secret/rotate, E/headers, E/headers/delete,
//	     E/disable, E/enable, E/recover, E/delete, E/send-example
//	GET  E/recover, E/delete    the Recover and the delete-confirmation forms
//	GET  A/msg                  messages log (?event_type, ?status, ?before)
//	GET  A/msg/{msg_id}         payload, delivery per endpoint, attempts
//	POST A/msg/{msg_id}/resend  resend to the endpoint chosen in the form
//	GET  /event-types           the catalog   POST /event-types/send-example
//	GET  /play/{token}          the Play page (and /requests, the part it polls)
//	POST /play/{token}          the Play receiver
//	GET  /signin, POST /signin, POST /signout, GET /static/...
//	/portal/...                 the portal (see The portal)
//
// # Sign-in and CSRF
//
// There is one credential, the admin token of the API. Signing in puts it
// in an HttpOnly, SameSite=Strict session cookie (Secure over https,
// including behind API Gateway, which sets X-Forwarded-Proto), checked
// against Config.TokenHash on every request, so no session state is kept
// on the server and several Lambda instances agree. Pages of a signed-out
// browser redirect to /signin?next=<path>; next must be a path of the
// dashboard.
//
// Every POST but the Play receiver carries a CSRF token: the HMAC-SHA256,
// keyed by the admin token's hash, of a random nonce kept in a second
// HttpOnly, SameSite=Strict cookie that is renewed at sign-in (a signed
// double-submit cookie). A missing or wrong token is a 403. SameSite=Strict
// already keeps other sites' forms from carrying the cookies; the token
// also covers same-site attackers who can plant a cookie, since they
// cannot compute its HMAC.
//
// # The portal
//
// A platform's backend asks the API for an app's access link
// (POST /api/v1/auth/app-portal-access/{app_id}, internal/api), which is
// {public base}/portal#key=<app token>, and opens it or puts it in an
// iframe, as Svix users do with Svix's App Portal; svix-react's
// <AppPortal url=...> works with it unchanged. Config.AppTokens nil turns
// the portal off (/portal is 404).
//
// Routes: GET /portal is the link's landing page; POST /portal/session
// starts a session; GET /portal/ goes to the session's app;
// GET /portal/expired is the "link expired" page; GET /portal/theme.css
// is a theme (below). Every other /portal/<path> is the dashboard's
// route <path>, served for the session's app (linkBase prefixes every
// link, form action and redirect with /portal, so a portal page names
// nothing outside /portal), with the capability each route is
// registered with (routes):
//
//	ViewBase              the app's endpoints (without secrets), their
//	                      stats, headers (not the sensitive ones) and
//	                      Message Attempts, the messages log and each
//	                      message, the event-type catalog, Play pages
//	ViewEndpointSecret    Reveal the signing secret (?reveal=secret)
//	ManageEndpointSecret  Rotate secret
//	CreateAttempts        Resend, Recover Failed Messages, Send example
//	ManageEndpoint        Add Endpoint (all event types ticked, Use Play),
//	                      event types, headers, Disable/Enable, delete
//
// as webhook.AppToken.Can decides: ManageEndpoint implies the secret
// capabilities; readOnly allows ViewBase and ViewEndpointSecret only.
// Pages show only the forms the token allows (perms), and a read-only
// token sees no form that changes anything (the logs' GET filters stay).
// The server checks the capability of every route whatever the page
// showed: without it a page or a form is 403, before the handler reads
// or writes anything. The admin's routes (the app list, creating apps,
// sign-in and sign-out) do not exist in the portal (404), and any id of
// another app — in a path or in a form field — is 404 as if it did not
// exist (loadApp, appEndpoint, endpointByRef; a Play page linked to
// another app's endpoint too). The portal calls itself Config.PortalName
// ("Webhooks" by default), never hookstep.
//
// Session. The token is in the link's fragment, which browsers never
// send, so it is in no query string, server log or Referer. The landing
// page's script (static/app.js) reads location.hash, replaces the
// address (history.replaceState) so that the token leaves the address
// bar and the history, and POSTs it as JSON to /portal/session, which
// checks it (AppTokenStore.GetAppToken by authtoken's hash) and keeps it
// in the session cookie; then the script goes to the app's page. Only
// that script can start a session: a cross-site form cannot send JSON, a
// cross-site fetch of JSON needs a preflight that is not answered, and
// a Sec-Fetch-Site other than same-origin is refused — another site
// cannot sign a browser into its own app's portal. Like the admin's, the
// session keeps no state on the server: every request reads the token
// (and its app) from the store again, so that expiry, logout and
// expire-all end a session at its next request, on any Lambda
// instance. A request without a live token, at the landing page or in
// the middle of a session, gets the page "This link has expired — open
// <PortalName> again from your dashboard" (401).
//
// Cookies. In a frame of another site the portal is a third party, and
// browsers block or isolate third-party cookies (Chromium when they are
// turned off, as it planned for everyone; Safari always; Firefox keeps
// them per top-level site). The portal's cookies are
// therefore Partitioned (CHIPS): the browser keeps them in a jar of the
// top-level site, so the platform's page gets the portal's cookies and
// no other site sees them. Partitioned needs Secure, and a cookie sent in
// a cross-site frame needs SameSite=None; they are also HttpOnly and
// scoped to /portal (under the base path), so the admin dashboard never
// gets them. Browsers accept Secure cookies from http://localhost and
// http://127.0.0.1 (secure contexts), so local mode works over http; on
// another host the portal needs https. Safari does not implement
// Partitioned cookies (at the time of writing): there an embedded portal
// cannot keep a session, while the link opened in a tab of its own works.
//
// CSRF. Portal forms carry a token as the admin's do (a signed
// double-submit cookie), with the portal's own nonce cookie, renewed
// when a link starts a session, and an HMAC that also covers the
// session's token hash, so a form of one session does not work in
// another. SameSite=None cookies go with cross-site requests, so this
// token is what keeps other sites' forms out.
//
// Embedding. The portal's Content-Security-Policy is the admin's with
// frame-ancestors set to Config.PortalFrameAncestors (origins, read with
// ParseFrameAncestors from HOOKSTEP_PORTAL_FRAME_ANCESTORS or the AWS
// stack's prop), 'none' and X-Frame-Options DENY when there are none.
// The admin dashboard always has frame-ancestors 'none' and
// X-Frame-Options DENY. Portal responses have Referrer-Policy
// no-referrer.
//
// Theme. svix-react's <AppPortal> adds query parameters to the link:
// primaryColor (#rgb or #rrggbb, with or without #), darkMode (true:
// always; auto: the viewer's prefers-color-scheme), fontFamily (font
// names) and icon (an http or https URL, shown in the header; its origin
// joins the CSP's img-src). parseTheme validates them; a value that is
// not valid is dropped. The CSP has no 'unsafe-inline', so there is no
// inline style: pages link /portal/theme.css?<the validated
// parameters>, a stylesheet that overrides style.css's custom
// properties (the accent and a text colour that contrasts with it, the
// dark palette, the font). The landing page keeps the link's theme in a
// (partitioned) cookie for the session's pages; a link without
// parameters starts with the default look.
//
// Size. With fullSize, svix-react sizes its iframe from the messages
// {type: "svix.iframe-resizer-height", payload: {height: <px>}} that the
// portal posts to window.parent (app.js: on load, and whenever the body
// changes size, by a ResizeObserver, or a menu or log row opens). They
// carry only a height, so they are posted to any origin ("*").
//
// # Base path
//
// Behind an API Gateway stage the browser sees /prod/... while the
// handler sees paths without the stage. The Lambda adapter says so with
// WithBasePath(ctx, "/prod"); every link, form action, redirect and
// cookie path is then prefixed with it. Without it the prefix is "".
//
// # Choices where the issue left room
//
//   - The dashboard validates with the domain's rules
//     (webhook.Validate*, webhook.ValidateURL) and shows their messages
//     next to the field; it never reads the API's JSON. The endpoint
//     changes both make — secret rotation (webhook.Endpoint.RotateKey) and
//     disable/enable (webhook.Endpoint.SetDisabled, then CancelDeliveries
//     on disable) — are domain methods they share.
//   - Endpoint updates are optimistic (Store.UpdateEndpoint with the
//     UpdatedAt read): a stale write is read again and retried twice.
//   - Operational webhooks (Config.Operational): every stored endpoint
//     change here — the admin's and the portal's — sends what the API's
//     would: endpoint.created, endpoint.updated (event types, secret,
//     headers, disable, enable), endpoint.disabled (trigger manual) or
//     endpoint.enabled, endpoint.deleted. The reserved app of the
//     operational endpoints (operational.AppID) is left out of the apps
//     page and the event types page's targets and is a 404 by URL: the
//     platform manages operational endpoints through the API.
//   - Event types: the Add Endpoint form ticks every type of the catalog.
//     Keeping all ticked stores no filter, which means every type,
//     including types added later (as in the API, where an empty filter
//     means all); ticking none is refused.
//   - Success rate: success / (success + fail) of the deliveries of the
//     last 24 hours (by message time); pending and canceled ones do not
//     count.
//   - The messages log filters by event type in the Store, and by delivery
//     status (delivered, failed, in progress, summed up over a message's
//     deliveries) here, reading at most 500 messages per page.
//   - "Send example" sends the type's example payload (schemas["1"]
//     ["examples"][0], else the first example of another version) to one
//     endpoint: it stores a message of the type in the endpoint's app
//     without fanning it out and starts a manual run to that endpoint
//     (webhook.Resender.Resend), so a test of one endpoint does not reach the
//     app's other receivers. The message shows in the log like any other.
//     The dashboard therefore needs only Resend and Recover of the
//     delivery engine.
//   - Recover offers the last 1 h, 6 h, 24 h, 7 days or a custom start in
//     the viewer's time zone (at most 14 days ago, as in the API); it
//     runs until now.
//   - Secrets are not in a page until "Reveal" asks for them; sensitive
//     custom header values are never shown.
//
// # Play
//
// A Play URL is the dashboard's own base URL (as the browser reached it:
// scheme, host, base path) + /play/{token}. The token is 16 random bytes
// and 16 bytes of their HMAC under the admin token's hash, base64url: it is
// unguessable, and the dashboard recognises its own tokens without storing
// anything, so the Add Endpoint page can offer a fresh Play URL on every
// view and a Play URL keeps working after a restart. Other tokens are 404.
//
// POST /play/{token} needs no sign-in (the token is the capability): it
// reads the body (at most 257 KiB), checks the signature with
// signing.Verify against the current keys (Endpoint.CurrentKeys, so both
// secrets during a rotation's grace period) of the endpoint linked to the
// token, keeps the request — headers, body (the store keeps the first
// 64 KiB), arrival time, the result — and answers 200. The link token →
// (app, endpoint) is made when an endpoint is created in the dashboard
// with a Play URL; requests to a Play URL without a link (an endpoint
// created through the API) are kept but marked "not checked". The Play page needs sign-in, says "for
// testing only", and polls its list every 1.5 s.
//
// What Play keeps lives in a play.Store (Config.Play; see internal/play
// for the limits): play.Memory in local mode, which is one process, and
// internal/dynamo's PlayStore on AWS, where every Lambda instance must see
// what any of them received. Config.Play nil turns Play off.
package dashboard
