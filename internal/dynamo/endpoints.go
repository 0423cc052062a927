package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/hookstep/hookstep/internal/webhook"
)

// endpointUIDClaim is the claim of an endpoint uid within its app.
func (s *Store) endpointUIDClaim(appID, uid, id string) claimSpec {
	k := endpointUIDKey(appID, uid)
	return claimSpec{
		claim: claimItem{PK: k.pk, SK: k.sk, Owner: id},
		current: func(ctx context.Context, holder claimItem) (bool, error) {
			it, found, err := s.getItem(ctx, endpointKey(appID, holder.Owner), true)
			return found && stringAttr(it, "uid") == uid, err
		},
	}
}

// failingIs is the condition that an endpoint's failingSince is t (the
// zero time: none).
func failingIs(e *expr, t time.Time) string { return timeIs(e, "failingSince", t) }

// timeIs is the condition that a time attribute holds t to the
// millisecond (the zero time: the attribute is absent).
func timeIs(e *expr, attr string, t time.Time) string {
	if t.IsZero() {
		return e.missing(attr)
	}
	return e.eq(attr, num(millis(t)))
}

// sameMillis reports whether two times are equal at the millisecond
// precision the table keeps (zero = absent = 0).
func sameMillis(a, b time.Time) bool { return millis(a) == millis(b) }

// CreateEndpoint implements webhook.Store; NotFound if the app does not
// exist. The uid claim is written before the endpoint.
func (s *Store) CreateEndpoint(ctx context.Context, ep *webhook.Endpoint) error {
	it, err := encodeEndpoint(ep)
	if err != nil {
		return wrapf(err, "create endpoint %s", ep.ID)
	}
	if _, found, err := s.getItem(ctx, appKey(ep.AppID), true); err != nil {
		return wrapf(err, "create endpoint %s", ep.ID)
	} else if !found {
		return webhook.NotFound("app %s not found", ep.AppID)
	}
	claimed := false
	if ep.UID != "" {
		res, _, err := s.claim(ctx, s.endpointUIDClaim(ep.AppID, ep.UID, ep.ID))
		if err != nil {
			return wrapf(err, "create endpoint %s: claim uid", ep.ID)
		}
		if res == claimTaken {
			return webhook.Conflict("an endpoint with uid %q already exists", ep.UID)
		}
		claimed = res == claimMade
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		if claimed {
			_ = s.release(ctx, endpointUIDKey(ep.AppID, ep.UID), ep.ID, nil) // else taken over after claimGrace
		}
		return webhook.Conflict("endpoint %s already exists", ep.ID)
	}
	return wrapf(err, "create endpoint %s", ep.ID)
}

// GetEndpoint implements webhook.Store: the id is tried first, then the
// uid.
func (s *Store) GetEndpoint(ctx context.Context, appID, idOrUID string) (*webhook.Endpoint, error) {
	it, found, err := s.getItem(ctx, endpointKey(appID, idOrUID), true)
	if err != nil {
		return nil, wrapf(err, "get endpoint %s", idOrUID)
	}
	if !found {
		it, found, err = s.byClaim(ctx, endpointUIDKey(appID, idOrUID), func(owner string) key { return endpointKey(appID, owner) })
		if err != nil {
			return nil, wrapf(err, "get endpoint %s", idOrUID)
		}
		if !found || stringAttr(it, "uid") != idOrUID {
			return nil, webhook.NotFound("endpoint %s not found", idOrUID)
		}
	}
	ep, err := decodeEndpoint(it)
	if err != nil {
		return nil, wrapf(err, "get endpoint %s", idOrUID)
	}
	return &ep, nil
}

// UpdateEndpoint implements webhook.Store. It reads the endpoint (ErrStale
// if its updatedAt is not ifUpdatedAt), claims a new uid, and replaces the
// endpoint on condition that updatedAt and failingSince are still as read:
// FailingSince is carried over (or cleared by a re-enable), so a health
// change by a concurrent RecordAttempt, which leaves updatedAt alone,
// makes it read again rather than be lost; any other change moved
// updatedAt on and makes it stale.
func (s *Store) UpdateEndpoint(ctx context.Context, ep *webhook.Endpoint, ifUpdatedAt time.Time) error {
	for range maxTries {
		it, found, err := s.getItem(ctx, endpointKey(ep.AppID, ep.ID), true)
		if err != nil {
			return wrapf(err, "update endpoint %s", ep.ID)
		}
		if !found {
			return webhook.NotFound("endpoint %s not found", ep.ID)
		}
		old, err := decodeEndpoint(it)
		if err != nil {
			return wrapf(err, "update endpoint %s", ep.ID)
		}
		if !sameMillis(old.UpdatedAt, ifUpdatedAt) {
			return stalef("update endpoint %s", ep.ID)
		}
		claimed := false
		if ep.UID != "" && ep.UID != old.UID {
			res, _, err := s.claim(ctx, s.endpointUIDClaim(ep.AppID, ep.UID, ep.ID))
			if err != nil {
				return wrapf(err, "update endpoint %s: claim uid", ep.ID)
			}
			if res == claimTaken {
				return webhook.Conflict("another endpoint of the app has uid %q", ep.UID)
			}
			claimed = res == claimMade
		}

		next := *ep
		next.UpdatedAt = webhook.NextUpdatedAt(old.UpdatedAt, ep.UpdatedAt)
		next.FailingSince = old.FailingSince
		if old.Disabled && !ep.Disabled {
			next.FailingSince = time.Time{} // re-enabled: the failure clock restarts
		}
		item, err := encodeEndpoint(&next)
		if err != nil {
			return wrapf(err, "update endpoint %s", ep.ID)
		}
		var e expr
		cond := and(e.exists(AttrPK), timeIs(&e, "updatedAt", old.UpdatedAt), failingIs(&e, old.FailingSince))
		_, err = s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      item,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
		if conditionFailed(err) {
			if claimed {
				_ = s.release(ctx, endpointUIDKey(ep.AppID, ep.UID), ep.ID, nil)
			}
			continue // changed meanwhile: read again
		}
		if err != nil {
			return wrapf(err, "update endpoint %s", ep.ID)
		}
		if old.UID != "" && old.UID != ep.UID {
			_ = s.release(ctx, endpointUIDKey(ep.AppID, old.UID), ep.ID, nil) // else taken over after claimGrace
		}
		ep.UpdatedAt, ep.FailingSince = next.UpdatedAt, next.FailingSince
		return nil
	}
	return webhook.Conflict("endpoint %s is being changed concurrently", ep.ID)
}

// DeleteEndpoint implements webhook.Store; NotFound if absent. Its
// deliveries (IndexEndpoint, its shards concurrently) go first and the
// endpoint last, so a delete that dies half-way leaves a visible endpoint
// that a retried delete finishes. Its attempts stay in their messages'
// logs.
func (s *Store) DeleteEndpoint(ctx context.Context, appID, id string) error {
	it, found, err := s.getItem(ctx, endpointKey(appID, id), true)
	if err != nil {
		return wrapf(err, "delete endpoint %s", id)
	}
	if !found {
		return webhook.NotFound("endpoint %s not found", id)
	}
	query := func(pk string) *dynamodb.QueryInput {
		var e expr
		return &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexEndpoint),
			KeyConditionExpression:    aws.String(partitionCond(&e, AttrEndpointPK, pk, AttrEndpointSK, "D#")),
			ProjectionExpression:      keysOnly(&e),
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		}
	}
	pks := shards(endpointPartition(appID, id), EndpointShards)
	err = s.eachShardPage(ctx, pks, query, func(page []item) error { return s.deleteMany(ctx, keysOf(page)) })
	if err != nil {
		return wrapf(err, "delete endpoint %s: deliveries", id)
	}
	if _, err := s.deleteItem(ctx, &dynamodb.DeleteItemInput{Key: endpointKey(appID, id).item()}); err != nil {
		return wrapf(err, "delete endpoint %s", id)
	}
	if uid := stringAttr(it, "uid"); uid != "" {
		_ = s.release(ctx, endpointUIDKey(appID, uid), id, nil) // else taken over after claimGrace
	}
	return nil
}

// ListEndpoints implements webhook.Store: the app's partition, sort keys
// "EP#" + id.
func (s *Store) ListEndpoints(ctx context.Context, appID string, opts webhook.ListOptions) (webhook.Page[webhook.Endpoint], error) {
	q := listQuery{pkAttr: AttrPK, skAttr: AttrSK, pk: appKey(appID).pk, prefix: "EP#", consistent: true}
	items, more, err := s.list(ctx, q, opts)
	if err != nil {
		return webhook.Page[webhook.Endpoint]{}, wrapf(err, "list endpoints")
	}
	eps, err := decodeAll(items, decodeEndpoint)
	if err != nil {
		return webhook.Page[webhook.Endpoint]{}, wrapf(err, "list endpoints")
	}
	return webhook.Page[webhook.Endpoint]{Items: eps, More: more}, nil
}

// ListFailingEndpoints implements webhook.Store, longest failing first:
// IndexSweep partition "FAILING" up to the time, then the endpoints
// themselves (consistent reads), checked again because the index lags.
func (s *Store) ListFailingEndpoints(ctx context.Context, failingSince time.Time, limit int) ([]webhook.Endpoint, error) {
	if limit <= 0 {
		return nil, nil
	}
	var e expr
	// failingSince <= the time: sort keys before the next millisecond.
	cond := e.eq(AttrSweepPK, str(failingPartition)) + " AND " + e.n(AttrSweepSK) + " < " +
		e.v(str(sortTime(time.UnixMilli(failingSince.UnixMilli()+1))))
	in := &dynamodb.QueryInput{
		IndexName:                 aws.String(IndexSweep),
		KeyConditionExpression:    &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
		Limit:                     aws.Int32(int32(min(limit, 1000))),
	}
	var eps []webhook.Endpoint
	for {
		out, err := s.query(ctx, in)
		if err != nil {
			return nil, wrapf(err, "list failing endpoints")
		}
		items, err := s.fetch(ctx, out.Items, true)
		if err != nil {
			return nil, wrapf(err, "list failing endpoints")
		}
		for _, it := range items {
			ep, err := decodeEndpoint(it)
			if err != nil {
				return nil, wrapf(err, "list failing endpoints")
			}
			if !ep.Disabled && !ep.FailingSince.IsZero() && !ep.FailingSince.After(failingSince) {
				eps = append(eps, ep)
			}
		}
		if len(eps) >= limit || out.LastEvaluatedKey == nil {
			return eps[:min(len(eps), limit)], nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// DisableEndpoint implements webhook.Store: it reads the endpoint, then
// makes one conditional update (still enabled, failingSince and updatedAt
// as read) that also takes the endpoint out of IndexSweep. updatedAt
// moves on from the value read (webhook.NextUpdatedAt), which DynamoDB
// cannot compute in an update, hence the read; an update that slipped in
// between makes it read again.
func (s *Store) DisableEndpoint(ctx context.Context, appID, id string, failingSince, now time.Time) error {
	for range maxTries {
		it, found, err := s.getItem(ctx, endpointKey(appID, id), true)
		switch {
		case err != nil:
			return wrapf(err, "disable endpoint %s", id)
		case !found:
			return webhook.NotFound("endpoint %s not found", id)
		case boolAttr(it, "disabled"):
			return webhook.Conflict("endpoint %s is already disabled", id)
		case numAttr(it, "failingSince") != millis(failingSince):
			return webhook.Conflict("endpoint %s is no longer failing since %s", id, failingSince.Format(time.RFC3339Nano))
		}
		prev := fromMillis(numAttr(it, "updatedAt"))
		var e expr
		u := update{e: &e}
		u.set("disabled", boolean(true))
		u.set("disabledAt", num(millis(now)))
		u.set("disabledWhy", str(webhook.DisabledFailing))
		u.set("updatedAt", num(millis(webhook.NextUpdatedAt(prev, now))))
		u.del(AttrSweepPK)
		cond := and(e.exists(AttrPK), e.eq("disabled", boolean(false)), failingIs(&e, failingSince), timeIs(&e, "updatedAt", prev))
		_, err = s.updateItem(ctx, &dynamodb.UpdateItemInput{
			Key:                       endpointKey(appID, id).item(),
			UpdateExpression:          aws.String(u.String()),
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
		if !conditionFailed(err) {
			return wrapf(err, "disable endpoint %s", id)
		}
	}
	return webhook.Conflict("endpoint %s is being changed concurrently", id)
}
