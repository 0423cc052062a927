// Package lambdafn holds the handlers of hookstep's three Lambda functions
// and what they share: their configuration, the AWS clients and services
// they are built from, and the API Gateway REST proxy adapter. The
// functions/*/main.go files only wire these together and call lambda.Start.
//
//   - api: API Gateway REST API proxy events (v1 payload) → the same
//     http.Handler as local mode (internal/api).
//   - deliver: the state machine's Task: ids in → one attempt → outcome out
//     for the Choice state; also the final "mark failed" step.
//   - sweeper: an EventBridge scheduled event → disable week-failing
//     endpoints, re-drive undispatched deliveries (bounded per run).
package lambdafn
