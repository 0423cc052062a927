// Package localqueue is the Dispatcher of local mode: a durable retry queue
// whose entries are the delivery rows of the SQLite store themselves. A
// delivery is due when it is Pending or Sending and its NextAttemptAt has
// come; workers claim due deliveries with a lease (pushing NextAttemptAt
// forward), make the attempt, and the attempt's result sets the real next
// time. The claim is a lease against a worker that dies, not a waiting
// room: deliveries beyond what their endpoint may have in flight and
// parked are put back in the store, due, to wait for a slot of their
// endpoint, and are claimed back as its slots free (fairness.go). A
// process killed mid-attempt loses nothing: its claims are in the store,
// and the next start makes them due at once (the store's ReleaseClaims,
// which local mode calls before Run, holding the data dir's lock);
// overdue deliveries run as soon as the process is back.
//
// New messages skip the claim: the queue is a delivery.Holder, so Publish
// stores a new message's deliveries claimed already and hands them to the
// queue in memory, and workers take those first attempts ahead of the
// deliveries claimed from the store (retries, resends, overdue ones). A
// first attempt thus waits for no write but the message's own, reads
// nothing (it comes with what Publish read), and a retry storm queues
// behind new messages instead of in front of them.
//
// Endpoints' throttleRate is enforced here too (throttle.go): Throttle is
// local mode's delivery.Limiter, and a delivery its endpoint's throttle
// holds back waits in memory, without a worker, until its token comes
// back.
//
// # Throughput
//
// What bounds local mode is SQLite's one writer (internal/sqlite commits
// concurrent writes in groups, each still returning only once durable);
// the queue's part is to ask it for as little as it can:
//
//   - New messages skip the claim (above). The room for held deliveries
//     is bounded (512 per worker, at most 65,536, counted until each
//     attempt ends: a burst at fan-out 10 fits, where 64 per worker sent
//     most of it through the store), and so are the payloads held with
//     them (64 MiB); beyond, a delivery is stored due — and dispatched:
//     the queue polls the store (delivery.Polling), so nothing records
//     the dispatch — and claimed like any other, or keeps only its
//     reference and reads what its attempt needs. What Publish read
//     stands in for a read for as long as the store has not changed
//     (webhook.ChangeCounter: no write but new messages, attempts, claims
//     and dispatch records since), however long the delivery waited; an
//     endpoint changed meanwhile is read again. Every fourth pick prefers
//     deliveries claimed from the store, so retries are not starved by
//     new messages.
//   - The queue claims from the store only when something is due: an
//     attempt that ends does not wake it; one that schedules a retry tells
//     it when, and retries coming due within Gather (20 ms) of each other
//     are claimed in one write. A claim is one SELECT and one UPDATE.
//   - An attempt reads its delivery, endpoint and message in one query
//     (the store's LoadRun).
//   - Workers are long-lived and shared fairly (fairness.go): one endpoint
//     may use at most half of them, one whose attempts take a second or
//     more an eighth, one whose last attempt failed a sixteenth (the
//     smaller when both). Due deliveries beyond an endpoint's share park
//     in memory for its slots; beyond as many again they wait in the
//     store (one write for the endpoint's whole due backlog) and are
//     claimed back half a park at a time as its slots free.
//   - Each attempt is logged at debug level only (the attempt log has
//     them all), and local mode sets GOGC=400 unless GOGC is set.
//
// internal/bench's package doc says how this is measured (make bench,
// -profile) and what the last profile showed.
//
// The files: queue.go is the Queue (its configuration, Hold, Dispatch,
// Run, and the loop's sleep until the next due time); run.go is what one
// Run is made of (the claim loop, the workers, the count of deliveries in
// hand); fairness.go the endpoints' fair shares of the workers;
// throttle.go the endpoints' throttleRate.
package localqueue
