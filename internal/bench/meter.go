package bench

import (
	"context"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/hookstep/hookstep/internal/dynamo"
)

// indexMeter adds what dynalite leaves out of ConsumedCapacity: the write
// units of the global secondary indexes. Around every write the Store
// sends (PutItem, UpdateItem, DeleteItem, BatchWriteItem) it reads the
// items before and after (with a second, unmetered client) and applies
// DynamoDB's rules for index writes
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes):
//
//   - an item that enters an index (new, or now has the index's key
//     attributes) costs one index write;
//   - an item that leaves it (deleted, or lost a key attribute) costs one;
//   - a change of the index key costs two (delete the old entry, put the
//     new one);
//   - a change of a projected attribute only costs one;
//   - anything else costs nothing in that index.
//
// Each index write costs ceil(entry size / 1 KB) units, the entry being the
// table's key, the index's key and the projected attributes. Writes are
// serialised while metered, so the images are exact.
//
// It also sorts what is stored by how long it stays (the TTL attribute
// against now): items kept longer than shortLived expire with their
// message and are priced for the retention; shorter-lived ones
// (idempotency records, 24 h) are counted in byte-days.
type indexMeter struct {
	reader  *dynamodb.Client // unmetered: the images cost nothing
	table   string
	indexes []indexDef
	now     func() time.Time // the store's clock, for items' lifetimes

	mu         sync.Mutex
	stored     float64            // net bytes stored, table and indexes, with DynamoDB's 100 bytes per item
	retained   float64            // the part of stored kept for the message's retention
	byteDays   float64            // byte-days of shorter-lived items
	units      float64            // index write units
	writes     map[string]int     // index writes by index name
	partitions map[string]float64 // index write units by partition class
	calls      map[string]int     // requests by operation
}

// shortLived separates items that expire with their message (at least a
// day of retention, webhook.MinRetentionDays) from shorter-lived ones.
const shortLived = 36 * time.Hour

type indexDef struct {
	name      string
	pk, sk    string
	keysOnly  bool
	projected []string // INCLUDE attributes
}

func newIndexMeter(reader *dynamodb.Client, schema *dynamodb.CreateTableInput) *indexMeter {
	m := &indexMeter{reader: reader, table: aws.ToString(schema.TableName), now: time.Now,
		writes: map[string]int{}, partitions: map[string]float64{}, calls: map[string]int{}}
	for _, gsi := range schema.GlobalSecondaryIndexes {
		d := indexDef{name: aws.ToString(gsi.IndexName)}
		for _, k := range gsi.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				d.pk = aws.ToString(k.AttributeName)
			} else {
				d.sk = aws.ToString(k.AttributeName)
			}
		}
		switch gsi.Projection.ProjectionType {
		case types.ProjectionTypeKeysOnly:
			d.keysOnly = true
		case types.ProjectionTypeInclude:
			d.projected = gsi.Projection.NonKeyAttributes
		}
		m.indexes = append(m.indexes, d)
	}
	return m
}

// reading is a snapshot of the meter.
type reading struct {
	IndexWriteUnits    float64
	StoredBytes        float64
	RetainedBytes      float64
	ShortLivedByteDays float64
	Partitions         map[string]float64
	Calls              map[string]int
}

func (m *indexMeter) read() reading {
	m.mu.Lock()
	defer m.mu.Unlock()
	return reading{
		IndexWriteUnits: m.units, StoredBytes: m.stored, RetainedBytes: m.retained, ShortLivedByteDays: m.byteDays,
		Partitions: maps.Clone(m.partitions), Calls: maps.Clone(m.calls),
	}
}

// middleware returns the client option that installs the meter.
func (m *indexMeter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("benchIndexMeter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			keys := m.writtenKeys(in.Parameters)
			m.mu.Lock()
			defer m.mu.Unlock()
			m.calls[middleware.GetOperationName(ctx)]++
			if keys == nil {
				return next.HandleInitialize(ctx, in)
			}
			before := m.images(ctx, keys)
			out, md, err := next.HandleInitialize(ctx, in)
			if err != nil {
				return out, md, err // a failed write changes no index
			}
			after := m.images(ctx, keys)
			for i := range keys {
				m.account(before[i], after[i])
			}
			return out, md, err
		}), middleware.After)
}

// writtenKeys returns the keys of the items a write request changes, nil
// for other requests.
func (m *indexMeter) writtenKeys(params any) []item {
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		return []item{keyOnly(in.Item)}
	case *dynamodb.UpdateItemInput:
		return []item{in.Key}
	case *dynamodb.DeleteItemInput:
		return []item{in.Key}
	case *dynamodb.BatchWriteItemInput:
		var keys []item
		for _, reqs := range in.RequestItems {
			for _, r := range reqs {
				switch {
				case r.PutRequest != nil:
					keys = append(keys, keyOnly(r.PutRequest.Item))
				case r.DeleteRequest != nil:
					keys = append(keys, r.DeleteRequest.Key)
				}
			}
		}
		return keys
	}
	return nil
}

type item = map[string]types.AttributeValue

func keyOnly(it item) item {
	return item{"pk": it["pk"], "sk": it["sk"]}
}

func (m *indexMeter) images(ctx context.Context, keys []item) []item {
	out := make([]item, len(keys))
	for i, k := range keys {
		res, err := m.reader.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(m.table), Key: k, ConsistentRead: aws.Bool(true)})
		if err == nil {
			out[i] = res.Item
		}
	}
	return out
}

// account adds the index writes that changing before into after costs,
// and what it changes in storage.
func (m *indexMeter) account(before, after item) {
	stored := storedSize(after) - storedSize(before)
	for _, ix := range m.indexes {
		inBefore, inAfter := ix.holds(before), ix.holds(after)
		if inAfter {
			stored += ix.entrySize(after) + 100
		}
		if inBefore {
			stored -= ix.entrySize(before) + 100
		}
		switch {
		case !inBefore && !inAfter:
		case !inBefore:
			m.indexWrite(ix, after)
		case !inAfter:
			m.indexWrite(ix, before)
		case !equalAttr(before[ix.pk], after[ix.pk]) || !equalAttr(before[ix.sk], after[ix.sk]):
			m.indexWrite(ix, before)
			m.indexWrite(ix, after)
		case ix.projectionChanged(before, after):
			m.indexWrite(ix, after)
		}
	}
	m.stored += stored
	it := after
	if it == nil {
		it = before
	}
	switch life := m.lifetime(it); {
	case life > shortLived:
		m.retained += stored
	case life > 0:
		m.byteDays += stored * life.Hours() / 24
	}
}

// indexWrite counts one write of entry's index entry.
func (m *indexMeter) indexWrite(ix indexDef, entry item) {
	u := writeUnits(ix.entrySize(entry))
	m.units += u
	m.writes[ix.name]++
	m.partitions[partitionClass(ix.name, entry[ix.pk])] += u
}

// lifetime is how long the item stays before its TTL deletes it; 0 for
// an item without one.
func (m *indexMeter) lifetime(it item) time.Duration {
	n, ok := it[dynamo.TTLAttribute].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	sec, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		return 0
	}
	return time.Unix(sec, 0).Sub(m.now())
}

// idPattern matches hookstep's ids (webhook.NewID) in keys.
var idPattern = regexp.MustCompile(`(app|ep|msg|atmpt|qtask)_[0-9A-Za-z]+`)

// partitionClass names the index partitions a key belongs to, the same
// for every app, endpoint and message and for every shard of them:
// "sweep U" for IndexSweep's U#0 .. U#15, "byEndpoint EP#<app>#<ep>" for
// an endpoint's 8 shards.
func partitionClass(index string, pk types.AttributeValue) string {
	s, _ := pk.(*types.AttributeValueMemberS)
	if s == nil {
		return index + " ?"
	}
	class := idPattern.ReplaceAllStringFunc(s.Value, func(id string) string {
		prefix, _, _ := strings.Cut(id, "_")
		return "<" + prefix + ">"
	})
	return index + " " + shardSuffix.ReplaceAllString(class, "")
}

// shardSuffix is a sharded key's "#<n>" (shard 0 has none).
var shardSuffix = regexp.MustCompile(`#[0-9]+$`)

func (ix indexDef) holds(it item) bool {
	return it != nil && it[ix.pk] != nil && it[ix.sk] != nil
}

func (ix indexDef) attrs() []string {
	a := []string{"pk", "sk", ix.pk, ix.sk}
	if !ix.keysOnly {
		a = append(a, ix.projected...)
	}
	return a
}

func (ix indexDef) entrySize(it item) float64 {
	var n int
	seen := map[string]bool{}
	for _, name := range ix.attrs() {
		if seen[name] {
			continue
		}
		seen[name] = true
		if v, ok := it[name]; ok {
			n += len(name) + attrSize(v)
		}
	}
	return float64(n)
}

func (ix indexDef) projectionChanged(before, after item) bool {
	if ix.keysOnly {
		return false
	}
	for _, name := range ix.projected {
		if !equalAttr(before[name], after[name]) {
			return true
		}
	}
	return false
}

// writeUnits is the cost of writing an item of the given size: one unit
// per KB, rounded up.
func writeUnits(size float64) float64 {
	return math.Max(1, math.Ceil(size/1024))
}

// storedSize is what an item takes in storage as DynamoDB bills it: its
// size (attribute names plus values) and 100 bytes of overhead; 0 for
// none.
func storedSize(it item) float64 {
	if it == nil {
		return 0
	}
	n := 100
	for name, v := range it {
		n += len(name) + attrSize(v)
	}
	return float64(n)
}

// attrSize approximates DynamoDB's size of a value: UTF-8 bytes of a
// string, bytes of a binary, about one byte per two digits of a number,
// one byte for a boolean or null, and 3 bytes plus the elements (and one
// byte each) for lists and maps.
func attrSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + attrSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + attrSize(e)
		}
		return n
	}
	return 0
}

// equalAttr compares two attribute values (nil = absent).
func equalAttr(a, b types.AttributeValue) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		if !ok {
			return false
		}
		x, err1 := strconv.ParseFloat(a.Value, 64)
		y, err2 := strconv.ParseFloat(b.Value, 64)
		return err1 == nil && err2 == nil && x == y
	case *types.AttributeValueMemberB:
		b, ok := b.(*types.AttributeValueMemberB)
		return ok && string(a.Value) == string(b.Value)
	case *types.AttributeValueMemberBOOL:
		b, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberSS:
		b, ok := b.(*types.AttributeValueMemberSS)
		return ok && slices.Equal(slices.Sorted(slices.Values(a.Value)), slices.Sorted(slices.Values(b.Value)))
	case *types.AttributeValueMemberL:
		b, ok := b.(*types.AttributeValueMemberL)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for i := range a.Value {
			if !equalAttr(a.Value[i], b.Value[i]) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberM:
		b, ok := b.(*types.AttributeValueMemberM)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for k, v := range a.Value {
			if !equalAttr(v, b.Value[k]) {
				return false
			}
		}
		return true
	}
	return false
}
