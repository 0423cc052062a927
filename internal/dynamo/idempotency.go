package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/hookstep/hookstep/internal/webhook"
)

// BeginIdempotent implements webhook.Store. The claim is one conditional
// put (no record, an expired one, or an unfinished one that names no
// resource and was claimed before staleBefore — or before claimedAt
// existed), so of concurrent requests with the key exactly one claims
// it; the others read the record that won.
func (s *Store) BeginIdempotent(ctx context.Context, key, resource string, expiresAt, staleBefore time.Time) (*webhook.IdempotencyRecord, error) {
	k := idempotencyKey(key)
	for range maxTries {
		now := s.clock.Now()
		it, err := attributevalue.MarshalMap(idempotencyItem{
			PK: k.pk, SK: k.sk, ClaimedAt: millis(now), ExpMs: millis(expiresAt), ExpiresAt: ttl(expiresAt), Resource: resource,
		})
		if err != nil {
			return nil, wrapf(err, "begin idempotent %q", key)
		}
		var e expr
		cond := e.missing(AttrPK) + " OR " + e.n("expMs") + " <= " + e.v(num(now.UnixMilli())) +
			" OR (" + e.eq("done", boolean(false)) + " AND " + e.missing("resource") + " AND (" + e.missing("claimedAt") + " OR " +
			e.n("claimedAt") + " < " + e.v(num(staleBefore.UnixMilli())) + "))"
		_, err = s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      it,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
		if err == nil {
			return nil, nil
		}
		if !conditionFailed(err) {
			return nil, wrapf(err, "begin idempotent %q", key)
		}
		old, found, err := s.getItem(ctx, k, true)
		if err != nil {
			return nil, wrapf(err, "begin idempotent %q", key)
		}
		if !found || !visible(numAttr(old, "expMs"), now) {
			continue // released or expired meanwhile: claim again
		}
		var r idempotencyItem
		if err := attributevalue.UnmarshalMap(old, &r); err != nil {
			return nil, wrapf(err, "begin idempotent %q", key)
		}
		claimedAt := fromMillis(r.ClaimedAt)
		if !r.Done && r.Resource == "" && (claimedAt.IsZero() || claimedAt.Before(staleBefore)) {
			continue // abandoned meanwhile: claim again
		}
		return &webhook.IdempotencyRecord{
			Key: key, Done: r.Done, StatusCode: r.Code, Body: r.Body, ClaimedAt: claimedAt, ExpiresAt: fromMillis(r.ExpMs), Resource: r.Resource,
		}, nil
	}
	return nil, webhook.Conflict("idempotency key %q is contended", key)
}

// FinishIdempotent implements webhook.Store; NotFound if the key has no
// record.
func (s *Store) FinishIdempotent(ctx context.Context, key string, statusCode int, body []byte) error {
	var e expr
	u := update{e: &e}
	u.set("done", boolean(true))
	u.set("code", num(int64(statusCode)))
	if len(body) > 0 {
		u.set("body", bytesValue(body))
	} else {
		u.del("body")
	}
	cond := e.exists(AttrPK)
	_, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       idempotencyKey(key).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if conditionFailed(err) {
		return webhook.NotFound("idempotency key %q not found", key)
	}
	return wrapf(err, "finish idempotent %q", key)
}

// ReleaseIdempotent implements webhook.Store.
func (s *Store) ReleaseIdempotent(ctx context.Context, key string) error {
	_, err := s.deleteItem(ctx, &dynamodb.DeleteItemInput{Key: idempotencyKey(key).item()})
	return wrapf(err, "release idempotent %q", key)
}
