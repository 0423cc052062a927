// Package api is hookstep's management API: a plain net/http handler that
// speaks the Svix API (the subset in shared/API.md), so the official Svix
// SDKs work against hookstep with only their server URL changed. The same
// handler runs as a local server and, behind API Gateway, in Lambda.
//
// Every request goes through one chain (ServeHTTP): panic recovery → path
// normalisation → CORS → bearer-token authentication → idempotency (POST
// with an idempotency-key) → a Go 1.22 ServeMux route. Handlers return
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
//     application and transformationsParams are ignored;
//     payloadRetentionHours is accepted as an alternative to
//     payloadRetentionPeriod. The tag and channel filters of the attempt
//     lists, and the tag filter of the message list, are ignored: the Store
//     has no such filters.
//   - Statuses: without expanded_statuses=true a canceled delivery or
//     attempt is shown as fail (2), and a status=2 filter also selects
//     canceled deliveries. with_content=false empties message payloads
//     ({}) and attempt responses ("").
//   - Resend and recover to a disabled endpoint: 400 generic_error.
//   - Background tasks: recover answers with a task that is stored
//     running before its work starts, so GET /background-task/{id} finds
//     it at once. Lists are newest first; status and task filters take
//     Svix's enum values (every BackgroundTaskType, although only
//     endpoint.recover tasks exist), others are a 422. An endpoint.recover
//     task's data is {"recovered": n, "since", "until"} and, when it
//     failed, "error" (Svix leaves data's keys undocumented).
//   - Idempotency keys longer than 256 characters: 400 generic_error. A key
//     whose first request has not finished after a minute was claimed by
//     a process that died: the next request with it runs.
//   - Updates (PUT, PATCH, secret rotation, headers, archiving) are
//     optimistic: a write that raced another one is read, changed and
//     written again (a few times, then 409), so concurrent changes all
//     land and a stale read never undoes the sweeper disabling an
//     endpoint.
//   - Error details are the handlers' own ("Application not found"); the
//     text of store errors is logged, never shown.
package api
