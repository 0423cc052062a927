package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Store is a webhook.Store in one DynamoDB table laid out by TableSchema.
// It keeps no state between calls and is safe for concurrent use.
type Store struct {
	client client
	table  string
	clock  webhook.Clock
}

var _ webhook.Store = (*Store)(nil)

// New returns a Store on the table, which must have been created from
// TableSchema. The clock decides which messages, attempts and idempotency
// records have expired; nil means the system clock.
func New(client *dynamodb.Client, table string, clock webhook.Clock) *Store {
	if clock == nil {
		clock = webhook.SystemClock{}
	}
	return &Store{client: newClient(client), table: table, clock: clock}
}

// client is the part of the DynamoDB API a Store uses, held as method
// values rather than as the *dynamodb.Client. The api binary links
// html/template, whose reflection (MethodByName) makes the linker keep
// every exported method of a type converted to an interface and of the
// types its fields hold. A Store is a webhook.Store, so a *dynamodb.Client
// field kept all 63 DynamoDB operations and their serializers (make
// bench reports the binaries' sizes). A closure's captured client is out
// of the linker's sight.
type client struct {
	getItem        func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	putItem        func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	updateItem     func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	deleteItem     func(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	query          func(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	batchGetItem   func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	batchWriteItem func(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// newClient returns the methods of c a Store calls.
func newClient(c *dynamodb.Client) client {
	return client{
		getItem:        c.GetItem,
		putItem:        c.PutItem,
		updateItem:     c.UpdateItem,
		deleteItem:     c.DeleteItem,
		query:          c.Query,
		batchGetItem:   c.BatchGetItem,
		batchWriteItem: c.BatchWriteItem,
	}
}

// item is one DynamoDB item.
type item = map[string]types.AttributeValue

// key is an item's primary key.
type key struct{ pk, sk string }

func (k key) item() item {
	return item{AttrPK: str(k.pk), AttrSK: str(k.sk)}
}

// keyOf returns the primary key of an item.
func keyOf(it item) key {
	return key{pk: stringAttr(it, AttrPK), sk: stringAttr(it, AttrSK)}
}

// Attribute values.

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func boolean(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

func bytesValue(v []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: v} }

// stringAttr returns the string attribute of an item, "" if it has none.
func stringAttr(it item, attr string) string {
	if v, ok := it[attr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// boolAttr returns the boolean attribute of an item, false if it has none.
func boolAttr(it item, attr string) bool {
	v, ok := it[attr].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// numAttr returns the number attribute of an item, 0 if it has none.
func numAttr(it item, attr string) int64 {
	if v, ok := it[attr].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

// Times are stored as unix milliseconds; the zero time is not stored.

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// ttl returns the TTLAttribute value for an expiry: the epoch second at or
// after it, so that DynamoDB never deletes an item before reads stop
// showing it.
func ttl(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	sec := t.Unix()
	if t.After(time.Unix(sec, 0)) {
		sec++
	}
	return sec
}

// sortTime formats a time for a sort key: fixed-width unix milliseconds,
// so that string order is time order.
func sortTime(t time.Time) string { return fmt.Sprintf("%015d", millis(t)) }

// visible reports whether an item with the expiry (unix ms, 0 = never) is
// still readable at now.
func visible(expMs int64, now time.Time) bool {
	return expMs == 0 || expMs > now.UnixMilli()
}

// expr collects the attribute names and values of one request's
// expressions. Every attribute goes through a placeholder, so that
// DynamoDB's reserved words ("status", "name", "keys", ...) never bite.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

// n returns the placeholder of an attribute name.
func (e *expr) n(attr string) string {
	if e.names == nil {
		e.names = make(map[string]string)
	}
	p := "#" + attr
	e.names[p] = attr
	return p
}

// v returns a placeholder for a value.
func (e *expr) v(av types.AttributeValue) string {
	if e.values == nil {
		e.values = make(map[string]types.AttributeValue)
	}
	p := ":v" + strconv.Itoa(len(e.values))
	e.values[p] = av
	return p
}

func (e *expr) eq(attr string, av types.AttributeValue) string { return e.n(attr) + " = " + e.v(av) }

func (e *expr) exists(attr string) string { return "attribute_exists(" + e.n(attr) + ")" }

func (e *expr) missing(attr string) string { return "attribute_not_exists(" + e.n(attr) + ")" }

// in returns "attr IN (...)"; avs must not be empty.
func (e *expr) in(attr string, avs ...types.AttributeValue) string {
	ps := make([]string, len(avs))
	for i, av := range avs {
		ps[i] = e.v(av)
	}
	return e.n(attr) + " IN (" + strings.Join(ps, ", ") + ")"
}

// unfinished is the condition that a delivery is pending or sending.
func (e *expr) unfinished() string {
	return e.in("status", num(int64(webhook.StatusPending)), num(int64(webhook.StatusSending)))
}

// notExpired is the condition that an item with an expMs attribute is
// still visible at now.
func (e *expr) notExpired(now time.Time) string {
	return e.missing("expMs") + " OR " + e.n("expMs") + " > " + e.v(num(now.UnixMilli()))
}

func (e *expr) nameMap() map[string]string { return e.names }

func (e *expr) valueMap() map[string]types.AttributeValue { return e.values }

// and joins the non-empty conditions. Disjunctions are parenthesised when
// there is more than one condition; DynamoDB refuses other parentheses as
// redundant.
func and(conds ...string) string {
	var parts []string
	for _, c := range conds {
		if c != "" {
			parts = append(parts, c)
		}
	}
	if len(parts) > 1 {
		for i, p := range parts {
			if strings.Contains(p, " OR ") {
				parts[i] = "(" + p + ")"
			}
		}
	}
	return strings.Join(parts, " AND ")
}

// optional returns nil for "", so that an absent expression is not sent.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// update builds an UpdateExpression.
type update struct {
	e      *expr
	sets   []string
	remove []string
}

func (u *update) set(attr string, av types.AttributeValue) {
	u.sets = append(u.sets, u.e.n(attr)+" = "+u.e.v(av))
}

// setTime sets a time attribute, or removes it for the zero time.
func (u *update) setTime(attr string, t time.Time) {
	if t.IsZero() {
		u.del(attr)
		return
	}
	u.set(attr, num(millis(t)))
}

func (u *update) del(attr string) { u.remove = append(u.remove, u.e.n(attr)) }

func (u *update) String() string {
	var b strings.Builder
	if len(u.sets) > 0 {
		b.WriteString("SET " + strings.Join(u.sets, ", "))
	}
	if len(u.remove) > 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString("REMOVE " + strings.Join(u.remove, ", "))
	}
	return b.String()
}

// Errors.

// conditionFailed reports whether a write was refused by its condition.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// wrapf adds the operation to an error, once: domain errors (NotFound,
// Conflict) pass through unchanged.
func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var we *webhook.Error
	if errors.As(err, &we) {
		return err
	}
	return fmt.Errorf("dynamo: "+format+": %w", append(args, err)...)
}

// Requests. Each one names the table.

func (s *Store) getItem(ctx context.Context, k key, consistent bool) (item, bool, error) {
	out, err := s.client.getItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            k.item(),
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return nil, false, err
	}
	return out.Item, out.Item != nil, nil
}

func (s *Store) putItem(ctx context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
	in.TableName = &s.table
	return s.client.putItem(ctx, in)
}

// putNew puts it unless an item with its key exists, which
// conditionFailed tells from the error.
func (s *Store) putNew(ctx context.Context, it item) error {
	var e expr
	cond := e.missing(AttrPK)
	_, err := s.putItem(ctx, &dynamodb.PutItemInput{Item: it, ConditionExpression: &cond, ExpressionAttributeNames: e.nameMap()})
	return err
}

func (s *Store) updateItem(ctx context.Context, in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	in.TableName = &s.table
	return s.client.updateItem(ctx, in)
}

func (s *Store) deleteItem(ctx context.Context, in *dynamodb.DeleteItemInput) (*dynamodb.DeleteItemOutput, error) {
	in.TableName = &s.table
	return s.client.deleteItem(ctx, in)
}

func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput) (*dynamodb.QueryOutput, error) {
	in.TableName = &s.table
	return s.client.query(ctx, in)
}

// Batch limits of DynamoDB.
const (
	maxBatchGet   = 100
	maxBatchWrite = 25
)

// getMany reads the items with the keys, in one BatchGetItem per 100
// keys, and returns them in the order of keys; keys without an item are
// left out.
func (s *Store) getMany(ctx context.Context, keys []key, consistent bool) ([]item, error) {
	found := make(map[key]item, len(keys))
	var unique []key
	for _, k := range keys {
		if _, dup := found[k]; !dup {
			found[k] = nil
			unique = append(unique, k)
		}
	}
	for start := 0; start < len(unique); start += maxBatchGet {
		chunk := unique[start:min(start+maxBatchGet, len(unique))]
		req := types.KeysAndAttributes{ConsistentRead: aws.Bool(consistent)}
		for _, k := range chunk {
			req.Keys = append(req.Keys, k.item())
		}
		pending := map[string]types.KeysAndAttributes{s.table: req}
		for try := 0; len(pending) > 0; try++ {
			if err := backoff(ctx, try); err != nil {
				return nil, err
			}
			out, err := s.client.batchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: pending,
			})
			if err != nil {
				return nil, err
			}
			for _, it := range out.Responses[s.table] {
				found[keyOf(it)] = it
			}
			pending = out.UnprocessedKeys
		}
	}
	items := make([]item, 0, len(keys))
	for _, k := range keys {
		if it := found[k]; it != nil {
			items = append(items, it)
		}
	}
	return items, nil
}

// writeMany sends the writes in BatchWriteItem requests of 25, retrying
// what DynamoDB leaves unprocessed. The writes are unconditional and not
// atomic as a whole.
func (s *Store) writeMany(ctx context.Context, writes []types.WriteRequest) error {
	for start := 0; start < len(writes); start += maxBatchWrite {
		pending := map[string][]types.WriteRequest{s.table: writes[start:min(start+maxBatchWrite, len(writes))]}
		for try := 0; len(pending) > 0; try++ {
			if err := backoff(ctx, try); err != nil {
				return err
			}
			out, err := s.client.batchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: pending,
			})
			if err != nil {
				return err
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}

// deleteMany deletes the items with the keys.
func (s *Store) deleteMany(ctx context.Context, keys []key) error {
	writes := make([]types.WriteRequest, len(keys))
	for i, k := range keys {
		writes[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k.item()}}
	}
	return s.writeMany(ctx, writes)
}

// backoff waits before retry number try of a batch's unprocessed part (no
// wait before the first request).
func backoff(ctx context.Context, try int) error {
	if try == 0 {
		return nil
	}
	return sleep(ctx, min(25*time.Millisecond<<min(try, 6), time.Second))
}

// sleep waits d, or less if ctx ends first (its error then).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// partitionCond returns the key condition of the items of a table or
// index partition whose sort key begins with prefix ("" = all of them).
func partitionCond(e *expr, pkAttr, pk, skAttr, prefix string) string {
	cond := e.eq(pkAttr, str(pk))
	if prefix != "" {
		cond += " AND begins_with(" + e.n(skAttr) + ", " + e.v(str(prefix)) + ")"
	}
	return cond
}

// keysOnly is the ProjectionExpression of a query that needs only the
// items' primary keys.
func keysOnly(e *expr) *string { return aws.String(e.n(AttrPK) + ", " + e.n(AttrSK)) }

// eachPage runs a query to its end, calling fn with each page's items.
func (s *Store) eachPage(ctx context.Context, in *dynamodb.QueryInput, fn func([]item) error) error {
	for {
		out, err := s.query(ctx, in)
		if err != nil {
			return err
		}
		if err := fn(out.Items); err != nil {
			return err
		}
		if out.LastEvaluatedKey == nil {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// keysOf returns the primary keys of items.
func keysOf(items []item) []key {
	keys := make([]key, len(items))
	for i, it := range items {
		keys[i] = keyOf(it)
	}
	return keys
}

// stalef returns webhook.ErrStale with the operation, for the logs.
func stalef(format string, args ...any) error {
	return fmt.Errorf("dynamo: "+format+": %w", append(args, webhook.ErrStale)...)
}
