// Package lambdafn holds the handlers of hookstep's three Lambda functions
// and what they share: their configuration, the AWS clients and services
// they are built from, and the API Gateway REST proxy adapter. The
// functions/*/main.go files only wire these together and call lambda.Start.
//
//   - api: API Gateway REST API proxy events (v1 payload) → the same
//     http.Handler as local mode (internal/api).
//   - deliver: the state machine's Tasks: ids in → one attempt → outcome
//     out for the Choice state; also the steps that reconcile a run after
//     an attempt without a result, hand it back to the sweeper, and mark
//     it failed.
//   - sweeper: an EventBridge scheduled event → disable week-failing
//     endpoints and give every unfinished delivery an owner (passes while
//     there is work and time); or runs the api handed over → start them
//     within the dispatch rate.
//
// Dispatch on AWS: the api stores a message and its deliveries, starts up
// to 25 executions itself (within 2 s, not waiting on a throttle) and
// hands the rest to the sweeper with one asynchronous invoke (HandOff),
// so a request's work does not grow with the fan-out. Runs not started
// stay undispatched in the table, where the next sweep finds them.
package lambdafn
