// Package api is hookstep's management API: a plain net/http handler that
// speaks the Svix API (the subset in shared/API.md), so the official Svix
// SDKs work against hookstep with only their server URL changed. The same
// handler runs as a local server and, behind API Gateway, in Lambda.
//
// Every request goes through one chain (ServeHTTP): panic recovery → path
// normalisation → CORS → bearer-token authentication (the admin token or
// an app token) → idempotency (POST with an idempotency-key) → a Go 1.22
// ServeMux route → the route's access check (authorize) → its handler. Handlers return
// errors; writeError is the one place where an error kind
// (webhook.KindInvalid, KindNotFound, ...) becomes a status and a Svix error
// body. Errors without a kind are internal: writeError logs them and answers
// a generic 500 that reveals nothing.
//
// Svix-compatibility decisions, where API.md is silent:
//
//   - Paths: repeated slashes are collapsed and a trailing slash stripped
//     before routing. Paths with "." or ".." segments, and every path
//     outside /api/, answer 404 not_found (the dashboard will take the
//     latter). A known path with the wrong method answers 405 with code
//     "method_not_allowed". OPTIONS under /api/ is a CORS preflight (204).
//   - Bodies: read through a 1 MiB cap (over it: 413 payload_too_large).
//     The content-type is not checked. An empty body, a body that is not
//     JSON, or JSON that is not an object is a 422 at loc ["body"]; a field
//     of the wrong type is a 422 at ["body", field]. Unknown fields are
//     ignored. null for a field that cannot be cleared (name, url,
//     disabled, ...) is a 422.
//   - Both field-name generations are read: throttleRate/rateLimit,
//     filterTypes/eventTypes, featureFlags/featureFlag (first one present
//     wins) and both are written.
//   - Responses write every key of a schema: required maps as {} when
//     empty, optional fields as null. Timestamps are RFC 3339 UTC with
//     milliseconds.
//   - Lists: iterator and prevIterator are opaque ("~" + base64url of a
//     direction and the last or first item's key), so that event type
//     names starting with '-' cannot be mistaken for a direction; the
//     earlier raw forms (key, "-" + key) are still accepted. done means no
//     more items in the direction of travel. An iterator that cannot be
//     one of the list (undecodable, wrong id prefix, bad name) is a 422 at
//     ["query", "iterator"]. Query dates accept a '+' offset
//     that arrived unencoded (as a space).
//   - List pages also stop at a byte budget (maxPageBytes, 5 MiB): every
//     list, in both modes, stops adding items before its response would
//     pass it, counted as the api Lambda sends it (the body escaped into
//     a JSON string, or base64 if it is not UTF-8), and then answers done
//     false with iterators that continue right after the last item it
//     holds. A page holds at least one item. Lambda refuses responses over
//     6 MB, and 250 messages with content can weigh 64 MB; so a page can
//     hold fewer than limit items while more follow.
//   - Apps: PUT creates (201) only when {app_id} is a valid uid; the body's
//     uid, if any, must then match it. PUT and PATCH keep the stored uid
//     when the body has none (SDKs omit unset fields).
//   - Endpoints: PUT is a full update (absent description, filterTypes,
//     channels, metadata and throttleRate are reset; absent disabled means
//     enabled) but keeps uid, version, secret and headers when absent. An
//     empty filterTypes list means "all types"; an empty channels list is
//     a 422 (1 to 10). PATCH {"secret": "whsec_..."} replaces the current
//     key at once and {"secret": null} generates a new one; rotate is the
//     way to keep the old key for a grace period. Header names are matched
//     without regard to case; PATCH .../headers also accepts Svix's
//     deleteHeaders list. throttleRate is stored and echoed, 0 to 65535.
//   - Event types: creating one that exists archived un-archives it (201).
//     DELETE of an archived type is a 204 no-op.
//   - Messages: the event type need not be in the catalog. deliverAt
//     (scheduled delivery) is refused with a 422 rather than ignored;
//     application creates the path's app when it does not exist (as the
//     app-portal-access call does; ignored when it exists), and
//     transformationsParams is ignored;
//     payloadRetentionHours is accepted as an alternative to
//     payloadRetentionPeriod. The tag and channel filters of the attempt
//     lists, and the tag filter of the message list, are ignored: the Store
//     has no such filters.
//   - Statuses: without expanded_statuses=true a canceled delivery or
//     attempt is shown as fail (2), and a status=2 filter also selects
//     canceled deliveries. with_content=false empties message payloads
//     ({}) and attempt responses ("").
//   - Resend and recover to a disabled endpoint: 400 generic_error.
//   - Expunge (DELETE M/content, 204; 404 for an unknown or expired
//     message; again on an expunged one, 204): the payload is deleted
//     from the store for good, as Svix does. The message, its deliveries
//     and attempts stay (the delivery log survives); every view of the
//     payload (GET M, the message lists, attempts' msg) shows Svix's
//     {"expired":true}, and with_content=false still shows {}. The
//     message can no longer be sent: a resend is a 400 missing_payload
//     (Svix's code), recover skips it, and a run still pending is
//     canceled at its next attempt instead of sending an empty body. DELETE
//     M/attempt/{attempt_id}/content (MessageAttempt.ExpungeContent,
//     204, 404 for an unknown attempt) replaces that attempt's response
//     body with "EXPUNGED", as Svix does.
//   - Background tasks: recover answers with a task that is stored
//     running before its work starts, so GET /background-task/{id} finds
//     it at once. Lists are newest first; status and task filters take
//     Svix's enum values (every BackgroundTaskType, although only
//     endpoint.recover and application.stats tasks exist), others are a
//     422. An endpoint.recover task's data is {"recovered": n, "since",
//     "until"} and, when it failed, "error" (Svix leaves data's keys
//     undocumented).
//   - Usage stats (POST /api/v1/stats/usage/app, Svix's
//     AggregateAppStats): 202 with an application.stats task whose data
//     is Svix's {"appStats": [{"messageDestinations", "appId",
//     "appUid"}]}, one entry per app (those appIds names — at most 1000,
//     ids or uids — or every app), counting the deliveries (one per
//     message and endpoint) created in [since, until). Deliveries to
//     endpoints deleted since are gone and not counted. appIds that name
//     no app come back in unresolvedAppIds; when none resolves, 422.
//     PUT /api/v1/stats/usage/event-types (AggregateEventTypes, any body
//     ignored): 202 with an event-type.aggregate task whose data is
//     Svix's {"event_types": [{"appId", "explicitlySubscribedEventTypes",
//     "hasCatchAllEndpoint"}]}, one entry per app: the sorted union of
//     its endpoints' filterTypes (disabled endpoints too), and whether one
//     endpoint has none.
//   - Idempotency keys longer than 256 characters: 400 generic_error. A key
//     whose first request has not finished after a minute was claimed by
//     a process that died: the next request with it runs. A repeat that
//     comes while the first request still runs gets 409, as in Svix —
//     except when creating a message over SQLite (local mode), whose key
//     is claimed in the write that stores the message: requests with one
//     key that run at once all get 202 and the same message, one of them
//     having stored it (nothing marks a request in flight before that
//     write).
//   - Updates (PUT, PATCH, secret rotation, headers, archiving) are
//     optimistic: a write that raced another one is read, changed and
//     written again (a few times, then 409), so concurrent changes all
//     land and a stale read never undoes the sweeper disabling an
//     endpoint.
//   - Error details are the handlers' own ("Application not found"); the
//     text of store errors is logged, never shown.
//
// # App tokens and the access API (the customers' webhooks portal)
//
// A platform's backend asks, with the admin token, for a short-lived
// link to one app's portal, and gives it to its customer (Svix's App
// Portal):
//
//   - POST /api/v1/auth/app-portal-access/{app_id} (AppPortalAccessIn) →
//     200 {"url", "token"}. expiry: seconds, 3600 to 604800 (1 h to 7 d),
//     default 7 d. capabilities: any of ViewBase, ViewEndpointSecret,
//     ManageEndpointSecret, ManageTransformations, CreateAttempts,
//     ManageEndpoint (unknown → 422); absent or null means all of them;
//     ViewBase is always added, so [] means ViewBase alone.
//     ManageTransformations is accepted and grants nothing: hookstep has
//     no transformations. readOnly, sessionId (≤ 256 chars) and
//     featureFlags (event-type-name syntax, ≤ 50, duplicates dropped) are
//     stored with the token. application (ApplicationIn): when {app_id}
//     names no app, the app is created from it, as Svix does; its uid must
//     then equal {app_id} (422 at ["body","application","uid"]) — a body
//     without a uid takes {app_id} as the uid (Svix refuses it; hookstep
//     is lenient). When the app exists the application is ignored, but
//     it is still validated. Without application an unknown app is a 404.
//     An empty body reads as {}.
//   - POST /api/v1/auth/dashboard-access/{app_id} (Svix's older call, no
//     body; any body is ignored) → the same shape: every capability, 7 d.
//   - POST /api/v1/auth/logout with an app token → 204, and the token is
//     dead at once (deleted from the store). With the admin token → 403:
//     Svix says "trying to log out other tokens will fail", and the admin
//     token is configuration, not something the API can revoke.
//   - POST /api/v1/auth/app/{app_id}/expire-all ({expiry?, sessionIds?})
//     → 204: every token of the app created so far — or, with sessionIds
//     (≤ 100, each 1 to 256 chars), those of these sessions — dies expiry
//     seconds from now: 0 (the default, at once) to 259200 (72 h, Svix's
//     bound). A later call never extends an earlier one (see
//     webhook.AppTokenStore). Tokens minted afterwards are not affected.
//   - These four routes take no idempotency key (it is ignored): an
//     access link's response holds a live token, which the idempotency
//     record would keep in plain text for 24 h. A repeat mints another
//     token, which is harmless.
//
// Tokens: "hsa_" + 32 random bytes (crypto/rand) in unpadded base64url
// (authtoken.GenerateApp); the admin token starts "hsk_". Only
// authtoken.EncodeHash(authtoken.Hash(token)) is stored (AppToken.Hash),
// with the app's id (never the uid the path named), the capabilities,
// readOnly, sessionId, featureFlags and the expiry. The token is never
// logged. The URL is {public base}/portal#key={token}: the token is in the
// fragment, which browsers send to no server and put in no Referer, never
// in a query string. The public base is Config.PublicURL when set, else
// the request's scheme (https when it came over TLS or X-Forwarded-Proto
// says https, as the dashboard decides), its Host and Config.BasePath
// (the API Gateway stage path).
//
// An app token is a Bearer token on the API. It is looked up (by hash) on
// every request, so logout and expire-all take effect at once; a token
// without the "hsa_" prefix is never looked up. Unknown, expired,
// logged-out or expired-all tokens are 401 authentication_failed. Every
// route is registered with the access it needs (Server.handle; the table
// is in routes), checked in this order:
//
//  1. A route under {app_id} must name the token's app, by id or uid;
//     any other app (existing or not) is 404 not_found, as if it did not
//     exist — before any 403, so a token learns nothing of other apps.
//  2. Admin-only routes are 403.
//  3. The token must have the route's capability (webhook.AppToken.Can:
//     ManageEndpoint implies ManageEndpointSecret, which implies
//     ViewEndpointSecret; readOnly leaves only ViewBase and
//     ViewEndpointSecret), else 403.
//
// 403s are {"code": "insufficient access", "detail": ...}, Svix's code
// (space included). The matrix (A = /api/v1/app/{app_id}, E =
// A/endpoint/{endpoint_id}, M = A/msg/{msg_id}):
//
//	ViewBase (every token, read-only ones too):
//	    GET A; GET A/endpoint, E, E/headers, E/stats, E/msg;
//	    GET A/msg, M, M/endpoint, M/attempt/{attempt_id};
//	    GET A/attempt/endpoint/{endpoint_id}, A/attempt/msg/{msg_id};
//	    GET /api/v1/event-type, /api/v1/event-type/{name} (the catalog)
//	ViewEndpointSecret (read-only too): GET E/secret
//	ManageEndpointSecret: POST E/secret/rotate
//	CreateAttempts: POST E/recover, POST M/endpoint/{endpoint_id}/resend
//	ManageEndpoint: POST A/endpoint; PUT, PATCH, DELETE E;
//	    PUT, PATCH E/headers (and, through PATCH E, the secret)
//	admin token only (403 for app tokens):
//	    GET, POST /api/v1/app; PUT, PATCH, DELETE A;
//	    POST, PUT, PATCH, DELETE /api/v1/event-type[/{name}];
//	    POST A/msg (Svix: sending messages is the platform's, not the
//	    customer's); DELETE M/content, M/attempt/{attempt_id}/content
//	    (Svix: an organization permission);
//	    POST /api/v1/stats/usage/app, PUT /api/v1/stats/usage/event-types
//	    (the stats span every app);
//	    GET /api/v1/background-task[/{task_id}] (not
//	    scoped to an app in Svix either; recover's answer already holds
//	    the task); the four access routes above but logout; every
//	    /api/v1/operational-webhook/endpoint route
//	any token: POST /api/v1/auth/logout (the handler decides)
//
// # Operational webhooks
//
// Svix's OperationalWebhookEndpoint calls, admin token only (403 for
// app tokens), with its shapes (OperationalWebhookEndpointIn, ...Out,
// ...Update, ...SecretIn/Out, ...HeadersIn/Out):
//
//	GET, POST /api/v1/operational-webhook/endpoint
//	GET, PUT, DELETE /api/v1/operational-webhook/endpoint/{endpoint_id}
//	GET .../{endpoint_id}/secret, POST .../{endpoint_id}/secret/rotate
//	GET, PUT .../{endpoint_id}/headers
//
// An operational endpoint is an endpoint of the reserved app
// operational.AppID ("app_operational"), created by the first call of
// these routes; the routes are the endpoint handlers run on that app
// (opsRoute), so validation, optimistic updates, secrets and headers
// behave as for any endpoint. Differences: the response is
// OperationalWebhookEndpointOut (no version, channels, failingSince);
// filterTypes must name operational event types
// (operational.EventTypes), not the catalog's (422 otherwise); channels
// are refused (422: operational events have none). PUT is the full update
// of endpoints (absent filterTypes means all types). {endpoint_id} is an
// id or a uid of an operational endpoint; a customer's endpoint id is a
// 404 there, and the reserved app is a 404 on every other route, is
// left out of GET /api/v1/app and is an unresolved appId of the usage
// stats, so no customer (nor app token, nor portal link:
// app-portal-access answers 404) ever reaches it.
//
// The events and when they are sent are internal/operational's (its
// package doc). The API sends, after the change is stored:
// endpoint.created (POST E; also endpoint.disabled, manual, when created
// disabled), endpoint.updated (PUT, PATCH E; PUT, PATCH E/headers; POST
// E/secret/rotate), endpoint.disabled with trigger manual or
// endpoint.enabled when a PUT or PATCH flips disabled, endpoint.deleted
// (DELETE E). A failure to publish is logged and does not fail the
// request.
//
// Feature flags filter the catalog for app tokens, as in Svix: a token
// sees the event types without feature flags and those whose every flag
// it holds; the others are left out of lists and are 404 to a get.
// Messages of hidden types are not hidden. Idempotency keys stay
// scoped by the bearer token's hash, so an app token can never replay
// the admin's responses (or another token's).
package api
