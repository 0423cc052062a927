// Package dynamo is the webhook.Store of the AWS deployment: one DynamoDB
// table (single-table design, on-demand billing) defined by TableSchema,
// which the CDK stack and the tests share. The same table holds what the
// dashboard's Play URLs receive (PlayStore, a play.Store).
//
// # Items
//
// Keys are strings; every key of app-owned data carries the app id, so a
// read with another app's id finds nothing by construction. Times in sort
// keys (<failingSince>, <updatedAt>, <receivedAt>) are 15-digit unix
// milliseconds, so that string order is time order. A Play request's
// <receivedAt> is the store clock's; the KSUID after it keeps requests of
// one millisecond apart and in order. Play items are in no index.
//
//	item            pk                    sk
//	app             APP#<app>             APP
//	app uid claim   APPUID#<uid>          UID
//	event type      ET#<name>             ET
//	seeded marker   ET#<name>             SEEDED (SeedEventTypes: the catalog created the type once)
//	endpoint        APP#<app>             EP#<ep>
//	endpoint uid    APP#<app>             EPUID#<uid>
//	message         MSG#<app>#<msg>       M
//	delivery        MSG#<app>#<msg>       D#<ep>
//	attempt         MSG#<app>#<msg>       A#<att>
//	event-id claim  EVT#<app>#<eventId>   EVT
//	idempotency     IDEM#<key>            IDEM
//	background task TASK#<task>           TASK
//	Play link       PLAY#<token>          LINK
//	Play request    PLAY#<token>          R#<receivedAt>#<ksuid>
//	token log       THROTTLE#<app>#<ep>   T                     throttled endpoints only (throttle.go)
//
// and in the indexes (partition key / sort key):
//
//	IndexList      app          APP / <app>
//	               event type   ET / <name>
//	               message      MSG#<app>[#<s>] / <msg>               <s> = shard of <msg>, absent for 0
//	               task         TASK / <task>
//	IndexEndpoint  delivery     EP#<app>#<ep>[#<s>] / D#<msg>         <s> = shard of <msg>, absent for 0
//	               attempt      EP#<app>#<ep>[#<s>] / A#<att>         <s> = shard of its <msg>, absent for 0
//	IndexSweep     endpoint     FAILING / <failingSince>#<app>#<ep>   while enabled and failing
//	               delivery     U#<0..15> / <checkAt>#<msg>#<ep>       while unfinished
//
// A message's partition holds the message, its deliveries (one per
// endpoint: the state of the current run) and its attempts. A delivery
// dispatched before its message was stored may have no item until its
// first attempt: the message names it in its "deferred" set (deferred.go). IndexSweep is
// sparse and keys-only: an endpoint has its sweepPk while enabled and its
// sweepSk while failing, each written by different operations; a delivery
// has its sweepPk while its run is unfinished, and a sweepSk of checkAt,
// the time by which its run should have moved on (see Ownership).
// The two INCLUDE indexes leave payloads and responses out, so every index
// entry stays under 1 KB; lists that need them read the page's items from
// the table with BatchGetItem.
//
// An app's messages and an endpoint's deliveries and attempts are spread
// over MessageShards and EndpointShards (8 each) index partitions, so
// that a hot app or endpoint does not write one partition (Limits): the
// shard of an item is fnv-32a(message id) mod 8, so a message's delivery
// to an endpoint and its attempts there share a shard, and an item
// written again keeps it. Shard 0 is the bare key, without "#0": it is
// the key of every entry written before the indexes were sharded, so
// those are read as part of shard 0, with neither a migration nor an
// extra query. They stay there until they expire (the message's
// retention, at most 90 days; updates leave epPk alone), and until then
// shard 0 holds more than its share, which costs a list more requests on
// shard 0, never wrong pages. The shard counts may only grow: a shard no
// longer read would hide its items.
//
// # Access patterns
//
// Every query the API, the deliver function and the sweeper make, and
// what serves it. None scans the table.
//
//	pattern (caller)                                       served by
//	app by id (API, every request)                         GetItem APP#<app>/APP
//	app by uid (API)                                       GetItem APPUID#<uid>/UID → owner → app (uid re-checked)
//	apps by id (API)                                       Query IndexList "APP", BatchGetItem
//	event type by name (API, fan-out)                      GetItem ET#<name>/ET
//	event types by name, archived or not (API)             Query IndexList "ET", filter archived; BatchGetItem
//	seed the catalog's event types (api cold start)        BatchGetItem of the SEEDED markers (consistent); for each
//	                                                         unmarked type: conditional PutItem of the type, then of its marker
//	endpoint by id (API, deliver, sweeper)                 GetItem APP#<app>/EP#<ep>
//	endpoint by uid (API)                                  GetItem APP#<app>/EPUID#<uid> → owner → endpoint
//	an app's endpoints by id (API, fan-out)                Query APP#<app>, begins_with(sk, "EP#")
//	endpoints failing since before T (sweeper)             Query IndexSweep "FAILING", sweepSk < <T+1ms>; BatchGetItem, re-checked
//	message by id (API, deliver)                           GetItem MSG#<app>#<msg>/M
//	message by eventId, the newest (API)                   GetItem EVT#<app>#<eventId>/EVT → owner → message
//	expunge a message's payload (API)                      UpdateItem MSG#<app>#<msg>/M REMOVE payload, conditional on
//	                                                         exists, not expired
//	expunge an attempt's response (API)                    UpdateItem MSG#<app>#<msg>/A#<att> SET response, conditional
//	                                                         on exists, not expired
//	eventId unused within 24 h (CreateMessage)             conditional PutItem of the event-id claim
//	an app's messages, newest or oldest first, filtered    Query IndexList MSG#<app>[#<s>], each of the 8 shards, filter
//	  by event types, channel, before/after (API)            eventType IN, contains(channels), ts range, not expired;
//	                                                         merged by id; BatchGetItem
//	delivery of a message to an endpoint (deliver, API)    GetItem MSG#<app>#<msg>/D#<ep>
//	a throttled endpoint's token (deliver)                 conditional UpdateItem THROTTLE#<app>#<ep>/T (Throttle)
//	deliveries by message (API)                            Query MSG#<app>#<msg>, begins_with(sk, "D#"), filters
//	deliveries by endpoint, filtered by status, event      Query IndexEndpoint EP#<app>#<ep>[#<s>], each of the 8 shards,
//	  type, channel, created in [since, until) — the         begins_with(epSk, "D#"), filters; merged by message id
//	  failed/canceled ones in [since, until) for recover
//	unfinished deliveries of an endpoint (cancel)          the 8 shards to their end, filter status IN (pending, sending);
//	                                                         UpdateItem each
//	delivery counts by status in [since, until) (API)      the 8 shards to their end, projecting status
//	runs overdue before T, oldest first: undispatched, or  Query IndexSweep U#0 .. U#15, sweepSk < <T>, merged; BatchGetItem,
//	  whose attempt is due and unrecorded (sweeper)          re-checked (ListOverdue; ListUndispatched keeps the undispatched)
//	look at an overdue run again at T (sweeper)            UpdateItem of the delivery's sweepSk, conditional on run (Postpone)
//	re-drive a run as the next run (sweeper, deliver)      UpdateItem of the delivery, conditional on run, unfinished (Redrive)
//	attempt by id (API)                                    GetItem MSG#<app>#<msg>/A#<att>
//	attempts by message (API)                              Query MSG#<app>#<msg>, begins_with(sk, "A#"), filters
//	attempts by endpoint, newest first (API)               Query IndexEndpoint EP#<app>#<ep>[#<s>], each of the 8 shards,
//	                                                         begins_with(epSk, "A#"), ScanIndexForward false, filters;
//	                                                         merged by attempt id; BatchGetItem
//	idempotency record (API)                               conditional PutItem / GetItem IDEM#<key>/IDEM
//	task by id (API, recover worker)                       GetItem TASK#<task>/TASK (consistent)
//	task progress (recover worker)                         UpdateItem TASK#<task>/TASK, conditional on updatedAt
//	tasks newest first, by status, kind, app (API)         Query IndexList "TASK", filter not expired; BatchGetItem
//	                                                         (consistent), then status/kind/app filters (tasks.go)
//	everything of an app (DeleteApp)                       Query IndexList MSG#<app>[#<s>], the 8 shards → each message
//	                                                         partition; Query APP#<app>
//	an endpoint's deliveries (DeleteEndpoint)              Query IndexEndpoint EP#<app>#<ep>[#<s>], the 8 shards,
//	                                                         begins_with(epSk, "D#")
//	Play: link a token to an endpoint (dashboard)          PutItem PLAY#<token>/LINK
//	Play: the endpoint of a token (dashboard)              GetItem PLAY#<token>/LINK, not expired
//	Play: keep a request (dashboard's receiver)            PutItem PLAY#<token>/R#...; conditional UpdateItem of the
//	                                                         link's expiry (exists, not expired); trim, below
//	Play: the requests beyond play.Keep (Add's trim)       Query PLAY#<token>, begins_with(sk, "R#"), ScanIndexForward
//	                                                         false, keys only, Limit play.Keep+25; BatchWriteItem deletes
//	Play: a token's newest requests (dashboard)            Query PLAY#<token>, begins_with(sk, "R#"), ScanIndexForward
//	                                                         false, Limit play.Keep, consistent; expired ones dropped
//
// Cursors are keys and need not exist: a key condition is BETWEEN prefix +
// cursor and prefix + U+10FFFF (or prefix and prefix + cursor backwards),
// and the item equal to the cursor is dropped. Filters are
// FilterExpressions, so a sparse filter may read several pages for one.
// A sharded list sends the same key condition and filter to every shard,
// concurrently (at most 8 requests in flight per call), and merges the
// shards in sort key order, taking an item only when every shard not read
// to its end has one at hand; sort keys are unique across the shards, so
// pages, cursors and More are those of one partition. A shard's first
// request asks for twice its share of the page (2*ceil((limit+1)/8)+2
// entries); a shard that runs out before the page is full is read on,
// with doubling requests, as a filtered list is.
//
// Table reads are strongly consistent, except that messages and attempts,
// which never change, are read eventually consistently first and again
// consistently only on a miss. Index queries are eventually consistent:
// lists can lag a write by a moment, and the sweeper's queries re-read
// the items they find (consistently) and check them again.
//
// # Expiry
//
// Messages, their deliveries and attempts, event-id claims, idempotency
// records, background tasks and Play items carry their expiry twice: expMs
// (milliseconds) for reads, which hide an item from the injected clock's
// now on, and TTLAttribute (epoch seconds, rounded up) for DynamoDB's TTL,
// which deletes lazily and never before reads stop showing the item. A Play
// request expires play.TTL after it arrived; a Play link play.TTL after
// the last Link or Add of its token.
//
// # Ownership
//
// Every unfinished delivery is owned by exactly one running execution,
// the delivery queue (AWS queue mode), or the sweeper, never by nothing;
// IndexSweep is how the sweeper finds what it owns, and what an execution
// lost. A deferred delivery (deferred.go) is in no index until its first
// attempt: its owner is the execution or queue message the api created
// before it stored the message — an SQS message stays until its first
// attempt is recorded, and an execution that ends without finishing its
// run is reported to the sweeper by Step Functions' status-change event
// (the stack's ExecutionEnded rule), which re-drives it. Every written
// delivery is in IndexSweep while its run is unfinished, sorted by
// checkAt:
//
//   - undispatched (CreateMessage, StartRun, Redrive): the time it became
//     so. The api function or the sweeper starts its execution within
//     seconds and marks it dispatched (MarkDispatched leaves the entry as
//     it is: no index write); one still undispatched a moment later is the
//     sweeper's, which starts it (a start under an existing name counts as
//     started, so two never run).
//   - dispatched: the time its next attempt is due (RecordAttempt moves it
//     with every retry, and takes the entry out when the run ends). The
//     execution records an attempt by then; a run whose attempt is
//     overdue is checked by the sweeper, which asks Step Functions whether
//     the execution still runs: if so it postpones its next look
//     (Postpone), if not it re-drives the run as the next run (Redrive:
//     run+1, undispatched, attempts kept), under a new execution name.
//     The execution's own error paths end the same way: the state
//     machine reconciles an attempt without a result and, if it cannot,
//     hands the run back (Redrive).
//
// An execution of a superseded run finds the run moved on and stops, so
// of two executions for one delivery at most one acts on it. The entry
// costs a happy delivery two index writes (in when created, out when the
// run ends), as the undispatched-only entry did, and two more per retry.
//
// # Without transactions
//
// The tests run against dynalite, which has no TransactWriteItems, so the
// store uses no transactions. Where two writers can race, one conditional
// write decides; where an operation writes several items, they are
// ordered so that every intermediate state is invisible or harmless, and
// a retry or a later reader completes or discards it:
//
//   - CreateMessage: message id check (read; only with deliveries to
//     write) → event-id claim (conditional put) → deliveries
//     (BatchWriteItem; not the deferred ones) → message (conditional put;
//     the commit point). Before the last write there is no message, so nothing
//     reads half a message; the client got an error and retries. If the
//     message were written first, a crash would leave a visible message
//     without delivery markers that the sweeper could never find.
//     Deliveries left without their message are not returned by
//     ListOverdue or ListUndispatched (which delete them after
//     claimGrace), and the API
//     skips deliveries whose message it cannot read. An event-id claim left
//     without its message blocks the event id for claimGrace (5 min).
//     Endpoints are not re-read: a delivery to an endpoint deleted since
//     the caller listed it is kept, and the deliver step cancels it.
//   - RecordAttempt: read delivery and endpoint → attempt (put) → endpoint
//     health (only if it changes; conditional) → delivery (conditional on
//     run, attempt count and unfinished; the commit point). A crash before
//     the last write leaves a logged attempt that did not advance the
//     delivery, so the deliver function's retry sends again with the same
//     webhook-id: the documented duplicate window, never a lost attempt.
//   - RecordAttempt, FinishDelivery and CancelDeliveries all condition the
//     delivery on being unfinished (and RecordAttempt and FinishDelivery on
//     its run), so exactly one of them moves an unfinished run on.
//     DisableEndpoint conditions on enabled and on failingSince as the
//     sweeper read it, so a success (which removes failingSince) or a
//     manual change in between makes it a Conflict.
//   - Optimistic updates: UpdateApp, UpdateEventType and UpdateEndpoint
//     are refused (webhook.ErrStale) unless updatedAt is the caller's
//     ifUpdatedAt, and write on condition that it still is; every write a
//     caller could overwrite moves updatedAt on (DisableEndpoint reads the
//     endpoint first to compute it). UpdateEndpoint also conditions on
//     failingSince as it read it and reads again when only that changed:
//     RecordAttempt's health writes leave updatedAt alone, so they never
//     make an update stale and an update never undoes them.
//   - Uids: the uniqueness item (APPUID#, EPUID#) is claimed with
//     attribute_not_exists before the app or endpoint is written, and
//     released after a rename or delete. A claim whose owner does not name
//     the uid is not followed by lookups; if a writer died between claim
//     and owner, the claim blocks the uid for claimGrace and is then taken
//     over. Deletes remove the owner first and the claim second, so a
//     crash never leaves an owner without its claim (which would let a
//     second owner take the uid).
//   - Idempotency: one conditional put (no record, an expired one, or an
//     unfinished one claimed before the caller's staleBefore) claims a
//     key.
//   - Background tasks: every progress write is conditional on the
//     updatedAt its worker read, so of two workers that resumed the same
//     task one goes on and the other stops (webhook.ErrStale).
//   - Play's Add: request (put) → link expiry (conditional update) →
//     trim. A crash leaves the request kept and perhaps more than
//     play.Keep requests; reads take the newest play.Keep only, and the
//     next Add trims the rest. A trim deletes only requests it read
//     play.Keep newer ones above, so racing Adds (or a stale read) never
//     drop one of the newest play.Keep.
//   - DeleteApp and DeleteEndpoint delete children first and the parent
//     last, so a crash leaves a visible parent that a retried delete
//     finishes. Children written concurrently with a delete (or missed by
//     the lagging index) can outlive it; they are unreachable through the
//     API, which resolves the app and endpoint first, and a delivery whose
//     endpoint is gone is canceled at its next attempt.
//
// # Limits
//
// An index partition takes about 1000 write units a second, and the sort
// keys of an endpoint's and an app's entries are KSUIDs, which grow with
// time, so DynamoDB cannot split a hot partition by sort key: every write
// lands at its end. A happy delivery writes 2 IndexEndpoint entries of
// under 1 KB when deferred (the attempt, the delivery's put at its first
// attempt) and about 4 when written at fan-out (its put, its update when
// dispatched, the attempt, its update at the end), and each failed
// attempt 2 more. Unsharded, one endpoint topped out near 250
// deliveries a second, and GSI throttling slows the table writes
// themselves. With 8 shards one endpoint takes 8000 entries a second:
// about 2000 happy deliveries, or 1300 that each fail once first, against
// the goal of 1000 for one endpoint (the account's Step Functions quotas
// allow about 500 deliveries a second in the large regions). 4 shards
// would leave no headroom at 1000 a second; at 8 each shard writes about
// 500 entries a second, and the hash's unevenness is far below the other
// half (a shard's share of 1000 messages a second varies by about 10,
// 40 entries). A message writes one
// IndexList entry and never changes, so one app takes 8000 messages a
// second against the goal of 2000; the app side has the same count so
// that every sharded list costs the same (Cost), and 8 concurrent Queries
// take about as long as 4. The next limit of a hot endpoint is its item:
// the deliver function reads it twice per delivery (LoadRun and
// RecordAttempt), strongly consistent, 1 read unit each under 4 KB, and
// one item serves about 3000 read units a second: about 1500 deliveries a
// second. IndexSweep's delivery shards are sized separately
// (SweepShards).
//
// GetMessage by event id follows the event-id claim, which names the
// newest message with the id: an older message with the same event id is
// found by its id only. The cost of DeleteApp grows with the app's data.
// A Play request item stays well under DynamoDB's 400 KB: its body is cut
// to play.KeepBytes (64 KiB) and API Gateway limits headers to 10 KiB.
//
// # Cost
//
// A CapacityMeter on the client tallies the capacity DynamoDB says the
// Store used (the bench and the tests install one). A happy
// delivery dispatched before its message was stored (the AWS functions,
// both dispatch modes) costs the api the message (with its IndexList
// entry) and nothing per endpoint, and the deliver function (LoadRun:
// one BatchGetItem; RecordAttempt of a success to a healthy endpoint) two
// items, the attempt and the delivery, with their two IndexEndpoint
// entries: 4 write units when each item is under 1 KB, and no IndexSweep
// entry, no dispatch mark. A delivery written at fan-out (local mode, a
// fan-out over maxDeferred, a run not dispatched at once) adds its put,
// its IndexEndpoint and IndexSweep entries, and the entry's removal at
// the end. The endpoint is written only when its health changes.
// Sharding adds no write.
//
// Reads of a sharded partition pay for it: a page of messages, of an
// endpoint's deliveries or of its attempts sends 8 Queries (concurrently,
// so it takes about as long as one) where it sent one, each billed at
// least 0.5 read unit (eventually consistent, per 4 KB). An empty list
// costs 4 units instead of 0.5; a page of 50 reads up to 16 entries of a
// few hundred bytes from each shard, about 8 units instead of about 2.5.
// Endpoint stats, cancel and the deletes read the same entries as before,
// in at least 8 Queries.
//
// Play, a testing aid, is paid per use: a received request costs its put
// (1 write unit per KB), one link update, and a Query for the trim, which
// DynamoDB charges for the whole items it reads (up to play.Keep + 25)
// although it projects keys only; an open Play page polls a consistent
// Query of up to play.Keep requests every 1.5 s. With webhook payloads of
// a few KB that is tens of units per request or poll.
package dynamo
