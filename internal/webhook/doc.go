// Package webhook is hookstep's domain: applications, event types,
// endpoints, messages, the delivery state of each (message, endpoint) pair,
// the attempts made for it, the retry schedule, validation rules and error
// kinds, and the ports (Store, Dispatcher) that adapters implement.
//
// It imports nothing from AWS or SQL; internal/sqlite and internal/dynamo
// store it, internal/localqueue and internal/sfn schedule its deliveries.
package webhook
