package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/jsii-runtime-go"

	"github.com/hookstep/hookstep/internal/dynamo"
)

// addTable creates the single table from dynamo.TableSchema, the same
// definition the store's tests create in dynalite, so the keys, the
// indexes and their projections are written down once. The stack adds
// what CreateTable cannot say: TTL, point-in-time recovery and deletion
// protection; and, when the props ask for it, warm throughput.
func (h *hookstep) addTable() error {
	schema := dynamo.TableSchema("unused: CloudFormation names the table")
	if schema.BillingMode != types.BillingModePayPerRequest {
		return fmt.Errorf("stack: table billing mode %q: the stack only supports on-demand", schema.BillingMode)
	}
	attrs := make(map[string]types.ScalarAttributeType, len(schema.AttributeDefinitions))
	for _, a := range schema.AttributeDefinitions {
		attrs[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	pk, sk, err := keyAttributes(schema.KeySchema, attrs)
	if err != nil {
		return fmt.Errorf("stack: table key: %w", err)
	}

	retain := h.props.RemovalPolicy == awscdk.RemovalPolicy_RETAIN
	table := awsdynamodb.NewTable(h.stack, jsii.String("Table"), &awsdynamodb.TableProps{
		PartitionKey: pk,
		SortKey:      sk,
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		TimeToLiveAttribute: jsii.String(dynamo.TTLAttribute),
		RemovalPolicy:       h.props.RemovalPolicy,
		// A retained table is one whose data matters; protect it from a
		// stray DeleteTable as well. A disposable stack must be able to
		// delete it.
		DeletionProtection: jsii.Bool(retain),
		WarmThroughput:     warmThroughput(h.props.WarmThroughput),
	})

	for _, gsi := range schema.GlobalSecondaryIndexes {
		name := aws.ToString(gsi.IndexName)
		pk, sk, err := keyAttributes(gsi.KeySchema, attrs)
		if err != nil {
			return fmt.Errorf("stack: index %s: %w", name, err)
		}
		projection, err := projectionType(gsi.Projection.ProjectionType)
		if err != nil {
			return fmt.Errorf("stack: index %s: %w", name, err)
		}
		props := &awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      jsii.String(name),
			PartitionKey:   pk,
			SortKey:        sk,
			ProjectionType: projection,
		}
		if len(gsi.Projection.NonKeyAttributes) > 0 {
			props.NonKeyAttributes = jsii.Strings(gsi.Projection.NonKeyAttributes...)
		}
		table.AddGlobalSecondaryIndex(props)
	}
	h.res.table = table
	return nil
}

// warmThroughput is the table's warm throughput for CDK: nil, leaving it
// out of the template, when neither value is set.
func warmThroughput(w WarmThroughput) *awsdynamodb.WarmThroughput {
	if w == (WarmThroughput{}) {
		return nil
	}
	out := &awsdynamodb.WarmThroughput{}
	if w.ReadUnitsPerSecond > 0 {
		out.ReadUnitsPerSecond = jsii.Number(w.ReadUnitsPerSecond)
	}
	if w.WriteUnitsPerSecond > 0 {
		out.WriteUnitsPerSecond = jsii.Number(w.WriteUnitsPerSecond)
	}
	return out
}

// keyAttributes turns a DynamoDB key schema into CDK's partition and sort
// key attributes (the sort key is nil when the schema has none).
func keyAttributes(keys []types.KeySchemaElement, attrs map[string]types.ScalarAttributeType) (pk, sk *awsdynamodb.Attribute, err error) {
	for _, k := range keys {
		name := aws.ToString(k.AttributeName)
		t, ok := attrs[name]
		if !ok {
			return nil, nil, fmt.Errorf("key %s has no attribute definition", name)
		}
		at, err := attributeType(t)
		if err != nil {
			return nil, nil, fmt.Errorf("key %s: %w", name, err)
		}
		attr := &awsdynamodb.Attribute{Name: jsii.String(name), Type: at}
		switch k.KeyType {
		case types.KeyTypeHash:
			pk = attr
		case types.KeyTypeRange:
			sk = attr
		default:
			return nil, nil, fmt.Errorf("key %s: unknown key type %q", name, k.KeyType)
		}
	}
	if pk == nil {
		return nil, nil, fmt.Errorf("no partition key")
	}
	return pk, sk, nil
}

func attributeType(t types.ScalarAttributeType) (awsdynamodb.AttributeType, error) {
	switch t {
	case types.ScalarAttributeTypeS:
		return awsdynamodb.AttributeType_STRING, nil
	case types.ScalarAttributeTypeN:
		return awsdynamodb.AttributeType_NUMBER, nil
	case types.ScalarAttributeTypeB:
		return awsdynamodb.AttributeType_BINARY, nil
	}
	return "", fmt.Errorf("unknown attribute type %q", t)
}

func projectionType(t types.ProjectionType) (awsdynamodb.ProjectionType, error) {
	switch t {
	case types.ProjectionTypeAll:
		return awsdynamodb.ProjectionType_ALL, nil
	case types.ProjectionTypeKeysOnly:
		return awsdynamodb.ProjectionType_KEYS_ONLY, nil
	case types.ProjectionTypeInclude:
		return awsdynamodb.ProjectionType_INCLUDE, nil
	}
	return "", fmt.Errorf("unknown projection type %q", t)
}
