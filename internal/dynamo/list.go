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
const defaultLimit = webhook.DefaultLimit

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

// listQuery is one list: a partition of the table or of an index (or
// the shards of one), whose items' sort keys are prefix + the list key (an
// id or a name), and an optional filter on the items.
type listQuery struct {
	index      string // "" = the table
	pkAttr     string
	skAttr     string
	pk         string
	shards     int // > 1: pk is split into this many partitions (shards), merged in key order
	prefix     string
	filter     func(e *expr) string // builds a FilterExpression, "" = none
	consistent bool                 // table queries only
}

// partitions returns the partitions the list reads.
func (q listQuery) partitions() []string {
	if q.shards > 1 {
		return shards(q.pk, q.shards)
	}
	return []string{q.pk}
}

// keyCond returns the key condition of a list page in partition pk: the
// list items from the cursor (inclusive) on, in the direction of reading.
func (q listQuery) keyCond(e *expr, pk, cursor string, scanAsc bool) string {
	if cursor == "" {
		return partitionCond(e, q.pkAttr, pk, q.skAttr, q.prefix)
	}
	cond := e.eq(q.pkAttr, str(pk)) + " AND " + e.n(q.skAttr)
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
//
// A sharded list queries every shard with the same key condition and
// filter and merges them: an item is taken only when every shard not yet
// read to its end has one at hand, so the page is the first Limit items
// of the merged order after the cursor, and More is whether a shard had
// one more. Sort keys are unique across the shards (an item is in one
// of them), so the merged order is the order one partition would have.
// Each shard's first request asks for twice its share of the page; a
// shard that runs out before the page is full is read further (all such
// shards at once), so an uneven spread costs requests, never items.
func (s *Store) list(ctx context.Context, q listQuery, opts webhook.ListOptions) ([]item, bool, error) {
	limit := pageLimit(opts.Limit)
	cursor := strings.ToValidUTF8(opts.Cursor, "\uFFFD")
	backward := opts.Backward && cursor != ""
	// Reading the partition in ascending key order serves an ascending
	// list read forward and a descending list read backward.
	scanAsc := opts.Ascending != backward

	pks := q.partitions()
	// One partition reads limit+2 items first: the cursor's own item,
	// and one to learn More.
	share := (limit + len(pks)) / len(pks) // ceil((limit+1) / shards)
	first := int32(min(limit, 2*share) + 2)
	readers := make([]*shardReader, len(pks))
	for i, pk := range pks {
		var e expr
		cond := q.keyCond(&e, pk, cursor, scanAsc)
		var filter string
		if q.filter != nil {
			filter = q.filter(&e)
		}
		readers[i] = &shardReader{
			in: &dynamodb.QueryInput{
				IndexName:                 optional(q.index),
				KeyConditionExpression:    &cond,
				FilterExpression:          optional(filter),
				ExpressionAttributeNames:  e.nameMap(),
				ExpressionAttributeValues: e.valueMap(),
				ScanIndexForward:          aws.Bool(scanAsc),
				ConsistentRead:            aws.Bool(q.consistent && q.index == ""),
			},
			size: first,
		}
	}
	var skip string // the cursor's own item
	if cursor != "" {
		skip = q.prefix + cursor
	}
	// precedes reports whether a comes before b in the order of reading.
	precedes := func(a, b item) bool {
		ka, kb := stringAttr(a, q.skAttr), stringAttr(b, q.skAttr)
		if scanAsc {
			return ka < kb
		}
		return ka > kb
	}

	var items []item
	for len(items) <= limit {
		if err := s.fill(ctx, readers, q.skAttr, skip); err != nil {
			return nil, false, err
		}
		next := -1
		for i, r := range readers {
			if len(r.buf) > 0 && (next < 0 || precedes(r.buf[0], readers[next].buf[0])) {
				next = i
			}
		}
		if next < 0 {
			break // every shard is read to its end
		}
		items = append(items, readers[next].buf[0])
		readers[next].buf = readers[next].buf[1:]
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

// shardReader reads one partition of a list, a request at a time, in the
// order of reading.
type shardReader struct {
	in   *dynamodb.QueryInput
	size int32  // the Limit of the next request
	buf  []item // read and not merged yet
	done bool   // the partition is read to its end
}

// fill reads on every partition that has no item at hand and is not read
// to its end, concurrently, until each has one or is done. skip is the
// sort key of the cursor's own item, which is dropped ("" = none).
func (s *Store) fill(ctx context.Context, readers []*shardReader, skAttr, skip string) error {
	for {
		var dry []*shardReader
		for _, r := range readers {
			if len(r.buf) == 0 && !r.done {
				dry = append(dry, r)
			}
		}
		if len(dry) == 0 {
			return nil
		}
		err := forEach(ctx, len(dry), func(ctx context.Context, i int) error {
			r := dry[i]
			r.in.Limit = aws.Int32(r.size)
			out, err := s.query(ctx, r.in)
			if err != nil {
				return err
			}
			for _, it := range out.Items {
				if skip == "" || stringAttr(it, skAttr) != skip {
					r.buf = append(r.buf, it)
				}
			}
			r.done = out.LastEvaluatedKey == nil
			r.in.ExclusiveStartKey = out.LastEvaluatedKey
			r.size = min(2*r.size, 1000)
			return nil
		})
		if err != nil {
			return err
		}
	}
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
