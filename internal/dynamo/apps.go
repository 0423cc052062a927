package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/hookstep/hookstep/internal/webhook"
)

// appUIDClaim is the claim of an app uid by the app with the id.
func (s *Store) appUIDClaim(uid, id string) claimSpec {
	k := appUIDKey(uid)
	return claimSpec{
		claim: claimItem{PK: k.pk, SK: k.sk, Owner: id},
		current: func(ctx context.Context, holder claimItem) (bool, error) {
			it, found, err := s.getItem(ctx, appKey(holder.Owner), true)
			return found && stringAttr(it, "uid") == uid, err
		},
	}
}

// CreateApp implements webhook.Store. The uid claim is written before the
// app; if the app cannot be written the claim is released.
func (s *Store) CreateApp(ctx context.Context, app *webhook.App) error {
	it, err := encodeApp(app)
	if err != nil {
		return wrapf(err, "create app %s", app.ID)
	}
	claimed := false
	if app.UID != "" {
		res, _, err := s.claim(ctx, s.appUIDClaim(app.UID, app.ID))
		if err != nil {
			return wrapf(err, "create app %s: claim uid", app.ID)
		}
		if res == claimTaken {
			return webhook.Conflict("an app with uid %q already exists", app.UID)
		}
		claimed = res == claimMade
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		if claimed {
			_ = s.release(ctx, appUIDKey(app.UID), app.ID, nil) // else taken over after claimGrace
		}
		return webhook.Conflict("app %s already exists", app.ID)
	}
	return wrapf(err, "create app %s", app.ID)
}

// GetApp implements webhook.Store: the id is tried first, then the uid
// (through its claim item, checked against the app it names).
func (s *Store) GetApp(ctx context.Context, idOrUID string) (*webhook.App, error) {
	it, found, err := s.getItem(ctx, appKey(idOrUID), true)
	if err != nil {
		return nil, wrapf(err, "get app %s", idOrUID)
	}
	if !found {
		it, found, err = s.byClaim(ctx, appUIDKey(idOrUID), func(owner string) key { return appKey(owner) })
		if err != nil {
			return nil, wrapf(err, "get app %s", idOrUID)
		}
		if !found || stringAttr(it, "uid") != idOrUID {
			return nil, webhook.NotFound("app %s not found", idOrUID)
		}
	}
	app, err := decodeApp(it)
	if err != nil {
		return nil, wrapf(err, "get app %s", idOrUID)
	}
	return &app, nil
}

// byClaim reads the item that owns the claim at k; ownerKey maps the
// owner id to its key.
func (s *Store) byClaim(ctx context.Context, k key, ownerKey func(owner string) key) (item, bool, error) {
	c, found, err := s.getItem(ctx, k, true)
	if err != nil || !found {
		return nil, false, err
	}
	return s.getItem(ctx, ownerKey(stringAttr(c, "owner")), true)
}

// UpdateApp implements webhook.Store. It reads the app (ErrStale if its
// updatedAt is not ifUpdatedAt), claims a new uid, replaces the app on
// condition that its updatedAt and uid are still the ones read, and
// releases the old uid.
func (s *Store) UpdateApp(ctx context.Context, app *webhook.App, ifUpdatedAt time.Time) error {
	next := *app
	next.UpdatedAt = webhook.NextUpdatedAt(ifUpdatedAt, app.UpdatedAt)
	it, err := encodeApp(&next)
	if err != nil {
		return wrapf(err, "update app %s", app.ID)
	}
	for range maxTries {
		old, found, err := s.getItem(ctx, appKey(app.ID), true)
		if err != nil {
			return wrapf(err, "update app %s", app.ID)
		}
		if !found {
			return webhook.NotFound("app %s not found", app.ID)
		}
		if numAttr(old, "updatedAt") != millis(ifUpdatedAt) {
			return stalef("update app %s", app.ID)
		}
		oldUID := stringAttr(old, "uid")
		claimed := false
		if app.UID != "" && app.UID != oldUID {
			res, _, err := s.claim(ctx, s.appUIDClaim(app.UID, app.ID))
			if err != nil {
				return wrapf(err, "update app %s: claim uid", app.ID)
			}
			if res == claimTaken {
				return webhook.Conflict("another app has uid %q", app.UID)
			}
			claimed = res == claimMade
		}
		var e expr
		cond := and(e.exists(AttrPK), timeIs(&e, "updatedAt", ifUpdatedAt), uidIs(&e, oldUID))
		_, err = s.putItem(ctx, &dynamodb.PutItemInput{
			Item:                      it,
			ConditionExpression:       &cond,
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		})
		if conditionFailed(err) {
			if claimed {
				_ = s.release(ctx, appUIDKey(app.UID), app.ID, nil)
			}
			continue // deleted or changed meanwhile: look again
		}
		if err != nil {
			return wrapf(err, "update app %s", app.ID)
		}
		if oldUID != "" && oldUID != app.UID {
			_ = s.release(ctx, appUIDKey(oldUID), app.ID, nil) // else taken over after claimGrace
		}
		app.UpdatedAt = next.UpdatedAt
		return nil
	}
	return webhook.Conflict("app %s is being changed concurrently", app.ID)
}

// DeleteApp implements webhook.Store. Children go first and the app item
// last, so that a delete that dies half-way leaves a visible app, which a
// retried delete finishes: for each of the app's messages (IndexList, its
// shards concurrently) the message partition (message, deliveries,
// attempts) and its event-id claim; then the app partition (endpoints and
// their uid claims); then the app and its uid claim. The work is
// proportional to the app's items.
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	if _, found, err := s.getItem(ctx, appKey(id), true); err != nil {
		return wrapf(err, "delete app %s", id)
	} else if !found {
		return webhook.NotFound("app %s not found", id)
	}

	msgs := func(pk string) *dynamodb.QueryInput {
		var e expr
		return &dynamodb.QueryInput{
			IndexName:                 aws.String(IndexList),
			KeyConditionExpression:    aws.String(partitionCond(&e, AttrListPK, pk, AttrListSK, "")),
			ProjectionExpression:      aws.String(e.n(AttrListSK)), // the message id
			ExpressionAttributeNames:  e.nameMap(),
			ExpressionAttributeValues: e.valueMap(),
		}
	}
	err := s.eachShardPage(ctx, shards(appMessages(id), MessageShards), msgs, func(page []item) error {
		for _, m := range page {
			if err := s.deleteMessage(ctx, id, stringAttr(m, AttrListSK)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrapf(err, "delete app %s: messages", id)
	}

	var pe expr
	children := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String(partitionCond(&pe, AttrPK, appKey(id).pk, AttrSK, "")),
		ProjectionExpression:      keysOnly(&pe),
		ExpressionAttributeNames:  pe.nameMap(),
		ExpressionAttributeValues: pe.valueMap(),
		ConsistentRead:            aws.Bool(true),
	}
	var keys []key
	err = s.eachPage(ctx, children, func(page []item) error {
		for _, k := range keysOf(page) {
			if k != appKey(id) {
				keys = append(keys, k)
			}
		}
		return nil
	})
	if err == nil {
		err = s.deleteMany(ctx, keys)
	}
	if err != nil {
		return wrapf(err, "delete app %s: endpoints", id)
	}

	out, err := s.deleteItem(ctx, &dynamodb.DeleteItemInput{Key: appKey(id).item(), ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		return wrapf(err, "delete app %s", id)
	}
	if uid := stringAttr(out.Attributes, "uid"); uid != "" {
		_ = s.release(ctx, appUIDKey(uid), id, nil) // else taken over after claimGrace
	}
	return nil
}

// deleteMessage deletes a message partition (the message, its deliveries
// and attempts) and then the message's event-id claim.
func (s *Store) deleteMessage(ctx context.Context, appID, msgID string) error {
	var e expr
	in := &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String(partitionCond(&e, AttrPK, messagePartition(appID, msgID), AttrSK, "")),
		ProjectionExpression:      aws.String(e.n(AttrPK) + ", " + e.n(AttrSK) + ", " + e.n("eventId")),
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
		ConsistentRead:            aws.Bool(true),
	}
	var eventID string
	var keys []key
	err := s.eachPage(ctx, in, func(page []item) error {
		for _, it := range page {
			if ev := stringAttr(it, "eventId"); ev != "" {
				eventID = ev
			}
			keys = append(keys, keyOf(it))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.deleteMany(ctx, keys); err != nil {
		return err
	}
	if eventID == "" {
		return nil
	}
	// After the message: a claim left without it is taken over later.
	return s.release(ctx, eventIDKey(appID, eventID), msgID, nil)
}

// ListApps implements webhook.Store: IndexList partition "APP", then the
// page's items from the table.
func (s *Store) ListApps(ctx context.Context, opts webhook.ListOptions) (webhook.Page[webhook.App], error) {
	q := listQuery{index: IndexList, pkAttr: AttrListPK, skAttr: AttrListSK, pk: appsPartition}
	entries, more, err := s.list(ctx, q, opts)
	if err != nil {
		return webhook.Page[webhook.App]{}, wrapf(err, "list apps")
	}
	items, err := s.fetch(ctx, entries, false)
	if err != nil {
		return webhook.Page[webhook.App]{}, wrapf(err, "list apps")
	}
	apps, err := decodeAll(items, decodeApp)
	if err != nil {
		return webhook.Page[webhook.App]{}, wrapf(err, "list apps")
	}
	return webhook.Page[webhook.App]{Items: apps, More: more}, nil
}

// CreateEventType implements webhook.Store.
func (s *Store) CreateEventType(ctx context.Context, et *webhook.EventType) error {
	it, err := encodeEventType(et)
	if err != nil {
		return wrapf(err, "create event type %s", et.Name)
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		return webhook.Conflict("event type %s already exists", et.Name)
	}
	return wrapf(err, "create event type %s", et.Name)
}

// GetEventType implements webhook.Store.
func (s *Store) GetEventType(ctx context.Context, name string) (*webhook.EventType, error) {
	it, found, err := s.getItem(ctx, eventTypeKey(name), true)
	if err != nil {
		return nil, wrapf(err, "get event type %s", name)
	}
	if !found {
		return nil, webhook.NotFound("event type %s not found", name)
	}
	et, err := decodeEventType(it)
	if err != nil {
		return nil, wrapf(err, "get event type %s", name)
	}
	return &et, nil
}

// UpdateEventType implements webhook.Store: one conditional put (the
// event type exists with updatedAt ifUpdatedAt), and on a refusal a read
// that tells NotFound from ErrStale.
func (s *Store) UpdateEventType(ctx context.Context, et *webhook.EventType, ifUpdatedAt time.Time) error {
	next := *et
	next.UpdatedAt = webhook.NextUpdatedAt(ifUpdatedAt, et.UpdatedAt)
	it, err := encodeEventType(&next)
	if err != nil {
		return wrapf(err, "update event type %s", et.Name)
	}
	var e expr
	cond := and(e.exists(AttrPK), timeIs(&e, "updatedAt", ifUpdatedAt))
	_, err = s.putItem(ctx, &dynamodb.PutItemInput{
		Item:                      it,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if conditionFailed(err) {
		if _, found, err := s.getItem(ctx, eventTypeKey(et.Name), true); err != nil {
			return wrapf(err, "update event type %s", et.Name)
		} else if !found {
			return webhook.NotFound("event type %s not found", et.Name)
		}
		return stalef("update event type %s", et.Name)
	}
	if err != nil {
		return wrapf(err, "update event type %s", et.Name)
	}
	et.UpdatedAt = next.UpdatedAt
	return nil
}

// DeleteEventType implements webhook.Store; NotFound if absent.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	var e expr
	cond := e.exists(AttrPK)
	_, err := s.deleteItem(ctx, &dynamodb.DeleteItemInput{
		Key:                      eventTypeKey(name).item(),
		ConditionExpression:      &cond,
		ExpressionAttributeNames: e.nameMap(),
	})
	if conditionFailed(err) {
		return webhook.NotFound("event type %s not found", name)
	}
	return wrapf(err, "delete event type %s", name)
}

// ListEventTypes implements webhook.Store: IndexList partition "ET",
// archived ones filtered out unless asked for.
func (s *Store) ListEventTypes(ctx context.Context, f webhook.EventTypeFilter) (webhook.Page[webhook.EventType], error) {
	q := listQuery{index: IndexList, pkAttr: AttrListPK, skAttr: AttrListSK, pk: eventTypesPartition}
	if !f.IncludeArchived {
		q.filter = func(e *expr) string { return e.eq("archived", boolean(false)) }
	}
	entries, more, err := s.list(ctx, q, f.ListOptions)
	if err != nil {
		return webhook.Page[webhook.EventType]{}, wrapf(err, "list event types")
	}
	items, err := s.fetch(ctx, entries, false)
	if err != nil {
		return webhook.Page[webhook.EventType]{}, wrapf(err, "list event types")
	}
	ets, err := decodeAll(items, decodeEventType)
	if err != nil {
		return webhook.Page[webhook.EventType]{}, wrapf(err, "list event types")
	}
	return webhook.Page[webhook.EventType]{Items: ets, More: more}, nil
}
