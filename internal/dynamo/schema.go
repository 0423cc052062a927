package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The table's key attributes and indexes. TableSchema is built from them;
// the CDK stack (infra/) and the tests create the table from TableSchema
// and name the TTL attribute with TTLAttribute, so the layout is defined
// once, here.
const (
	// AttrPK and AttrSK are the table's partition and sort key (strings).
	AttrPK = "pk"
	AttrSK = "sk"

	// IndexList lists apps, event types and an app's messages in key
	// order. It projects only the attributes list filters read; the
	// listed items are then read from the table.
	IndexList  = "list"
	AttrListPK = "listPk"
	AttrListSK = "listSk"

	// MessageShards is the number of IndexList partitions an app's
	// messages are spread over by message id, so that one app can write
	// more messages than one partition takes (1000 writes a second);
	// lists query every shard and merge them (doc.go, Limits). Only
	// ever increase it: items in shards no longer read would be lost to
	// lists.
	MessageShards = 8

	// IndexEndpoint holds an endpoint's deliveries (sort key "D#" +
	// message id) and attempts ("A#" + attempt id). It projects whole
	// deliveries and the attributes attempt filters read.
	IndexEndpoint  = "byEndpoint"
	AttrEndpointPK = "epPk"
	AttrEndpointSK = "epSk"

	// EndpointShards is the number of IndexEndpoint partitions an
	// endpoint's deliveries and attempts are spread over by message id,
	// so that one endpoint can take more deliveries than one partition's
	// writes allow; lists query every shard and merge them. Only ever
	// increase it, as MessageShards.
	EndpointShards = 8

	// IndexSweep is sparse and keys-only: it holds the enabled endpoints
	// that are failing (partition "FAILING", sort key = failingSince) and
	// the unfinished deliveries (partitions "U#0" .. "U#<SweepShards-1>",
	// sort key = the time by which the run should have moved on, see
	// deliveryItem).
	IndexSweep  = "sweep"
	AttrSweepPK = "sweepPk"
	AttrSweepSK = "sweepSk"

	// TTLAttribute holds the epoch second after which DynamoDB may delete
	// a message, delivery, attempt, event-id, idempotency or Play item.
	// Enable TTL on it; reads never rely on the deletion, which is lazy.
	TTLAttribute = "expiresAt"

	// SweepShards is the number of IndexSweep partitions that unfinished
	// deliveries are spread over, so that fan-out does not write one index
	// partition: each delivery writes its entry twice (in when created or
	// restarted, out when finished) and once more per retry (its sort key
	// moves), so 16 partitions of about 1,000 writes a second each take
	// several thousand deliveries a second. Only ever increase it: the
	// first shards keep their names, so existing entries are still read.
	SweepShards = 16
)

// listProjection and endpointProjection are the non-key attributes the two
// INCLUDE indexes carry. They leave out payloads and responses, which can
// be hundreds of kilobytes, so that an index entry costs one write unit.
var (
	listProjection = []string{
		"archived",                             // event types
		"eventType", "channels", "ts", "expMs", // messages
	}
	endpointProjection = []string{
		// whole deliveries
		"appId", "msgId", "endpointId", "eventType", "channels", "status", "run", "trigger",
		"attempts", "nextAttemptAt", "dispatched", "createdAt", "updatedAt", "expMs",
		// attempt filters (status, eventType, msgId and expMs are shared)
		"code", "ts",
	}
)

// TableSchema returns the CreateTable input of hookstep's table: on-demand
// billing, string keys, and the three global secondary indexes. It does
// not enable TTL (CreateTable cannot); turn it on for TTLAttribute.
func TableSchema(name string) *dynamodb.CreateTableInput {
	str := func(attr string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(attr), AttributeType: types.ScalarAttributeTypeS}
	}
	keys := func(pk, sk string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			str(AttrPK), str(AttrSK),
			str(AttrListPK), str(AttrListSK),
			str(AttrEndpointPK), str(AttrEndpointSK),
			str(AttrSweepPK), str(AttrSweepSK),
		},
		KeySchema: keys(AttrPK, AttrSK),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{
				IndexName: aws.String(IndexList),
				KeySchema: keys(AttrListPK, AttrListSK),
				Projection: &types.Projection{
					ProjectionType:   types.ProjectionTypeInclude,
					NonKeyAttributes: listProjection,
				},
			},
			{
				IndexName: aws.String(IndexEndpoint),
				KeySchema: keys(AttrEndpointPK, AttrEndpointSK),
				Projection: &types.Projection{
					ProjectionType:   types.ProjectionTypeInclude,
					NonKeyAttributes: endpointProjection,
				},
			},
			{
				IndexName:  aws.String(IndexSweep),
				KeySchema:  keys(AttrSweepPK, AttrSweepSK),
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			},
		},
	}
}

// CreateTable creates the table from TableSchema and waits until it is
// active. It is for tests and local set-ups; in AWS the CDK stack owns the
// table.
func CreateTable(ctx context.Context, client *dynamodb.Client, name string) error {
	if _, err := client.CreateTable(ctx, TableSchema(name)); err != nil {
		return fmt.Errorf("dynamo: create table %s: %w", name, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 2*time.Minute); err != nil {
		return fmt.Errorf("dynamo: wait for table %s: %w", name, err)
	}
	return nil
}
