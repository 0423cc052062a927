package dynamo

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hookstep/hookstep/internal/webhook"
)

// eventIDWindow is how long an EventID stays taken within an app.
const eventIDWindow = 24 * time.Hour

// eventIDClaim is the claim of msg's EventID. The claim item names the
// newest message with the event id; a new message may replace it when
// that message is at least eventIDWindow older or expired.
func (s *Store) eventIDClaim(msg *webhook.Message, now time.Time) claimSpec {
	k := eventIDKey(msg.AppID, msg.EventID)
	return claimSpec{
		claim: claimItem{
			PK: k.pk, SK: k.sk, Owner: msg.ID,
			Timestamp: millis(msg.Timestamp), ExpMs: millis(msg.ExpiresAt), ExpiresAt: ttl(msg.ExpiresAt),
		},
		free: func(e *expr) string {
			return e.n("ts") + " <= " + e.v(num(millis(msg.Timestamp.Add(-eventIDWindow)))) +
				" OR " + e.n("expMs") + " <= " + e.v(num(now.UnixMilli()))
		},
		current: func(ctx context.Context, holder claimItem) (bool, error) {
			_, found, err := s.getItem(ctx, messageKey(msg.AppID, holder.Owner), true)
			return found, err
		},
	}
}

// CreateMessage implements webhook.Store. There are no transactions, so
// the writes are ordered to keep every intermediate state harmless:
//
//  1. the message id is checked to be free (a read), so that a rejected
//     duplicate writes nothing (skipped when there are no deliveries to
//     write: the message's conditional put is then the only write);
//  2. the EventID claim (conditional put) rejects a duplicate event id
//     before anything else is written;
//  3. the deliveries are written (BatchWriteItem), each carrying the
//     undispatched marker of IndexSweep — except the deferred ones
//     (deferred.go), which are not written at all;
//  4. the message is written last, on condition that its id is new: it is
//     the commit point. It names the deferred deliveries.
//
// Until step 4 the message does not exist, so no reader can see a message
// that lacks deliveries: GetMessage finds nothing, the API answers with an
// error and the client retries. Deliveries left by a writer that died
// before step 4 have no message: the API skips them (it reads each
// delivery's message), and ListUndispatched neither returns them nor, once
// they are older than claimGrace, keeps them. A left-over event-id claim
// is taken over after claimGrace.
//
// The endpoints are not read: a delivery to an endpoint deleted after the
// caller listed it is written all the same (the deleting DeleteEndpoint
// may have run before it, so nothing removes it). It is harmless: the API
// lists it under the message only with its endpoint, and the deliver step
// cancels a delivery whose endpoint is gone.
func (s *Store) CreateMessage(ctx context.Context, msg *webhook.Message, deliveries []webhook.Delivery) error {
	now := s.clock.Now()
	writes := make([]types.WriteRequest, 0, len(deliveries))
	keys := make([]key, 0, len(deliveries))
	var deferred []string
	seen := make(map[string]bool, len(deliveries))
	for _, d := range deliveries {
		if seen[d.EndpointID] {
			return webhook.Conflict("message %s lists endpoint %s twice", msg.ID, d.EndpointID)
		}
		seen[d.EndpointID] = true
		if defers(d, len(deliveries)) {
			deferred = append(deferred, d.EndpointID)
			continue
		}
		d.Normalize(msg)
		it, err := encodeDelivery(&d, msg.ExpiresAt)
		if err != nil {
			return wrapf(err, "create message %s", msg.ID)
		}
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		keys = append(keys, deliveryKey(d.AppID, d.MsgID, d.EndpointID))
	}
	msgItem, err := encodeMessage(msg, deferred)
	if err != nil {
		return wrapf(err, "create message %s", msg.ID)
	}

	// 1. The id.
	if len(writes) > 0 {
		if _, found, err := s.getItem(ctx, messageKey(msg.AppID, msg.ID), true); err != nil {
			return wrapf(err, "create message %s", msg.ID)
		} else if found {
			return webhook.Conflict("message %s already exists", msg.ID)
		}
	}

	// 2. The event id.
	var replaced item
	if msg.EventID != "" {
		res, old, err := s.claim(ctx, s.eventIDClaim(msg, now))
		if err != nil {
			return wrapf(err, "create message %s: claim event id", msg.ID)
		}
		if res == claimTaken {
			return webhook.Conflict("event id %q was used by another message in the last 24 hours", msg.EventID)
		}
		replaced = old
	}

	// 3. The deliveries.
	if err := s.writeMany(ctx, writes); err != nil {
		return wrapf(err, "create message %s: deliveries", msg.ID)
	}

	// 4. The message.
	err = s.putNew(ctx, msgItem)
	if conditionFailed(err) {
		// The id was taken between steps 1 and 4, which only a client
		// reusing a KSUID can do. Undo steps 3 and 2; what an undo
		// leaves behind is cleaned up as after a crash.
		_ = s.deleteMany(ctx, keys)
		if msg.EventID != "" {
			_ = s.release(ctx, eventIDKey(msg.AppID, msg.EventID), msg.ID, replaced)
		}
		return webhook.Conflict("message %s already exists", msg.ID)
	}
	return wrapf(err, "create message %s", msg.ID)
}

// GetMessage implements webhook.Store: the id first, then the event id's
// claim item, which names the newest message with it.
func (s *Store) GetMessage(ctx context.Context, appID, idOrEventID string) (*webhook.Message, error) {
	now := s.clock.Now()
	m, found, err := s.readMessage(ctx, appID, idOrEventID, now)
	if err != nil {
		return nil, wrapf(err, "get message %s", idOrEventID)
	}
	if found {
		return m, nil
	}
	c, found, err := s.getItem(ctx, eventIDKey(appID, idOrEventID), true)
	if err != nil {
		return nil, wrapf(err, "get message %s", idOrEventID)
	}
	if found {
		m, found, err = s.readMessage(ctx, appID, stringAttr(c, "owner"), now)
		if err != nil {
			return nil, wrapf(err, "get message %s", idOrEventID)
		}
		if found && m.EventID == idOrEventID {
			return m, nil
		}
	}
	return nil, webhook.NotFound("message %s not found", idOrEventID)
}

// readMessage reads a message that has not expired. A message changes
// at most once, when its payload is expunged, so an eventually consistent
// read that finds one is as good as a consistent read at half the price;
// only a miss (the message may be milliseconds old) is read again,
// consistently. The price is that a read within a second or so of an
// expunge may still see the payload (DynamoDB's replicas converge within
// about a second); after that no read does.
func (s *Store) readMessage(ctx context.Context, appID, id string, now time.Time) (*webhook.Message, bool, error) {
	k := messageKey(appID, id)
	it, found, err := s.getItem(ctx, k, false)
	if err == nil && !found {
		it, found, err = s.getItem(ctx, k, true)
	}
	if err != nil || !found || !visible(numAttr(it, "expMs"), now) {
		return nil, false, err
	}
	m, err := decodeMessage(it)
	if err != nil {
		return nil, false, err
	}
	return &m, true, nil
}

// ExpungeContent implements webhook.Store: one UpdateItem removes the
// payload attribute, on condition that the message exists and has not
// expired. No other item holds a payload.
func (s *Store) ExpungeContent(ctx context.Context, appID, msgID string) error {
	var e expr
	u := update{e: &e}
	u.del("payload")
	cond := and(e.exists(AttrPK), e.notExpired(s.clock.Now()))
	_, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       messageKey(appID, msgID).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if conditionFailed(err) {
		return webhook.NotFound("message %s not found", msgID)
	}
	return wrapf(err, "expunge message content %s", msgID)
}

// ListMessages implements webhook.Store: the app's IndexList shards,
// filtered on the projected attributes and merged, then the page's
// messages from the table.
func (s *Store) ListMessages(ctx context.Context, f webhook.MessageFilter) (webhook.Page[webhook.Message], error) {
	now := s.clock.Now()
	q := listQuery{
		index: IndexList, pkAttr: AttrListPK, skAttr: AttrListSK, pk: appMessages(f.AppID), shards: MessageShards,
		filter: func(e *expr) string {
			conds := []string{e.notExpired(now), inAny(e, "eventType", f.EventTypes), hasChannel(e, f.Channel)}
			if !f.Before.IsZero() {
				conds = append(conds, e.n("ts")+" < "+e.v(num(f.Before.UnixMilli())))
			}
			if !f.After.IsZero() {
				conds = append(conds, e.n("ts")+" > "+e.v(num(f.After.UnixMilli())))
			}
			return and(conds...)
		},
	}
	entries, more, err := s.list(ctx, q, f.ListOptions)
	if err != nil {
		return webhook.Page[webhook.Message]{}, wrapf(err, "list messages")
	}
	items, err := s.fetch(ctx, entries, false)
	if err != nil {
		return webhook.Page[webhook.Message]{}, wrapf(err, "list messages")
	}
	msgs, err := decodeAll(items, decodeMessage)
	if err != nil {
		return webhook.Page[webhook.Message]{}, wrapf(err, "list messages")
	}
	return webhook.Page[webhook.Message]{Items: msgs, More: more}, nil
}

// inAny is the condition that attr is one of the values ("" for none: no
// filter). DynamoDB takes at most 100 operands per IN.
func inAny(e *expr, attr string, values []string) string {
	if len(values) == 0 {
		return ""
	}
	var groups []string
	for start := 0; start < len(values); start += 100 {
		var avs []types.AttributeValue
		for _, v := range values[start:min(start+100, len(values))] {
			avs = append(avs, str(v))
		}
		groups = append(groups, e.in(attr, avs...))
	}
	if len(groups) == 1 {
		return groups[0]
	}
	return strings.Join(groups, " OR ")
}

// statusIn is the condition that the status is one of the statuses (""
// for none: no filter).
func statusIn(e *expr, statuses []webhook.Status) string {
	if len(statuses) == 0 {
		return ""
	}
	avs := make([]types.AttributeValue, len(statuses))
	for i, st := range statuses {
		avs[i] = num(int64(st))
	}
	return e.in("status", avs...)
}

// hasChannel is the condition that the channels list holds the channel
// ("" for no filter).
func hasChannel(e *expr, channel string) string {
	if channel == "" {
		return ""
	}
	return "contains(" + e.n("channels") + ", " + e.v(str(channel)) + ")"
}

// messagesExist reports which of the messages with the keys exist.
func (s *Store) messagesExist(ctx context.Context, keys []key) (map[key]bool, error) {
	items, err := s.getMany(ctx, keys, true)
	if err != nil {
		return nil, err
	}
	exist := make(map[key]bool, len(items))
	for _, it := range items {
		exist[keyOf(it)] = true
	}
	return exist, nil
}
