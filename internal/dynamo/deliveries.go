package dynamo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hookstep/hookstep/internal/webhook"
)

// GetDelivery implements webhook.Store. A delivery carries its message's
// expiry, so it is hidden with the message without reading it; a
// deferred one is read from its message.
func (s *Store) GetDelivery(ctx context.Context, appID, msgID, endpointID string) (*webhook.Delivery, error) {
	it, found, err := s.getItem(ctx, deliveryKey(appID, msgID, endpointID), true)
	if err != nil {
		return nil, wrapf(err, "get delivery %s/%s", msgID, endpointID)
	}
	if !found {
		d, _, ok, err := s.deferredOf(ctx, appID, msgID, endpointID)
		if err != nil {
			return nil, wrapf(err, "get delivery %s/%s", msgID, endpointID)
		}
		if ok {
			return d, nil
		}
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
// filters), or, for a message that defers deliveries, all of them, paged
// here (listDeferredMessage); with only EndpointID, the endpoint's
// IndexEndpoint shards ("D#" + message id), merged, which project whole
// deliveries.
func (s *Store) ListDeliveries(ctx context.Context, f webhook.DeliveryFilter) (webhook.Page[webhook.Delivery], error) {
	now := s.clock.Now()
	var q listQuery
	var byEndpoint string
	switch {
	case f.MsgID != "":
		it, found, err := s.getItem(ctx, messageKey(f.AppID, f.MsgID), false)
		if err != nil {
			return webhook.Page[webhook.Delivery]{}, wrapf(err, "list deliveries")
		}
		if deferred := messageDefers(it); found && len(deferred) > 0 && visible(numAttr(it, "expMs"), now) {
			msg, err := decodeMessage(it)
			if err != nil {
				return webhook.Page[webhook.Delivery]{}, wrapf(err, "list deliveries")
			}
			page, err := s.listDeferredMessage(ctx, f, &msg, deferred)
			return page, wrapf(err, "list deliveries")
		}
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

		d := webhook.NewRun(msg, endpointID, 1, now)
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
		u.set(AttrSweepPK, str(sweepShard(d.MsgID, d.EndpointID)))
		u.set(AttrSweepSK, str(sweepSortKey(now, d.MsgID, d.EndpointID)))
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
// (a stale run, a final delivery): it returns applied = false. A deferred
// delivery is written first (materialize), then updated.
func (s *Store) updateRun(ctx context.Context, ref webhook.Ref, e *expr, u *update, cond string) (applied bool, err error) {
	k := deliveryKey(ref.AppID, ref.MsgID, ref.EndpointID)
	cond = and(e.exists(AttrPK), cond)
	in := &dynamodb.UpdateItemInput{
		Key:                       k.item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	}
	for materialized := false; ; materialized = true {
		_, err = s.updateItem(ctx, in)
		if !conditionFailed(err) {
			return err == nil, err
		}
		if _, found, err := s.getItem(ctx, k, true); err != nil || found {
			return false, err
		}
		if materialized {
			break
		}
		if ok, err := s.materialize(ctx, ref); err != nil {
			return false, err
		} else if !ok {
			break
		}
	}
	return false, webhook.NotFound("no delivery of message %s to endpoint %s", ref.MsgID, ref.EndpointID)
}

// MarkDispatched implements webhook.Store; NotFound if the delivery does
// not exist. The delivery stays in IndexSweep, where it is until it
// finishes, and its entry is not rewritten (see deliveryItem.SweepPK). It
// sets UpdatedAt to now (the store's clock): the sweeper does not suspect
// a run it, or the api, has just dispatched (its execution may not be
// visible to DescribeExecution yet).
func (s *Store) MarkDispatched(ctx context.Context, ref webhook.Ref) error {
	var e expr
	u := update{e: &e}
	u.set("dispatched", boolean(true))
	u.set("updatedAt", num(millis(s.clock.Now())))
	_, err := s.updateRun(ctx, ref, &e, &u, e.eq("run", num(int64(ref.Run))))
	return wrapf(err, "mark dispatched %s/%s", ref.MsgID, ref.EndpointID)
}

// finish sets a delivery's final status on u: the status, UpdatedAt, and
// out of IndexSweep.
func finish(u *update, status webhook.Status, now time.Time) {
	u.set("status", num(int64(status)))
	u.set("updatedAt", num(millis(now)))
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
	finish(&u, status, now)
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
			finish(&u, webhook.StatusCanceled, now)
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

// ListUndispatched implements webhook.Store: the unfinished deliveries of
// IndexSweep whose entry is older than before (see sweep), those whose run
// is undispatched.
func (s *Store) ListUndispatched(ctx context.Context, before time.Time, limit int) ([]webhook.Delivery, error) {
	ds, err := s.sweep(ctx, before, limit, func(d *webhook.Delivery) bool {
		return !d.Dispatched && d.UpdatedAt.Before(before)
	})
	return ds, wrapf(err, "list undispatched")
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
