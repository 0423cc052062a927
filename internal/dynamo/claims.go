package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// claimGrace is how long a uniqueness claim whose owner does not exist is
// respected: the time its writer has to write the owner after the claim.
// An older claim without its owner was left by a writer that died between
// the two writes, and is taken over. It is far longer than any API
// request (API Gateway gives up after 29 s).
const claimGrace = 5 * time.Minute

// maxTries bounds the optimistic read-then-conditional-write loops; a
// loop that keeps losing races gives up with Conflict.
const maxTries = 8

// claimResult is how a claim went.
type claimResult int

const (
	claimMade  claimResult = iota // the claim item was written for the owner
	claimOwned                    // the owner already held it; nothing written
	claimTaken                    // another owner holds it
)

// claimSpec describes a uniqueness claim.
type claimSpec struct {
	claim claimItem
	// free, when set, is a condition under which the present holder's
	// claim no longer counts (an event id more than 24 hours old).
	free func(e *expr) string
	// current reports whether holder still holds the key: its owner
	// exists and has the key. A claim that is not current and older than
	// claimGrace is taken over.
	current func(ctx context.Context, holder claimItem) (bool, error)
}

// claim writes a uniqueness item for its owner unless another owner
// holds it. It returns the item it replaced (a free or abandoned claim),
// if any, so that a failed create can put it back.
//
// Without transactions the claim and its owner are two writes: the claim
// goes first, so two writers can never both own a key; a writer that dies
// between them leaves a claim without owner, which blocks the key for
// claimGrace and is then taken over.
func (s *Store) claim(ctx context.Context, spec claimSpec) (claimResult, item, error) {
	now := s.clock.Now()
	spec.claim.ClaimedAt = millis(now)
	it, err := attributevalue.MarshalMap(spec.claim)
	if err != nil {
		return 0, nil, err
	}
	k := key{spec.claim.PK, spec.claim.SK}
	for range maxTries {
		var e expr
		cond := e.missing(AttrPK)
		if spec.free != nil {
			cond += " OR " + spec.free(&e)
		}
		out, err := s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      it,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
			ReturnValues:              types.ReturnValueAllOld,
		})
		if err == nil {
			return claimMade, out.Attributes, nil
		}
		if !conditionFailed(err) {
			return 0, nil, err
		}

		old, found, err := s.getItem(ctx, k, true)
		if err != nil {
			return 0, nil, err
		}
		if !found {
			continue // released meanwhile: try again
		}
		var holder claimItem
		if err := attributevalue.UnmarshalMap(old, &holder); err != nil {
			return 0, nil, err
		}
		if holder.Owner == spec.claim.Owner {
			return claimOwned, nil, nil
		}
		current, err := spec.current(ctx, holder)
		if err != nil {
			return 0, nil, err
		}
		if current || now.Sub(fromMillis(holder.ClaimedAt)) < claimGrace {
			return claimTaken, nil, nil
		}

		// An abandoned claim: take it over, unless someone else just did.
		var te expr
		cond = te.eq("owner", str(holder.Owner)) + " AND " + te.eq("claimedAt", num(holder.ClaimedAt))
		_, err = s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      it,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  te.nameMap(),
			ExpressionAttributeValues: te.valueMap(),
		})
		if err == nil {
			return claimMade, old, nil
		}
		if !conditionFailed(err) {
			return 0, nil, err
		}
	}
	return claimTaken, nil, nil
}

// release gives up owner's claim of k, putting back the item the claim
// replaced (nil: none). It is best effort by design: a claim that stays
// behind without its owner is taken over after claimGrace, so its error
// is only returned for the caller to ignore or report.
func (s *Store) release(ctx context.Context, k key, owner string, replaced item) error {
	var e expr
	cond := e.eq("owner", str(owner))
	var err error
	if replaced != nil {
		_, err = s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      replaced,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
	} else {
		_, err = s.deleteItem(ctx, &dynamodb.DeleteItemInput{
			Key:                       k.item(),
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
	}
	if conditionFailed(err) {
		return nil // not ours (any more)
	}
	return err
}

// uidIs is the condition that an item's uid attribute is uid ("" = none).
func uidIs(e *expr, uid string) string {
	if uid == "" {
		return e.missing("uid")
	}
	return e.eq("uid", str(uid))
}
