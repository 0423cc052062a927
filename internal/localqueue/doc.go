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
// The files: queue.go is the Queue (its configuration, Hold, Dispatch,
// Run, and the loop's sleep until the next due time); run.go is what one
// Run is made of (the claim loop, the workers, the count of deliveries in
// hand); fairness.go the endpoints' fair shares of the workers;
// throttle.go the endpoints' throttleRate.
package localqueue
