package dynamo

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Deferred deliveries. When the api function dispatches a message's runs
// before it stores the message (delivery.Early: an SQS message or a Step
// Functions execution is durable on its own), a delivery it dispatched
// needs no item until something changes it: CreateMessage writes none and
// names the endpoint in the message item's "deferred" set instead. A happy
// delivery then writes its delivery item once, final, at its first
// attempt (RecordAttempt: a conditional put), with no dispatch mark and
// never an IndexSweep entry: two items and their two IndexEndpoint
// entries, four write units, and none at fan-out.
//
// Until its item exists a deferred delivery reads as CreateMessage would
// have written it (deferredDelivery): run 0, pending, dispatched, no
// attempts, due at the message's timestamp. GetDelivery, LoadRun and the
// lists by message read the message for it. Every other write to it
// (FinishDelivery, Redrive, Postpone, MarkDispatched, StartRun) first
// writes that item (materialize) and then applies itself as to any
// delivery. Lists by endpoint and EndpointStats, which read IndexEndpoint,
// see a deferred delivery from its first write on, usually its first
// attempt milliseconds later; CancelDeliveries does not cancel it, and
// its attempt stops it instead, finding the endpoint disabled.
//
// Its owner is its dispatcher: the SQS queue until its first attempt is
// recorded, or its Step Functions execution, whose ends the sweeper hears
// of (an execution that ends without finishing its run is re-driven).
//
// Only a message of at most maxDeferred deliveries defers them, so that
// the set stays small in the message item and a list by message can read
// all of its deliveries at once.
const maxDeferred = 100

// defers reports whether CreateMessage defers d, one of fanOut
// deliveries: dispatched by a dispatcher that owns it from the start
// (not a local claim), in a small enough fan-out.
func defers(d webhook.Delivery, fanOut int) bool {
	return d.Dispatched && !d.Claimed && fanOut <= maxDeferred
}

// messageDefers returns the deferred endpoints of a message item.
func messageDefers(it item) []string {
	var r struct {
		Deferred []string `dynamodbav:"deferred,stringset"`
	}
	_ = attributevalue.UnmarshalMap(it, &r)
	return r.Deferred
}

// deferredDelivery is the delivery of msg to endpointID as CreateMessage
// deferred it, if it did.
func deferredDelivery(msg *webhook.Message, deferred []string, endpointID string) (*webhook.Delivery, bool) {
	if !slices.Contains(deferred, endpointID) {
		return nil, false
	}
	d := webhook.NewDelivery(msg, endpointID)
	d.Dispatched, d.Deferred = true, true
	return &d, true
}

// deferredOf reads ref's message (consistently) and returns the deferred
// delivery of ref's endpoint and the message's expiry, if the message
// defers it and is visible.
func (s *Store) deferredOf(ctx context.Context, appID, msgID, endpointID string) (*webhook.Delivery, time.Time, bool, error) {
	it, found, err := s.getItem(ctx, messageKey(appID, msgID), true)
	if err != nil || !found || !visible(numAttr(it, "expMs"), s.clock.Now()) {
		return nil, time.Time{}, false, err
	}
	msg, err := decodeMessage(it)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	d, ok := deferredDelivery(&msg, messageDefers(it), endpointID)
	return d, msg.ExpiresAt, ok, nil
}

// materialize writes the item of the deferred delivery ref names, so that
// an update can apply to it; it reports whether the item exists now (it
// does if it was written meanwhile). False: no such delivery.
func (s *Store) materialize(ctx context.Context, ref webhook.Ref) (bool, error) {
	d, expires, ok, err := s.deferredOf(ctx, ref.AppID, ref.MsgID, ref.EndpointID)
	if err != nil || !ok {
		return false, err
	}
	it, err := encodeDelivery(d, expires)
	if err != nil {
		return false, err
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		return true, nil // written meanwhile
	}
	return err == nil, err
}

// LoadRun implements webhook.Store: the delivery, the endpoint and
// the message in one strongly consistent BatchGetItem, the delivery read
// from the message when it is deferred.
func (s *Store) LoadRun(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	dk, ek, mk := deliveryKey(ref.AppID, ref.MsgID, ref.EndpointID), endpointKey(ref.AppID, ref.EndpointID), messageKey(ref.AppID, ref.MsgID)
	items, err := s.getMany(ctx, []key{dk, ek, mk}, true)
	if err != nil {
		return nil, nil, nil, wrapf(err, "load run %s/%s", ref.MsgID, ref.EndpointID)
	}
	now := s.clock.Now()
	var dIt, eIt, mIt item
	for _, it := range items {
		switch keyOf(it) {
		case dk:
			dIt = it
		case ek:
			eIt = it
		case mk:
			if visible(numAttr(it, "expMs"), now) {
				mIt = it
			}
		}
	}
	var msg *webhook.Message
	if mIt != nil {
		m, err := decodeMessage(mIt)
		if err != nil {
			return nil, nil, nil, wrapf(err, "load run %s/%s", ref.MsgID, ref.EndpointID)
		}
		msg = &m
	}
	var d *webhook.Delivery
	switch {
	case dIt != nil && visible(numAttr(dIt, "expMs"), now):
		got, err := decodeDelivery(dIt)
		if err != nil {
			return nil, nil, nil, wrapf(err, "load run %s/%s", ref.MsgID, ref.EndpointID)
		}
		d = &got
	case dIt == nil && msg != nil:
		d, _ = deferredDelivery(msg, messageDefers(mIt), ref.EndpointID)
	}
	if d == nil {
		return nil, nil, nil, webhook.NotFound("no delivery of message %s to endpoint %s", ref.MsgID, ref.EndpointID)
	}
	if d.Run != ref.Run || d.Status.Final() {
		return d, nil, nil, nil
	}
	if eIt == nil {
		return d, nil, nil, webhook.NotFound("endpoint %s not found", ref.EndpointID)
	}
	ep, err := decodeEndpoint(eIt)
	if err != nil {
		return nil, nil, nil, wrapf(err, "load run %s/%s", ref.MsgID, ref.EndpointID)
	}
	if ep.Disabled {
		return d, &ep, nil, nil
	}
	if msg == nil {
		return d, &ep, nil, webhook.NotFound("message %s not found", ref.MsgID)
	}
	return d, &ep, msg, nil
}

// listDeferredMessage lists the deliveries of a message that defers some:
// at most maxDeferred (and those StartRun added later), read whole, the
// deferred ones without an item added, filtered and paged here.
func (s *Store) listDeferredMessage(ctx context.Context, f webhook.DeliveryFilter, msg *webhook.Message, deferred []string) (webhook.Page[webhook.Delivery], error) {
	now := s.clock.Now()
	q := listQuery{pkAttr: AttrPK, skAttr: AttrSK, pk: messagePartition(f.AppID, f.MsgID), prefix: "D#", consistent: true,
		filter: func(e *expr) string { return e.notExpired(now) }}
	var all []webhook.Delivery
	opts := webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}
	for {
		items, more, err := s.list(ctx, q, opts)
		if err != nil {
			return webhook.Page[webhook.Delivery]{}, err
		}
		ds, err := decodeAll(items, decodeDelivery)
		if err != nil {
			return webhook.Page[webhook.Delivery]{}, err
		}
		all = append(all, ds...)
		if !more || len(ds) == 0 {
			break
		}
		opts.Cursor = ds[len(ds)-1].EndpointID
	}
	for _, ep := range deferred {
		if !slices.ContainsFunc(all, func(d webhook.Delivery) bool { return d.EndpointID == ep }) {
			d, _ := deferredDelivery(msg, deferred, ep)
			all = append(all, *d)
		}
	}
	all = slices.DeleteFunc(all, func(d webhook.Delivery) bool { return !matches(&d, f) })
	slices.SortFunc(all, func(a, b webhook.Delivery) int { return cmp.Compare(a.EndpointID, b.EndpointID) })
	items, more := webhook.PageOf(all, f.ListOptions, func(d webhook.Delivery) string { return d.EndpointID })
	return webhook.Page[webhook.Delivery]{Items: items, More: more}, nil
}

// matches is ListDeliveries' filter, applied in Go.
func matches(d *webhook.Delivery, f webhook.DeliveryFilter) bool {
	switch {
	case len(f.Statuses) > 0 && !slices.Contains(f.Statuses, d.Status),
		len(f.EventTypes) > 0 && !slices.Contains(f.EventTypes, d.EventType),
		f.Channel != "" && !slices.Contains(d.Channels, f.Channel),
		f.EndpointID != "" && d.EndpointID != f.EndpointID,
		!f.Since.IsZero() && d.CreatedAt.Before(f.Since),
		!f.Until.IsZero() && !d.CreatedAt.Before(f.Until):
		return false
	}
	return true
}
