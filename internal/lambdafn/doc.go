// Package lambdafn holds the handlers of hookstep's three Lambda functions
// and what they share: their configuration, the AWS clients and services
// they are built from, and the API Gateway proxy adapters. The
// functions/*/main.go files only wire these together and call lambda.Start.
//
//   - api: API Gateway proxy events, REST API (payload 1.0) or HTTP API
//     (payload 2.0, ProxyAny tells them apart) → the same http.Handler as
//     local mode (internal/api).
//   - deliver: the state machine's Tasks: ids in → one attempt → outcome
//     out for the Choice state; also the steps that reconcile a run after
//     an attempt without a result, hand it back to the sweeper, and mark
//     it failed. In queue mode also the delivery queue's SQS events
//     (DeliverEvents tells them apart): a run's first attempt and the
//     schedule's immediate retry, then an execution only for a later
//     retry, with a partial batch response.
//   - sweeper: an EventBridge scheduled event → disable week-failing
//     endpoints and give every unfinished delivery an owner (passes while
//     there is work and time; in queue mode it also drains the
//     dead-letter queue); runs the api handed over → dispatch them within
//     the dispatch rate; a background task → run it; Step Functions'
//     status change of an execution that failed, was aborted or timed out
//     → take its run back (sweeper.Sweeper.Ended).
//
// Dispatch on AWS (HOOKSTEP_DISPATCH): the api dispatches a message's
// first runs — up to 25 executions (stepfunctions) or 1,000 queue
// messages (queue), within 2 s, not waiting on a throttle — before it
// stores the message (delivery.Early; those need no delivery item until
// their first attempt, see internal/dynamo), then stores it and hands the
// rest to the sweeper with one asynchronous invoke (HandOff), so a
// request's work does not grow with the fan-out. Runs not dispatched stay
// undispatched in the table, where the next sweep finds them.
package lambdafn
