package dynamo

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/hookstep/hookstep/internal/webhook"
)

// defaultLimit is the page size when ListOptions.Limit is 0.
const defaultLimit = 50

// maxRune sorts after every character of an id or a name, so that prefix
// + maxRune bounds the sort keys that start with prefix.
const maxRune = "\U0010FFFF"

// pageLimit returns the page size ListOptions.Limit asks for.
func pageLimit(limit int) int {
	if limit <= 0 {
		return defaultLimit
	}
	return min(limit, webhook.MaxLimit)
}

// listQuery is one list: a partition of the table or of an index, whose
// items' sort keys are prefix + the list key (an id or a name), and an
// optional filter on the items.
type listQuery struct {
	index      string // "" = the table
	pkAttr     string
	skAttr     string
	pk         string
	prefix     string
	filter     func(e *expr) string // builds a FilterExpression, "" = none
	consistent bool                 // table queries only
}

// keyCond returns the key condition of a list page: the partition's list
// items from the cursor (inclusive) on, in the direction of reading.
func (q listQuery) keyCond(e *expr, cursor string, scanAsc bool) string {
	if cursor == "" {
		return partitionCond(e, q.pkAttr, q.pk, q.skAttr, q.prefix)
	}
	cond := e.eq(q.pkAttr, str(q.pk)) + " AND " + e.n(q.skAttr)
	switch {
	case scanAsc && q.prefix != "":
		return cond + " BETWEEN " + e.v(str(q.prefix+cursor)) + " AND " + e.v(str(q.prefix+maxRune))
	case scanAsc:
		return cond + " >= " + e.v(str(cursor))
	case q.prefix != "":
		return cond + " BETWEEN " + e.v(str(q.prefix)) + " AND " + e.v(str(q.prefix+cursor))
	default:
		return cond + " <= " + e.v(str(cursor))
	}
}

// list reads one page of a list as webhook.ListOptions describes: up to
// Limit items, and whether there are more in the direction of travel.
//
// The cursor is compared as a key and need not exist: the key condition
// includes it (BETWEEN is inclusive) and the item equal to it is dropped.
// Filters run in DynamoDB after the key condition, so a page may take
// several requests; each request reads more items than the last, up to
// 1000.
func (s *Store) list(ctx context.Context, q listQuery, opts webhook.ListOptions) ([]item, bool, error) {
	limit := pageLimit(opts.Limit)
	cursor := strings.ToValidUTF8(opts.Cursor, "\uFFFD")
	backward := opts.Backward && cursor != ""
	// Reading the partition in ascending key order serves an ascending
	// list read forward and a descending list read backward.
	scanAsc := opts.Ascending != backward

	var e expr
	cond := q.keyCond(&e, cursor, scanAsc)
	var filter string
	if q.filter != nil {
		filter = q.filter(&e)
	}
	in := &dynamodb.QueryInput{
		IndexName:                 optional(q.index),
		KeyConditionExpression:    &cond,
		FilterExpression:          optional(filter),
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
		ScanIndexForward:          aws.Bool(scanAsc),
		ConsistentRead:            aws.Bool(q.consistent && q.index == ""),
	}
	var items []item
	pageSize := int32(limit + 2) // the cursor's own item, and one to learn More
	for len(items) <= limit {
		in.Limit = aws.Int32(pageSize)
		out, err := s.query(ctx, in)
		if err != nil {
			return nil, false, err
		}
		for _, it := range out.Items {
			if cursor != "" && stringAttr(it, q.skAttr) == q.prefix+cursor {
				continue
			}
			items = append(items, it)
		}
		if out.LastEvaluatedKey == nil {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		pageSize = min(2*pageSize, 1000)
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if backward {
		slices.Reverse(items)
	}
	return items, more, nil
}

// fetch reads the table items of index entries, in the same order; entries
// whose item is gone by now are left out.
func (s *Store) fetch(ctx context.Context, entries []item, consistent bool) ([]item, error) {
	return s.getMany(ctx, keysOf(entries), consistent)
}

// decodeAll converts items with decode.
func decodeAll[T any](items []item, decode func(item) (T, error)) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		v, err := decode(it)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
