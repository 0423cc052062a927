package dynamo

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookstep/hookstep/internal/throttle"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Throttle is the AWS delivery.Limiter: every throttled endpoint's token
// log (internal/throttle) in one item of the table, THROTTLE#<app>#<ep> /
// T, shared by every deliver function. A reservation is one conditional
// write of the item: its version must be the one the log was computed
// from. The writer keeps what it wrote (per process), so the next
// reservation of a busy endpoint from the same process is computed
// without a read; when another process wrote since, the write is refused
// with the item as it is (ReturnValuesOnConditionCheckFailure), and the
// reservation is computed again from it. So an attempt of a throttled
// endpoint costs one conditional write (a write unit: the log holds at
// most the endpoint's rate of grants, in runs of equal times, a few
// hundred bytes), plus a refused one each time another caller got there
// first; an unthrottled endpoint costs nothing (delivery asks no Limiter).
//
// One item takes about 1,000 writes a second (a partition's limit), so a
// throttleRate above a few hundred is bounded by the item rather than the
// rate (refused writes count too); the api bounds throttleRate by what
// the SDKs send (65,535). Items expire a day after their last grant
// (TTLAttribute): an idle endpoint has every token anyway.
type Throttle struct {
	s *Store

	mu   sync.Mutex
	seen map[key]bucket // what this process last wrote or read, by item
}

// bucket is one endpoint's log as stored, with the version it was
// written with (0: no item).
type bucket struct {
	Log     throttle.Log `dynamodbav:"log"`
	Version int64        `dynamodbav:"ver"`
}

// NewThrottle returns a Throttle on the store's table.
func NewThrottle(s *Store) *Throttle {
	return &Throttle{s: s, seen: map[key]bucket{}}
}

// throttleKey is the key of an endpoint's token log.
func throttleKey(appID, endpointID string) key {
	return key{pk: "THROTTLE#" + appID + "#" + endpointID, sk: "T"}
}

// bucketTTL is how long an endpoint's log is kept after its last grant.
const bucketTTL = 24 * time.Hour

// Reserve implements delivery.Limiter.
func (t *Throttle) Reserve(ctx context.Context, ref webhook.Ref, rate int, now time.Time) (time.Time, error) {
	k := throttleKey(ref.AppID, ref.EndpointID)
	t.mu.Lock()
	b := t.seen[k]
	t.mu.Unlock()
	for try := range maxThrottleTries { // each refusal means another caller got a token
		if try > 0 {
			waited := time.Now()
			if err := backOff(ctx, try); err != nil {
				return time.Time{}, wrapf(err, "throttle %s", ref.EndpointID)
			}
			// A grant is for when the request can go, not for when it
			// was first asked for: a token granted at the old now would
			// come back early by the back-offs, and the limit would let
			// more than rate through in that second.
			now = now.Add(time.Since(waited))
		}
		next, at := b.Log.Reserve(now, rate)
		var e expr
		var cond string
		if b.Version > 0 {
			cond = e.eq("ver", num(b.Version))
		} else {
			cond = e.missing(AttrPK)
		}
		logAV, err := attributevalue.Marshal(next)
		if err != nil {
			return time.Time{}, wrapf(err, "throttle %s", ref.EndpointID)
		}
		last := time.UnixMilli(next[len(next)-1].At)
		u := update{e: &e}
		u.set("log", logAV)
		u.set("ver", num(b.Version+1))
		u.set(TTLAttribute, num(ttl(last.Add(bucketTTL))))
		_, err = t.s.updateItem(ctx, &dynamodb.UpdateItemInput{
			Key:                                 k.item(),
			UpdateExpression:                    optional(u.String()),
			ConditionExpression:                 &cond,
			ExpressionAttributeNames:            e.nameMap(),
			ExpressionAttributeValues:           e.valueMap(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			t.remember(k, bucket{Log: next, Version: b.Version + 1})
			return at, nil
		}
		if !conditionFailed(err) {
			return time.Time{}, wrapf(err, "throttle %s", ref.EndpointID)
		}
		if b, err = t.current(ctx, k, err); err != nil {
			return time.Time{}, wrapf(err, "throttle %s", ref.EndpointID)
		}
	}
	return time.Time{}, wrapf(errContended, "throttle %s", ref.EndpointID)
}

// maxThrottleTries bounds the writes of one reservation. Callers that
// lose back off for a random while, up to maxBackOff, so that of many
// callers at once (a burst of executions woken by the same second) each
// soon gets its turn; one that still loses fails its attempt, which is
// then reconciled (no POST was made).
const (
	maxThrottleTries = 40
	maxBackOff       = 64 * time.Millisecond
)

// backOff waits a random time up to 2^try ms, at most maxBackOff.
func backOff(ctx context.Context, try int) error {
	return sleep(ctx, rand.N(min(maxBackOff, time.Millisecond<<min(try, 10))))
}

// errContended: every try to write the log lost to another caller.
var errContended = errors.New("token log contended; try again")

// current returns the log as a refused write found it: from the refusal
// when it carries the item, else read.
func (t *Throttle) current(ctx context.Context, k key, refused error) (bucket, error) {
	var ccf *types.ConditionalCheckFailedException
	it := item(nil)
	if errors.As(refused, &ccf) && ccf.Item != nil {
		it = ccf.Item
	} else {
		var err error
		if it, _, err = t.s.getItem(ctx, k, true); err != nil {
			return bucket{}, err
		}
	}
	var b bucket
	if it != nil {
		if err := attributevalue.UnmarshalMap(it, &b); err != nil {
			return bucket{}, err
		}
	}
	t.remember(k, b)
	return b, nil
}

func (t *Throttle) remember(k key, b bucket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.seen[k]; !ok || old.Version <= b.Version {
		t.seen[k] = b
	}
	if len(t.seen) > maxSeen {
		clear(t.seen) // a read each for the endpoints still busy
	}
}

// maxSeen bounds the logs a process remembers.
const maxSeen = 10_000
