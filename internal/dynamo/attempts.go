package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hookstep/hookstep/internal/webhook"
)

// RecordAttempt implements webhook.Store without a transaction:
//
//  1. one BatchGetItem reads the delivery and the endpoint (consistent);
//     a missing delivery is NotFound before anything is written;
//  2. the attempt is put (new id only);
//  3. the endpoint's health is written only if it changes: a success
//     removes failingSince (and the IndexSweep sort key), the first
//     failure sets it on condition that it is still unset; an endpoint
//     already in the right state costs no write;
//  4. the delivery is updated last, on condition that it is still in the
//     run, at the attempt count and unfinished as read (the condition
//     FinishDelivery and CancelDeliveries also test), and only when the
//     read says the result applies.
//
// Step 4 is the commit point: the deliver function retries a call that
// failed, and until step 4 nothing has moved the delivery on, so a
// retried attempt is a second, logged, attempt with the same webhook-id.
// A crash after step 2 logs an attempt that did not advance the delivery;
// after step 3 the endpoint's health already counts it. Of two racing
// results exactly one passes step 4; the loser reads the delivery as the
// winner left it.
//
// The happy path writes two items, the attempt and the delivery, each
// with its IndexEndpoint entry: four write units when each is under 1 KB.
// The first attempt of a deferred delivery (deferred.go) writes its item
// instead of updating it (recordFirst).
func (s *Store) RecordAttempt(ctx context.Context, res webhook.AttemptResult) (*webhook.Delivery, error) {
	a := &res.Attempt
	if firstOfDeferred(&res) && res.From.Deferred && res.Endpoint != nil {
		// Read a moment ago as deferred, with its endpoint: no read.
		return s.recordFirst(ctx, &res, !res.Endpoint.FailingSince.IsZero())
	}
	dk := deliveryKey(a.AppID, a.MsgID, a.EndpointID)
	ek := endpointKey(a.AppID, a.EndpointID)
	items, err := s.getMany(ctx, []key{dk, ek}, true)
	if err != nil {
		return nil, wrapf(err, "record attempt %s", a.ID)
	}
	var delivery, endpoint item
	for _, it := range items {
		if keyOf(it) == dk {
			delivery = it
		} else {
			endpoint = it
		}
	}
	if delivery == nil {
		if endpoint != nil && firstOfDeferred(&res) {
			return s.recordFirst(ctx, &res, numAttr(endpoint, "failingSince") != 0)
		}
		return nil, webhook.NotFound("no delivery of message %s to endpoint %s", a.MsgID, a.EndpointID)
	}
	d, err := decodeDelivery(delivery)
	if err != nil {
		return nil, wrapf(err, "record attempt %s", a.ID)
	}

	if err := s.putAttempt(ctx, a); err != nil {
		return nil, err
	}
	if endpoint != nil {
		if err := s.recordHealth(ctx, a, numAttr(endpoint, "failingSince") != 0); err != nil {
			return nil, err
		}
	}
	if d.Run != res.Run || d.Attempts != res.Attempts-1 || d.Status.Final() {
		return &d, nil // moved on: the attempt is logged, the delivery stays
	}

	var e expr
	u := update{e: &e}
	u.set("status", num(int64(res.Status)))
	u.set("attempts", num(int64(res.Attempts)))
	u.setTime("nextAttemptAt", res.NextAttemptAt)
	u.set("updatedAt", num(millis(a.Timestamp)))
	if res.Status.Final() {
		u.del(AttrSweepPK)
	} else {
		u.set(AttrSweepSK, str(sweepSortKey(res.NextAttemptAt, d.MsgID, d.EndpointID)))
	}
	cond := and(e.exists(AttrPK), e.eq("run", num(int64(res.Run))), e.eq("attempts", num(int64(res.Attempts-1))), e.unfinished())
	out, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       dk.item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if conditionFailed(err) {
		// Lost a race: return the delivery as the winner left it.
		it, found, err := s.getItem(ctx, dk, true)
		if err != nil {
			return nil, wrapf(err, "record attempt %s", a.ID)
		}
		if !found {
			return nil, webhook.NotFound("no delivery of message %s to endpoint %s", a.MsgID, a.EndpointID)
		}
		out = &dynamodb.UpdateItemOutput{Attributes: it}
	} else if err != nil {
		return nil, wrapf(err, "record attempt %s: update delivery", a.ID)
	}
	after, err := decodeDelivery(out.Attributes)
	if err != nil {
		return nil, wrapf(err, "record attempt %s", a.ID)
	}
	return &after, nil
}

// firstOfDeferred reports whether res is the first attempt of a deferred
// delivery's first run, made from the delivery as deferredDelivery reads
// it.
func firstOfDeferred(res *webhook.AttemptResult) bool {
	f := res.From
	return f != nil && res.Run == 0 && res.Attempts == 1 && f.Run == 0 && f.Attempts == 0 && f.Dispatched &&
		f.Status == webhook.StatusPending && f.AppID == res.Attempt.AppID && f.MsgID == res.Attempt.MsgID &&
		f.EndpointID == res.Attempt.EndpointID
}

// recordFirst is RecordAttempt's steps 2 to 4 for the first attempt of a
// deferred delivery, whose item does not exist: the delivery is put, as
// the attempt leaves it, on condition that it still does not exist (the
// commit point, as step 4). If it was written meanwhile (a resend, a
// racing attempt), the attempt stays logged and the delivery is returned
// as it is. A happy delivery writes two items and their IndexEndpoint
// entries, and no IndexSweep entry; when the caller says how it read the
// delivery (deferred) and the endpoint (failing or not), it reads nothing:
// the put's condition and the health update's stand for the read.
func (s *Store) recordFirst(ctx context.Context, res *webhook.AttemptResult, failing bool) (*webhook.Delivery, error) {
	a := &res.Attempt
	if err := s.putAttempt(ctx, a); err != nil {
		return nil, err
	}
	if err := s.recordHealth(ctx, a, failing); err != nil {
		return nil, err
	}
	d := *res.From
	d.Deferred = false
	d.Status, d.Attempts, d.NextAttemptAt, d.UpdatedAt = res.Status, res.Attempts, res.NextAttemptAt, a.Timestamp
	it, err := encodeDelivery(&d, a.ExpiresAt)
	if err != nil {
		return nil, wrapf(err, "record attempt %s", a.ID)
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		now, err := s.GetDelivery(ctx, a.AppID, a.MsgID, a.EndpointID)
		return now, wrapf(err, "record attempt %s", a.ID)
	}
	if err != nil {
		return nil, wrapf(err, "record attempt %s: put delivery", a.ID)
	}
	return &d, nil
}

// putAttempt stores an attempt; Conflict if its id exists.
func (s *Store) putAttempt(ctx context.Context, a *webhook.Attempt) error {
	it, err := encodeAttempt(a)
	if err != nil {
		return wrapf(err, "record attempt %s", a.ID)
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		return webhook.Conflict("attempt %s already exists", a.ID)
	}
	return wrapf(err, "record attempt %s", a.ID)
}

// recordHealth applies an attempt to its endpoint's health, given whether
// the endpoint was failing as read: nothing when failingSince is already
// as the attempt wants it. A concurrent health write can make the
// conditional update a no-op, which is what it would have done after it.
func (s *Store) recordHealth(ctx context.Context, a *webhook.Attempt, failing bool) error {
	success := a.Status == webhook.StatusSuccess
	if success != failing {
		return nil // healthy and succeeded, or failing and failed again
	}
	var e expr
	u := update{e: &e}
	cond := e.exists(AttrPK)
	if success {
		u.del("failingSince")
		u.del(AttrSweepSK)
	} else {
		ep := webhook.Endpoint{AppID: a.AppID, ID: a.EndpointID, FailingSince: a.Timestamp}
		u.set("failingSince", num(millis(a.Timestamp)))
		u.set(AttrSweepSK, str(failingSortKey(&ep)))
		cond += " AND " + e.missing("failingSince")
	}
	_, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       endpointKey(a.AppID, a.EndpointID).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if conditionFailed(err) {
		return nil // deleted, or failing already
	}
	return wrapf(err, "record attempt %s: endpoint health", a.ID)
}

// ExpungeAttemptContent implements webhook.Store: one UpdateItem of the
// attempt's response, on condition that it exists and has not expired.
func (s *Store) ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error {
	var e expr
	u := update{e: &e}
	u.set("response", str(webhook.ExpungedResponse))
	cond := and(e.exists(AttrPK), e.notExpired(s.clock.Now()))
	_, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       attemptKey(appID, msgID, attemptID).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if conditionFailed(err) {
		return webhook.NotFound("attempt %s not found", attemptID)
	}
	return wrapf(err, "expunge attempt content %s", attemptID)
}

// GetAttempt implements webhook.Store. An attempt changes at most once,
// when its response is expunged, so a miss of the eventually consistent
// read is read again, consistently; a read within a second or so of the
// expunge may still see the response.
func (s *Store) GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*webhook.Attempt, error) {
	k := attemptKey(appID, msgID, attemptID)
	it, found, err := s.getItem(ctx, k, false)
	if err == nil && !found {
		it, found, err = s.getItem(ctx, k, true)
	}
	if err != nil {
		return nil, wrapf(err, "get attempt %s", attemptID)
	}
	if !found || !visible(numAttr(it, "expMs"), s.clock.Now()) {
		return nil, webhook.NotFound("attempt %s not found", attemptID)
	}
	a, err := decodeAttempt(it)
	if err != nil {
		return nil, wrapf(err, "get attempt %s", attemptID)
	}
	return &a, nil
}

// ListAttempts implements webhook.Store. With MsgID set it lists the
// message partition ("A#" + attempt id; EndpointID, if also set,
// filters); with only EndpointID, the endpoint's IndexEndpoint shards,
// merged, whose entries carry the filtered attributes, then the page's
// attempts from the table.
func (s *Store) ListAttempts(ctx context.Context, f webhook.AttemptFilter) (webhook.Page[webhook.Attempt], error) {
	now := s.clock.Now()
	var q listQuery
	var byEndpoint string
	switch {
	case f.MsgID != "":
		q = listQuery{pkAttr: AttrPK, skAttr: AttrSK, pk: messagePartition(f.AppID, f.MsgID), prefix: "A#", consistent: true}
		byEndpoint = f.EndpointID
	case f.EndpointID != "":
		q = listQuery{index: IndexEndpoint, pkAttr: AttrEndpointPK, skAttr: AttrEndpointSK, pk: endpointPartition(f.AppID, f.EndpointID), shards: EndpointShards, prefix: "A#"}
	default:
		return webhook.Page[webhook.Attempt]{}, fmt.Errorf("dynamo: list attempts: filter names neither a message nor an endpoint")
	}
	q.filter = func(e *expr) string {
		conds := []string{e.notExpired(now), inAny(e, "eventType", f.EventTypes)}
		if byEndpoint != "" {
			conds = append(conds, e.eq("endpointId", str(byEndpoint)))
		}
		if f.Status != nil {
			conds = append(conds, e.eq("status", num(int64(*f.Status))))
		}
		if f.StatusCodeClass != nil {
			class := int64(*f.StatusCodeClass)
			conds = append(conds, e.n("code")+" BETWEEN "+e.v(num(class))+" AND "+e.v(num(class+99)))
		}
		if !f.Before.IsZero() {
			conds = append(conds, e.n("ts")+" < "+e.v(num(f.Before.UnixMilli())))
		}
		if !f.After.IsZero() {
			conds = append(conds, e.n("ts")+" > "+e.v(num(f.After.UnixMilli())))
		}
		return and(conds...)
	}
	items, more, err := s.list(ctx, q, f.ListOptions)
	if err == nil && q.index != "" {
		items, err = s.fetch(ctx, items, false)
	}
	if err != nil {
		return webhook.Page[webhook.Attempt]{}, wrapf(err, "list attempts")
	}
	atts, err := decodeAll(items, decodeAttempt)
	if err != nil {
		return webhook.Page[webhook.Attempt]{}, wrapf(err, "list attempts")
	}
	return webhook.Page[webhook.Attempt]{Items: atts, More: more}, nil
}
