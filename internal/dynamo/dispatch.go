package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Dispatch bookkeeping: what the sweeper needs to find runs that nobody
// owns (see the ownership invariant in doc.go).

// markConcurrency bounds the updates MarkDispatchedBatch has in flight.
const markConcurrency = 8

// MarkDispatchedBatch implements webhook.Store: one conditional update per
// run, a few at a time (DynamoDB has no batched conditional update).
func (s *Store) MarkDispatchedBatch(ctx context.Context, refs []webhook.Ref) error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, markConcurrency)
	var wg sync.WaitGroup
	for _, ref := range refs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := s.MarkDispatched(ctx, ref); err != nil && !webhook.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Redrive implements webhook.Store: one conditional update (the run, and
// unfinished), which puts the delivery back in IndexSweep as undispatched
// at now.
func (s *Store) Redrive(ctx context.Context, ref webhook.Ref, now time.Time) (*webhook.Delivery, error) {
	var e expr
	u := update{e: &e}
	u.set("run", num(int64(ref.Run+1)))
	u.set("dispatched", boolean(false))
	u.set("nextAttemptAt", num(millis(now)))
	u.set("updatedAt", num(millis(now)))
	u.set(AttrSweepPK, str(sweepShard(ref.MsgID, ref.EndpointID)))
	u.set(AttrSweepSK, str(sweepSortKey(now, ref.MsgID, ref.EndpointID)))
	cond := and(e.exists(AttrPK), e.eq("run", num(int64(ref.Run))), e.unfinished())
	in := &dynamodb.UpdateItemInput{
		Key:                       deliveryKey(ref.AppID, ref.MsgID, ref.EndpointID).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
		ReturnValues:              types.ReturnValueAllNew,
	}
	out, err := s.updateItem(ctx, in)
	for materialized := false; conditionFailed(err); materialized = true {
		if _, found, err := s.getItem(ctx, deliveryKey(ref.AppID, ref.MsgID, ref.EndpointID), true); err != nil {
			return nil, wrapf(err, "redrive %s/%s", ref.MsgID, ref.EndpointID)
		} else if found {
			return nil, webhook.Conflict("delivery of message %s to endpoint %s is no longer at run %d, or is final", ref.MsgID, ref.EndpointID, ref.Run)
		}
		if ok, err := s.materialize(ctx, ref); err != nil {
			return nil, wrapf(err, "redrive %s/%s", ref.MsgID, ref.EndpointID)
		} else if !ok || materialized {
			return nil, webhook.NotFound("no delivery of message %s to endpoint %s", ref.MsgID, ref.EndpointID)
		}
		out, err = s.updateItem(ctx, in) // the deferred delivery, now written
	}
	if err != nil {
		return nil, wrapf(err, "redrive %s/%s", ref.MsgID, ref.EndpointID)
	}
	d, err := decodeDelivery(out.Attributes)
	if err != nil {
		return nil, wrapf(err, "redrive %s/%s", ref.MsgID, ref.EndpointID)
	}
	return &d, nil
}

// Postpone moves the time at which the sweeper looks at an unfinished run
// again to until: it checked that the run's execution is still going
// (it is slow, throttled, or reconciling), and need not ask again before
// then. A stale run or a final delivery is left alone.
func (s *Store) Postpone(ctx context.Context, ref webhook.Ref, until time.Time) error {
	var e expr
	u := update{e: &e}
	u.set(AttrSweepSK, str(sweepSortKey(until, ref.MsgID, ref.EndpointID)))
	_, err := s.updateRun(ctx, ref, &e, &u, and(e.eq("run", num(int64(ref.Run))), e.unfinished()))
	return wrapf(err, "postpone %s/%s", ref.MsgID, ref.EndpointID)
}

// ListOverdue returns up to limit unfinished deliveries, dispatched or
// not, that should have moved on before the given time and did not, the
// longest overdue first, across all apps: an undispatched run since then,
// or a dispatched one whose next attempt was due then and not recorded
// (or whose Postpone ran out). These are the runs the sweeper must check:
// every unfinished delivery is in IndexSweep, and its entry moves on with
// every dispatch-relevant write.
func (s *Store) ListOverdue(ctx context.Context, before time.Time, limit int) ([]webhook.Delivery, error) {
	ds, err := s.sweep(ctx, before, limit, func(*webhook.Delivery) bool { return true })
	return ds, wrapf(err, "list overdue")
}

// sweepScan bounds the IndexSweep entries one sweep reads, as a multiple
// of its limit: entries the table no longer backs (the index lags) or
// that keep turns down are read past, but not without end.
const sweepScan = 10

// sweep reads the delivery entries of IndexSweep whose sort key is before
// the given time, oldest first across the shards, reads their deliveries
// from the table (consistently: the index lags) and returns up to limit of
// those still unfinished and still before it that keep accepts.
// Deliveries whose message was never written (a CreateMessage that died
// before its last step) are not returned; those older than claimGrace are
// deleted.
func (s *Store) sweep(ctx context.Context, before time.Time, limit int, keep func(*webhook.Delivery) bool) ([]webhook.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	cut := sortTime(before) // sort keys below it are before it
	budget := limit * sweepScan
	var entries []item
	for shard := range SweepShards {
		var e expr
		cond := e.eq(AttrSweepPK, str(fmt.Sprintf("U#%d", shard))) + " AND " + e.n(AttrSweepSK) + " < " + e.v(str(cut))
		in := &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexSweep),
			KeyConditionExpression:    &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
			Limit:                     aws.Int32(int32(min(budget, 1000))),
		}
		for got := 0; got < budget; {
			out, err := s.query(ctx, in)
			if err != nil {
				return nil, err
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
	entries = entries[:min(len(entries), budget)]

	var kept []webhook.Delivery
	now := s.clock.Now()
	for start := 0; start < len(entries) && len(kept) < limit; start += maxBatchGet {
		items, err := s.fetch(ctx, entries[start:min(start+maxBatchGet, len(entries))], true)
		if err != nil {
			return nil, err
		}
		var ds []webhook.Delivery
		var msgKeys []key
		for _, it := range items {
			if stringAttr(it, AttrSweepPK) == "" || stringAttr(it, AttrSweepSK) >= cut {
				continue // finished, or moved on, since the entry was read
			}
			d, err := decodeDelivery(it)
			if err != nil {
				return nil, err
			}
			if d.Status.Final() || !keep(&d) {
				continue
			}
			ds = append(ds, d)
			msgKeys = append(msgKeys, messageKey(d.AppID, d.MsgID))
		}
		exist, err := s.messagesExist(ctx, msgKeys)
		if err != nil {
			return nil, err
		}
		var orphans []key
		for _, d := range ds {
			switch {
			case exist[messageKey(d.AppID, d.MsgID)]:
				if len(kept) < limit {
					kept = append(kept, d)
				}
			case now.Sub(d.UpdatedAt) > claimGrace:
				orphans = append(orphans, deliveryKey(d.AppID, d.MsgID, d.EndpointID))
			}
		}
		if err := s.deleteMany(ctx, orphans); err != nil {
			return nil, fmt.Errorf("delete deliveries without message: %w", err)
		}
	}
	return kept, nil
}
