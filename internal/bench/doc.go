// Package bench measures hookstep with numbers anyone can reproduce with
// `make bench`: how fast local mode accepts and delivers messages, what
// that costs in CPU and memory, how big and how quick to start the Lambda
// functions are, and what the AWS deployment costs per million deliveries.
//
// It has three parts, each usable on its own (functions/bench wires them):
//
//   - Local: the real local-mode binary (functions/local) runs as a child
//     process on 127.0.0.1 with a temporary data dir, so that its CPU time
//     and peak RSS are read from /proc. Receivers are net/http servers in
//     this process, one per endpoint. A load generator creates an app and
//     its endpoints through the API and posts messages (~1 KiB payload) at
//     a target rate or as fast as the API takes them. Each scenario gets a
//     fresh server.
//   - Lambda: the bootstrap binaries' sizes, their cold-start init time
//     under the AWS Lambda Runtime Interface Emulator, and the deliver
//     handler's CPU time per invocation (read from /proc, so the time spent
//     waiting on the network is not in it).
//   - Cost: for both dispatch modes (stepfunctions: an execution per
//     delivery; queue: first attempts off SQS, an execution only for later
//     retries), DynamoDB capacity measured against dynalite for one message
//     accepted by the API (with an Idempotency-Key, as the Svix SDKs send)
//     and for a delivery that succeeds, one that fails its first attempt
//     and the immediate retry and recovers on attempt 3 (a receiver that
//     answers 500 twice per message, then 200), and one that exhausts
//     the schedule (the retries made at once by moving an injected clock
//     to each one's due time), Step Functions state transitions counted
//     by walking the synthesized state machine, the StartExecution and
//     SQS calls counted,
//     Lambda invocations and GB-seconds from measured durations (queue
//     mode's SQS batches of 1 and 10 records among them), multiplied by
//     AWS's published prices (Prices, each with its source) for each
//     Deployment: mode, API kind (REST or HTTP) and retention. The same
//     use per delivery, against the default account quotas (QuotaSources:
//     Step Functions, Lambda, SQS, API Gateway, DynamoDB tables and
//     partitions), gives the deliveries per second each mode sustains per
//     region class at fan-out 1 and 10, with 0, 2 and 10% of deliveries
//     failing their first attempt (and recovering), and, as a second set,
//     failing every attempt (an endpoint that is down), what binds, and
//     what binds next once DynamoDB's per-table quota is raised.
//
// What is measured, and how:
//
//   - API latency: from sending POST .../msg to reading the whole 202
//     response, on a keep-alive connection.
//   - accept→first attempt: from the message's timestamp (set by the server
//     when it accepts the request; millisecond precision, truncated, so the
//     figure errs high by less than 1 ms) to the moment the receiver gets
//     the first request for that message. Only endpoints that answer 2xx
//     count ("healthy"), so failing or hanging endpoints show as a change in
//     the healthy endpoints' latency.
//   - deliveries/s: first attempts that reached healthy endpoints, divided
//     by the time from the first message sent to the last such attempt.
//   - CPU seconds: the server process's user+system time over the scenario
//     (from the first message to the last delivery), per 1,000 attempts
//     made. Peak RSS is the server's VmHWM.
//
// The loopback POST ceiling: absolute rates do not travel between
// machines (the same commit measured 7,156 and 1,640–1,780 deliveries/s
// at fan-out 10 on two 2-core VMs a week apart), but the share of the
// machine's own limit does. For a webhook sender that limit is the
// loopback POST rate: one HTTP POST per delivery and nothing else to do.
// So before the first scenario and after the last, in the same sitting,
// MeasureCeiling runs a net/http client (the load generator's transport
// settings) and a healthy receiver (the scenarios' receiver) in this
// process, with no storage, the scenarios' payload (~1 KiB) and as many
// POSTs in flight as the scenarios' API requests (-concurrency), for 3 s
// (-ceiling); it reads this process's CPU time from /proc around it, so
// its CPU per 1,000 POSTs is the client's and the server's together, the
// cost of the POST pair. The shares are taken of the mean of the two
// runs, and the two show how much the machine drifted meanwhile:
//
//   - acc/ceil, del/ceil: accepted messages/s and deliveries/s as shares
//     of the ceiling's POSTs/s (JSON: ceilingShare.acceptedPerSec,
//     .deliveriesPerSec; the ceiling is loopbackCeiling);
//   - CPU/ceil: the server's CPU per 1,000 deliveries as a multiple of
//     the ceiling's CPU per 1,000 POSTs (.cpuPer1kTimesCeiling).
//
// The local throughput targets are written as these shares (targets.go);
// without a ceiling (-ceiling 0) they are left out. A share of 1 is out of
// reach by construction: the server makes the same POST and also accepts
// the message over HTTP and stores it, and the load generator's and the
// receivers' CPU comes out of the same cores.
//
// The load generator and the receivers share the machine with the server:
// on 2 cores their CPU is part of what bounds the numbers. The report also
// shows how much CPU other processes took during each scenario: on a
// shared VM a neighbour's disk I/O or CPU can double the tails and slow
// even CPU-only numbers by a third. The runs "as fast as it goes" vary by
// about ±15% between runs on one VM, and VMs differ more than that (see
// the ceiling above): compare shares, or runs made close together on one
// machine, and re-run when in doubt.
//
// The disk matters as much: a VM's disk may take 150–500 ms for an fsync
// now and then, every message accepted meanwhile waits for it, and one
// such stall in a 10 s run sets the p99. So each scenario runs a probe
// that fsyncs a block in the data dir every 20 ms (disk.go); the report
// shows its stalls (≥ 20 ms), and a target comparison made across one is
// marked noisy. -data-dir /dev/shm takes the disk out, and durability
// with it.
//
// -profile D writes a CPU profile of the server per scenario. What bounds
// local mode is SQLite's one writer (group commit, internal/sqlite): at
// fan-out 10 as fast as it goes it runs about half of the server's CPU
// in the last profile — the attempts' records (a fifth: the INSERT of the
// attempt, then the UPDATE of the delivery), the commits themselves (WAL
// frames, a pwrite per frame, the fsync: an eighth) and the messages'
// inserts (an eighth) — then the POSTs (sender.Send, a sixth: net/http,
// the HMAC) and the API (a sixteenth). A commit costs about 0.6 ms of CPU
// on this VM whatever its size, so the groups' size matters as much as
// the statements. Earlier, the profile also held the read of each held
// delivery that waited past one second (LoadRun, 15%), each message's
// list of endpoints (9%), a write per message for its Idempotency-Key
// (28% at fan-out 1), a write to record each dispatch (6%), RETURNING the
// delivery of each attempt (a third of its record) and savepoints
// (5%): none of these remain (see internal/sqlite and internal/localqueue).
// The local queue's design (new messages skip the claim, claims only when
// something is due, fair shares per endpoint) is in internal/localqueue.
// Micro-benchmarks of the hot paths (BenchmarkRecordAttemptFanOut10 and
// BenchmarkCreateMessageParallel report the CPU per write as
// cpu-ns/op):
//
//	go test -run '^$' -bench . -benchmem ./internal/signing ./internal/webhook ./internal/api ./internal/sqlite ./internal/delivery
//
// The targets the report checks are in targets.go; the README keeps only
// the latest table and the cost per million per mode.
package bench
