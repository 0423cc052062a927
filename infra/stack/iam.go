package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/internal/dynamo"
)

// The DynamoDB actions of each function: the operations its code paths
// issue through internal/dynamo (GetItem, PutItem, UpdateItem, DeleteItem,
// Query, BatchGetItem and BatchWriteItem are all the Store sends). None
// of them scans, reads a stream, or uses a transaction.
var (
	// apiTableActions: the api serves every Store path (apps, endpoints,
	// messages and their fan-out, attempts, idempotency, deletions, the
	// dashboard's Play URLs), and seeds the event-type catalog on each
	// cold start (BatchGetItem of the seed markers, PutItem of the types
	// and markers: dynamo.Store.SeedEventTypes).
	apiTableActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem",
		"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
	}

	// deliverTableActions: one attempt (delivery.Service.Attempt) reads
	// the delivery, endpoint and message (GetItem), records the attempt
	// (BatchGetItem of delivery and endpoint, PutItem of the attempt,
	// UpdateItem of the endpoint's health and the delivery, GetItem
	// after a lost race); a run's end (Attempt's stop, Fail) is a
	// conditional UpdateItem and a GetItem when it is refused. An
	// attempt that calls for an operational webhook (the fourth failure,
	// the last, a recovery: internal/operational) publishes it as a
	// message of the reserved app: it queries that app's endpoints
	// (Query, on the table only) and writes the message with its
	// deliveries (BatchWriteItem, PutItem). It never deletes.
	deliverTableActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem",
		"dynamodb:Query", "dynamodb:UpdateItem",
	}

	// sweeperTableActions: the sweep (internal/sweeper) queries the
	// failing endpoints and undispatched deliveries (Query, then
	// BatchGetItem), disables and cancels (GetItem, UpdateItem), and
	// deletes deliveries whose message was never written
	// (ListUndispatched's BatchWriteItem); the background tasks it runs
	// read and write their items (GetItem, PutItem, UpdateItem, Query);
	// dispatch bookkeeping marks runs dispatched and reads them back
	// (UpdateItem, Query, BatchGetItem, GetItem). No DeleteItem.
	sweeperTableActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:GetItem",
		"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
	}
)

// The indexes each function queries, besides the table itself.
var (
	// apiIndexes: the lists (IndexList), an endpoint's attempts,
	// deliveries and stats (IndexEndpoint), and the Store's sweep
	// queries (IndexSweep), all of which the api's Store may run.
	apiIndexes = []string{dynamo.IndexList, dynamo.IndexEndpoint, dynamo.IndexSweep}

	// sweeperIndexes: failing endpoints and undispatched deliveries
	// (IndexSweep); a disabled endpoint's deliveries to cancel and a
	// recover's failed attempts (IndexEndpoint).
	sweeperIndexes = []string{dynamo.IndexSweep, dynamo.IndexEndpoint}
)

// The SQS actions of queue mode. Each SQS batch call is authorized by
// its single-message action (SendMessageBatch by sqs:SendMessage,
// DeleteMessageBatch by sqs:DeleteMessage). None of the functions needs
// sqs:GetQueueUrl: they are given the URLs.
var (
	// queueSendActions: the api sends new deliveries, the sweeper
	// undispatched ones and what it drains from the dead-letter queue.
	queueSendActions = []string{"sqs:SendMessage"}

	// queueConsumeActions: what Lambda's event source mapping does with
	// the deliver function's role (the actions AWS documents for it),
	// ChangeMessageVisibility, which the function calls to have a
	// message whose delivery is not written yet come back sooner, and
	// SendMessage, with which it sends a run its endpoint's throttleRate
	// holds back to the queue again, delayed until its token.
	// CDK's SqsEventSource would grant the first four and sqs:GetQueueUrl.
	queueConsumeActions = []string{
		"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage",
	}

	// deadLetterDrainActions: the sweeper receives what the dead-letter
	// queue holds and deletes it once it is sent back to dispatch.
	deadLetterDrainActions = []string{"sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"}
)

// addPermissions grants each function's role exactly what its code
// does, and nothing through CDK's broader grants (GrantReadWriteData would
// add Scan, the stream actions, ConditionCheckItem and DescribeTable,
// everywhere). The roles take no other grants (see function).
//
// In both dispatch modes:
//
//	api      the table (apiTableActions, Query on apiIndexes), the admin
//	         token secret (read), lambda:InvokeFunction on the sweeper
//	         (the hand-off)
//	deliver  the table (deliverTableActions)
//	sweeper  the table (sweeperTableActions, Query on sweeperIndexes),
//	         states:StartExecution on the state machine,
//	         states:DescribeExecution on its executions
//
// In stepfunctions mode, besides:
//
//	api      states:StartExecution on the state machine (a message's
//	         first runs)
//
// In queue mode, besides:
//
//	api      queueSendActions on the delivery queue
//	deliver  queueConsumeActions on the delivery queue,
//	         states:StartExecution on the state machine (a delivery
//	         that needs a retry)
//	sweeper  queueSendActions on the delivery queue,
//	         deadLetterDrainActions on the dead-letter queue
func (h *hookstep) addPermissions() {
	r := h.res
	api, deliver, sweeper := r.roles["api"], r.roles["deliver"], r.roles["sweeper"]

	h.grantTable(api, apiTableActions, apiIndexes)
	r.adminToken.GrantRead(api, nil)
	// The function itself: not its versions or aliases (":*"), which
	// the stack never publishes.
	grant(api, []string{"lambda:InvokeFunction"}, r.sweeper.FunctionArn())

	h.grantTable(deliver, deliverTableActions, nil)

	h.grantTable(sweeper, sweeperTableActions, sweeperIndexes)
	r.stateMachine.GrantStartExecution(sweeper)
	// Before it re-drives a delivery, the sweeper asks whether the
	// execution it started for it is still running.
	r.stateMachine.GrantExecution(sweeper, jsii.String("states:DescribeExecution"))

	if h.props.Dispatch != DispatchQueue {
		r.stateMachine.GrantStartExecution(api)
		return
	}
	queue, dlq := r.queue.QueueArn(), r.deadLetterQueue.QueueArn()
	grant(api, queueSendActions, queue)
	grant(deliver, queueConsumeActions, queue)
	// The ARN deliver is told (see addQueue): a reference to the state
	// machine would make deliver's policy wait for it, and the state
	// machine waits for deliver.
	grant(deliver, []string{"states:StartExecution"}, r.stateMachineARN)
	grant(sweeper, queueSendActions, queue)
	grant(sweeper, deadLetterDrainActions, dlq)
}

// grant lets role run actions on one resource.
func grant(role awsiam.IRole, actions []string, resource *string) {
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      role,
		Actions:      jsii.Strings(actions...),
		ResourceArns: &[]*string{resource},
	})
}

// grantTable lets role run actions on the table's items and, when it
// queries indexes, Query on those indexes only.
func (h *hookstep) grantTable(role awsiam.IRole, actions, indexes []string) {
	table := h.res.table.TableArn()
	grant(role, actions, table)
	if len(indexes) == 0 {
		return
	}
	arns := make([]string, len(indexes))
	for i, name := range indexes {
		arns[i] = *table + "/index/" + name
	}
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      role,
		Actions:      jsii.Strings("dynamodb:Query"),
		ResourceArns: jsii.Strings(arns...),
	})
}
