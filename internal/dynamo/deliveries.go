package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hookstep/hookstep/internal/webhook"
)

// GetDelivery implements webhook.Store. A delivery carries its message's
// expiry, so it is hidden with the message without reading it.
func (s *Store) GetDelivery(ctx context.Context, appID, msgID, endpointID string) (*webhook.Delivery, error) {
	it, found, err := s.getItem(ctx, deliveryKey(appID, msgID, endpointID), true)
	if err != nil {
		return nil, wrapf(err, "get delivery %s/%s", msgID, endpointID)
	}
	if !found || !visible(numAttr(it, "expMs"), s.clock.Now()) {
		return nil, webhook.NotFound("no delivery of message %s to endpoint %s", msgID, endpointID)
	}
	d, err := decodeDelivery(it)
	if err != nil {
		return nil, wrapf(err, "get delivery %s/%s", msgID, endpointID)
	}
	return &d, nil
}

// ListDeliveries implements webhook.Store. With MsgID set it lists the
// message partition ("D#" + endpoint id; EndpointID, if also set,
// filters); with only EndpointID, the endpoint's IndexEndpoint shards
// ("D#" + message id), merged, which project whole deliveries.
func (s *Store) ListDeliveries(ctx context.Context, f webhook.DeliveryFilter) (webhook.Page[webhook.Delivery], error) {
	now := s.clock.Now()
	var q listQuery
	var byEndpoint string
	switch {
	case f.MsgID != "":
		q = listQuery{pkAttr: AttrPK, skAttr: AttrSK, pk: messagePartition(f.AppID, f.MsgID), prefix: "D#", consistent: true}
		byEndpoint = f.EndpointID
	case f.EndpointID != "":
		q = listQuery{index: IndexEndpoint, pkAttr: AttrEndpointPK, skAttr: AttrEndpointSK, pk: endpointPartition(f.AppID, f.EndpointID), shards: EndpointShards, prefix: "D#"}
	default:
		return webhook.Page[webhook.Delivery]{}, fmt.Errorf("dynamo: list deliveries: filter names neither a message nor an endpoint")
	}
	q.filter = func(e *expr) string {
		conds := []string{e.notExpired(now), statusIn(e, f.Statuses), inAny(e, "eventType", f.EventTypes), hasChannel(e, f.Channel)}
		if byEndpoint != "" {
			conds = append(conds, e.eq("endpointId", str(byEndpoint)))
		}
		if !f.Since.IsZero() {
			conds = append(conds, e.n("createdAt")+" >= "+e.v(num(f.Since.UnixMilli())))
		}
		if !f.Until.IsZero() {
			conds = append(conds, e.n("createdAt")+" < "+e.v(num(f.Until.UnixMilli())))
		}
		return and(conds...)
	}
	items, more, err := s.list(ctx, q, f.ListOptions)
	if err != nil {
		return webhook.Page[webhook.Delivery]{}, wrapf(err, "list deliveries")
	}
	ds, err := decodeAll(items, decodeDelivery)
	if err != nil {
		return webhook.Page[webhook.Delivery]{}, wrapf(err, "list deliveries")
	}
	return webhook.Page[webhook.Delivery]{Items: ds, More: more}, nil
}

// StartRun implements webhook.Store; NotFound if the endpoint does not
// exist (the message is the caller's, just read). It reads the delivery
// and writes the new run on condition that the run is still the one read,
// so two concurrent starts make two consecutive runs.
func (s *Store) StartRun(ctx context.Context, msg *webhook.Message, endpointID string, now time.Time) (*webhook.Delivery, error) {
	dk := deliveryKey(msg.AppID, msg.ID, endpointID)
	ek := endpointKey(msg.AppID, endpointID)
	for range maxTries {
		items, err := s.getMany(ctx, []key{dk, ek}, true)
		if err != nil {
			return nil, wrapf(err, "start run %s/%s", msg.ID, endpointID)
		}
		var old item
		epFound := false
		for _, it := range items {
			if keyOf(it) == dk {
				old = it
			} else {
				epFound = true
			}
		}
		if !epFound {
			return nil, webhook.NotFound("endpoint %s not found", endpointID)
		}

		d := webhook.Delivery{
			AppID:         msg.AppID,
			MsgID:         msg.ID,
			EndpointID:    endpointID,
			EventType:     msg.EventType,
			Channels:      msg.Channels,
			Status:        webhook.StatusPending,
			Run:           1,
			Trigger:       webhook.TriggerManual,
			NextAttemptAt: now,
			CreatedAt:     msg.Timestamp,
			UpdatedAt:     now,
		}
		var e expr
		if old == nil {
			it, err := encodeDelivery(&d, msg.ExpiresAt)
			if err != nil {
				return nil, wrapf(err, "start run %s/%s", msg.ID, endpointID)
			}
			cond := e.missing(AttrPK)
			_, err = s.putItem(ctx, &dynamodb.PutItemInput{Item: it, ConditionExpression: &cond, ExpressionAttributeNames: e.nameMap()})
			if conditionFailed(err) {
				continue // created meanwhile
			}
			if err != nil {
				return nil, wrapf(err, "start run %s/%s", msg.ID, endpointID)
			}
			return &d, nil
		}

		oldRun := numAttr(old, "run")
		d.Run = int(oldRun) + 1
		u := update{e: &e}
		u.set("status", num(int64(d.Status)))
		u.set("run", num(int64(d.Run)))
		u.set("trigger", num(int64(d.Trigger)))
		u.set("attempts", num(0))
		u.set("nextAttemptAt", num(millis(now)))
		u.set("dispatched", boolean(false))
		u.set("updatedAt", num(millis(now)))
		u.set(AttrSweepPK, str(undispatchedShard(d.MsgID, d.EndpointID)))
		u.set(AttrSweepSK, str(undispatchedSortKey(now, d.MsgID, d.EndpointID)))
		cond := e.eq("run", num(oldRun))
		out, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
			Key:                       dk.item(),
			UpdateExpression:          aws.String(u.String()),
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
			ReturnValues:              types.ReturnValueAllNew,
		})
		if conditionFailed(err) {
			continue // another run started meanwhile
		}
		if err != nil {
			return nil, wrapf(err, "start run %s/%s", msg.ID, endpointID)
		}
		// EventType, Channels and CreatedAt are the stored ones, copied
		// from the message at fan-out.
		got, err := decodeDelivery(out.Attributes)
		if err != nil {
			return nil, wrapf(err, "start run %s/%s", msg.ID, endpointID)
		}
		return &got, nil
	}
	return nil, webhook.Conflict("delivery of message %s to endpoint %s is being restarted concurrently", msg.ID, endpointID)
}

// updateRun applies an update to the delivery ref names on condition cond
// (built on e, and ANDed with the delivery's existence). A refused update
// is NotFound if the delivery does not exist and is otherwise left alone
// (a stale run, a final delivery): it returns applied = false.
func (s *Store) updateRun(ctx context.Context, ref webhook.Ref, e *expr, u *update, cond string) (applied bool, err error) {
	k := deliveryKey(ref.AppID, ref.MsgID, ref.EndpointID)
	cond = and(e.exists(AttrPK), cond)
	_, err = s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       k.item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if !conditionFailed(err) {
		return err == nil, err
	}
	if _, found, err := s.getItem(ctx, k, true); err != nil {
		return false, err
	} else if !found {
		return false, webhook.NotFound("no delivery of message %s to endpoint %s", ref.MsgID, ref.EndpointID)
	}
	return false, nil
}

// MarkDispatched implements webhook.Store; NotFound if the delivery does
// not exist. It takes the delivery out of IndexSweep.
func (s *Store) MarkDispatched(ctx context.Context, ref webhook.Ref) error {
	var e expr
	u := update{e: &e}
	u.set("dispatched", boolean(true))
	u.del(AttrSweepPK)
	_, err := s.updateRun(ctx, ref, &e, &u, e.eq("run", num(int64(ref.Run))))
	return wrapf(err, "mark dispatched %s/%s", ref.MsgID, ref.EndpointID)
}

// finish sets a delivery's final status on u: the status, UpdatedAt, the
// sweep sort key that follows it, and out of IndexSweep.
func finish(u *update, ref webhook.Ref, status webhook.Status, now time.Time) {
	u.set("status", num(int64(status)))
	u.set("updatedAt", num(millis(now)))
	u.set(AttrSweepSK, str(undispatchedSortKey(now, ref.MsgID, ref.EndpointID)))
	u.del(AttrSweepPK)
}

// FinishDelivery implements webhook.Store; NotFound if the delivery does
// not exist. The condition (same run, unfinished) is the one RecordAttempt
// and CancelDeliveries also test, so of racing writers exactly one moves
// an unfinished run on.
func (s *Store) FinishDelivery(ctx context.Context, ref webhook.Ref, status webhook.Status, now time.Time) error {
	if !status.Final() {
		return fmt.Errorf("dynamo: finish delivery %s/%s: status %v is not final", ref.MsgID, ref.EndpointID, status)
	}
	var e expr
	u := update{e: &e}
	finish(&u, ref, status, now)
	_, err := s.updateRun(ctx, ref, &e, &u, and(e.eq("run", num(int64(ref.Run))), e.unfinished()))
	return wrapf(err, "finish delivery %s/%s", ref.MsgID, ref.EndpointID)
}

// CancelDeliveries implements webhook.Store: the endpoint's unfinished
// deliveries from its IndexEndpoint shards (concurrently), each canceled
// by a conditional update (still unfinished). The index lags writes
// slightly, so a delivery created in the same instant may be missed; its
// run then stops at its first attempt, which finds the endpoint disabled.
func (s *Store) CancelDeliveries(ctx context.Context, appID, endpointID string, now time.Time) (int, error) {
	query := func(pk string) *dynamodb.QueryInput {
		var e expr
		filter := e.unfinished()
		return &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexEndpoint),
			KeyConditionExpression:    aws.String(partitionCond(&e, AttrEndpointPK, pk, AttrEndpointSK, "D#")),
			FilterExpression:          &filter,
			ProjectionExpression:      aws.String(e.n("msgId")),
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		}
	}
	var n atomic.Int64
	pks := shards(endpointPartition(appID, endpointID), EndpointShards)
	err := s.eachShardPage(ctx, pks, query, func(page []item) error {
		for _, it := range page {
			ref := webhook.Ref{AppID: appID, MsgID: stringAttr(it, "msgId"), EndpointID: endpointID}
			var ue expr
			u := update{e: &ue}
			finish(&u, ref, webhook.StatusCanceled, now)
			applied, err := s.updateRun(ctx, ref, &ue, &u, ue.unfinished())
			if webhook.IsNotFound(err) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			if applied {
				n.Add(1)
			}
		}
		return nil
	})
	return int(n.Load()), wrapf(err, "cancel deliveries of endpoint %s", endpointID)
}

// ListUndispatched implements webhook.Store. Each IndexSweep shard is read
// up to the time in updatedAt order, the shards are merged, and the
// deliveries are read from the table (consistently) and checked again,
// since the index lags. Deliveries whose message was never written (a
// CreateMessage that died before its last step) are not returned; those
// older than claimGrace are deleted.
func (s *Store) ListUndispatched(ctx context.Context, before time.Time, limit int) ([]webhook.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	cut := sortTime(before) // sort keys below it have updatedAt < before
	var entries []item
	for shard := range UndispatchedShards {
		var e expr
		cond := e.eq(AttrSweepPK, str(fmt.Sprintf("U#%d", shard))) + " AND " + e.n(AttrSweepSK) + " < " + e.v(str(cut))
		in := &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexSweep),
			KeyConditionExpression:    &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
			Limit:                     aws.Int32(int32(min(limit, 1000))),
		}
		for got := 0; got < limit; {
			out, err := s.query(ctx, in)
			if err != nil {
				return nil, wrapf(err, "list undispatched")
			}
			entries = append(entries, out.Items...)
			got += len(out.Items)
			if out.LastEvaluatedKey == nil {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	slices.SortFunc(entries, func(a, b item) int {
		return strings.Compare(stringAttr(a, AttrSweepSK), stringAttr(b, AttrSweepSK))
	})
	entries = entries[:min(len(entries), limit)]

	items, err := s.fetch(ctx, entries, true)
	if err != nil {
		return nil, wrapf(err, "list undispatched")
	}
	var ds []webhook.Delivery
	msgKeys := make([]key, 0, len(items))
	for _, it := range items {
		d, err := decodeDelivery(it)
		if err != nil {
			return nil, wrapf(err, "list undispatched")
		}
		if d.Dispatched || d.Status.Final() || !d.UpdatedAt.Before(before) {
			continue // moved on since the index entry was written
		}
		ds = append(ds, d)
		msgKeys = append(msgKeys, messageKey(d.AppID, d.MsgID))
	}
	exist, err := s.messagesExist(ctx, msgKeys)
	if err != nil {
		return nil, wrapf(err, "list undispatched")
	}
	now := s.clock.Now()
	kept := ds[:0]
	var orphans []key
	for _, d := range ds {
		switch {
		case exist[messageKey(d.AppID, d.MsgID)]:
			kept = append(kept, d)
		case now.Sub(d.UpdatedAt) > claimGrace:
			orphans = append(orphans, deliveryKey(d.AppID, d.MsgID, d.EndpointID))
		}
	}
	if err := s.deleteMany(ctx, orphans); err != nil {
		return nil, wrapf(err, "list undispatched: delete deliveries without message")
	}
	return kept, nil
}

// EndpointStats implements webhook.Store: the endpoint's deliveries from
// its IndexEndpoint shards (concurrently), reading only status, counted
// here. Statuses without deliveries are absent from the map.
func (s *Store) EndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (map[webhook.Status]int, error) {
	now := s.clock.Now()
	query := func(pk string) *dynamodb.QueryInput {
		var e expr
		conds := []string{e.notExpired(now)}
		if !since.IsZero() {
			conds = append(conds, e.n("createdAt")+" >= "+e.v(num(since.UnixMilli())))
		}
		if !until.IsZero() {
			conds = append(conds, e.n("createdAt")+" < "+e.v(num(until.UnixMilli())))
		}
		filter := and(conds...)
		return &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexEndpoint),
			KeyConditionExpression:    aws.String(partitionCond(&e, AttrEndpointPK, pk, AttrEndpointSK, "D#")),
			FilterExpression:          &filter,
			ProjectionExpression:      aws.String(e.n("status")),
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		}
	}
	var mu sync.Mutex
	stats := make(map[webhook.Status]int)
	pks := shards(endpointPartition(appID, endpointID), EndpointShards)
	err := s.eachShardPage(ctx, pks, query, func(page []item) error {
		mu.Lock()
		defer mu.Unlock()
		for _, it := range page {
			stats[webhook.Status(numAttr(it, "status"))]++
		}
		return nil
	})
	if err != nil {
		return nil, wrapf(err, "endpoint stats %s", endpointID)
	}
	return stats, nil
}
