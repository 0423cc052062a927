package dynamo

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Capacity is DynamoDB capacity as the service reports it per request
// (ReturnConsumedCapacity TOTAL: the table and its indexes; dynalite
// reports the table's share only).
type Capacity struct {
	ReadUnits  float64
	WriteUnits float64
}

// Sub returns c - o, the capacity consumed between two readings.
func (c Capacity) Sub(o Capacity) Capacity {
	return Capacity{ReadUnits: c.ReadUnits - o.ReadUnits, WriteUnits: c.WriteUnits - o.WriteUnits}
}

// CapacityMeter tallies the capacity DynamoDB reports for the requests of
// the clients it is installed on, for the bench and the tests: a Store
// neither asks for its capacity nor counts it. Install it in the client's
// APIOptions before the Store is made:
//
//	var m dynamo.CapacityMeter
//	client := dynamodb.New(opts, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, m.Install) })
//	store := dynamo.New(client, table, clock)
//
// It asks for the capacity (ReturnConsumedCapacity TOTAL) of every read
// and write a Store sends, and adds what the response reports. Requests
// that fail, conditional checks included, are not counted, although
// DynamoDB charges a failed conditional write. It is safe for concurrent
// use; the zero value is ready.
type CapacityMeter struct {
	mu       sync.Mutex
	consumed Capacity
}

// Consumed returns the capacity counted since the meter was installed.
func (m *CapacityMeter) Consumed() Capacity {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumed
}

// Install adds the meter to a client's middleware stack; it is an entry
// for dynamodb.Options.APIOptions.
func (m *CapacityMeter) Install(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("hookstepCapacityMeter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			askCapacity(in.Parameters)
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				m.count(out.Result)
			}
			return out, md, err
		}), middleware.After)
}

// askCapacity sets ReturnConsumedCapacity TOTAL on the requests a Store
// sends.
func askCapacity(params any) {
	total := types.ReturnConsumedCapacityTotal
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = total
	}
}

// count adds the capacity a response reports, as read or write units by
// its operation.
func (m *CapacityMeter) count(result any) {
	var write bool
	var ccs []types.ConsumedCapacity
	one := func(cc *types.ConsumedCapacity) {
		if cc != nil {
			ccs = append(ccs, *cc)
		}
	}
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		one(out.ConsumedCapacity)
	case *dynamodb.QueryOutput:
		one(out.ConsumedCapacity)
	case *dynamodb.BatchGetItemOutput:
		ccs = out.ConsumedCapacity
	case *dynamodb.PutItemOutput:
		write = true
		one(out.ConsumedCapacity)
	case *dynamodb.UpdateItemOutput:
		write = true
		one(out.ConsumedCapacity)
	case *dynamodb.DeleteItemOutput:
		write = true
		one(out.ConsumedCapacity)
	case *dynamodb.BatchWriteItemOutput:
		write = true
		ccs = out.ConsumedCapacity
	}
	var units float64
	for _, cc := range ccs {
		units += aws.ToFloat64(cc.CapacityUnits)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if write {
		m.consumed.WriteUnits += units
	} else {
		m.consumed.ReadUnits += units
	}
}
