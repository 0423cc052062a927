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
	// dashboard's Play URLs).
	apiTableActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem",
		"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
	}

	// deliverTableActions: one attempt (delivery.Service.Attempt) reads
	// the delivery, endpoint and message (GetItem), records the attempt
	// (BatchGetItem of delivery and endpoint, PutItem of the attempt,
	// UpdateItem of the endpoint's health and the delivery, GetItem
	// after a lost race); a run's end (Attempt's stop, Fail) is a
	// conditional UpdateItem and a GetItem when it is refused. It never
	// queries, deletes or batch-writes.
	deliverTableActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
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

// addPermissions grants each function's role exactly what its code
// does, and nothing through CDK's broader grants (GrantReadWriteData would
// add Scan, the stream actions, ConditionCheckItem and DescribeTable,
// everywhere). The roles take no other grants (see function).
//
//	api      the table (apiTableActions, Query on apiIndexes), the admin
//	         token secret (read), states:StartExecution on the state
//	         machine (a message's first runs), lambda:InvokeFunction on
//	         the sweeper (the hand-off of the rest)
//	deliver  the table (deliverTableActions)
//	sweeper  the table (sweeperTableActions, Query on sweeperIndexes),
//	         states:StartExecution on the state machine,
//	         states:DescribeExecution on its executions
func (h *hookstep) addPermissions() {
	r := h.res
	api, deliver, sweeper := r.roles["api"], r.roles["deliver"], r.roles["sweeper"]

	h.grantTable(api, apiTableActions, apiIndexes)
	r.adminToken.GrantRead(api, nil)
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee: api,
		Actions: jsii.Strings("lambda:InvokeFunction"),
		// The function itself: not its versions or aliases (":*"),
		// which the stack never publishes.
		ResourceArns: jsii.Strings(*r.sweeper.FunctionArn()),
	})
	r.stateMachine.GrantStartExecution(api)

	h.grantTable(deliver, deliverTableActions, nil)

	h.grantTable(sweeper, sweeperTableActions, sweeperIndexes)
	r.stateMachine.GrantStartExecution(sweeper)
	// Before it re-drives a delivery, the sweeper asks whether the
	// execution it started for it is still running.
	r.stateMachine.GrantExecution(sweeper, jsii.String("states:DescribeExecution"))
}

// grantTable lets role run actions on the table's items and, when it
// queries indexes, Query on those indexes only.
func (h *hookstep) grantTable(role awsiam.IRole, actions, indexes []string) {
	table := h.res.table.TableArn()
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      role,
		Actions:      jsii.Strings(actions...),
		ResourceArns: jsii.Strings(*table),
	})
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
