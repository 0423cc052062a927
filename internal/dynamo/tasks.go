package dynamo

import (
	"context"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/hookstep/hookstep/internal/webhook"
)

// A background task is one item of its own, listed in IndexList's "TASK"
// partition by id. Its key does not carry its app: tasks are read by id
// alone (the API checks the app, once tokens are scoped to one). Only the
// key and expMs are projected into IndexList, so the status, kind and app
// filters of ListTasks run on the items read from the table; tasks are few
// (one per recover request), so a filtered page reads few more.

func taskKey(id string) key { return key{"TASK#" + id, "TASK"} }

// tasksPartition is the IndexList partition of every task.
const tasksPartition = "TASK"

type taskItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	ListPK     string `dynamodbav:"listPk"`
	ListSK     string `dynamodbav:"listSk"`
	ID         string `dynamodbav:"id"`
	AppID      string `dynamodbav:"appId"`
	EndpointID string `dynamodbav:"endpointId"`
	Kind       string `dynamodbav:"kind"`
	Status     string `dynamodbav:"status"`
	Data       []byte `dynamodbav:"data,omitempty"`  // JSON, as given
	State      []byte `dynamodbav:"state,omitempty"` // JSON, as given
	CreatedAt  int64  `dynamodbav:"createdAt,omitempty"`
	UpdatedAt  int64  `dynamodbav:"updatedAt,omitempty"`
	ExpMs      int64  `dynamodbav:"expMs,omitempty"`
	ExpiresAt  int64  `dynamodbav:"expiresAt,omitempty"`
}

func encodeTask(t *webhook.Task) (item, error) {
	k := taskKey(t.ID)
	return attributevalue.MarshalMap(taskItem{
		PK: k.pk, SK: k.sk, ListPK: tasksPartition, ListSK: t.ID,
		ID: t.ID, AppID: t.AppID, EndpointID: t.EndpointID, Kind: string(t.Kind), Status: string(t.Status),
		Data: t.Data, State: t.State, CreatedAt: millis(t.CreatedAt), UpdatedAt: millis(t.UpdatedAt),
		ExpMs: millis(t.ExpiresAt), ExpiresAt: ttl(t.ExpiresAt),
	})
}

func decodeTask(it item) (webhook.Task, error) {
	var r taskItem
	if err := attributevalue.UnmarshalMap(it, &r); err != nil {
		return webhook.Task{}, err
	}
	return webhook.Task{
		ID: r.ID, AppID: r.AppID, EndpointID: r.EndpointID, Kind: webhook.TaskKind(r.Kind), Status: webhook.TaskStatus(r.Status),
		Data: r.Data, State: r.State, CreatedAt: fromMillis(r.CreatedAt), UpdatedAt: fromMillis(r.UpdatedAt),
		ExpiresAt: fromMillis(r.ExpMs),
	}, nil
}

// CreateTask implements webhook.Store: one put, on condition that the id
// is new.
func (s *Store) CreateTask(ctx context.Context, t *webhook.Task) error {
	it, err := encodeTask(t)
	if err != nil {
		return wrapf(err, "create task %s", t.ID)
	}
	err = s.putNew(ctx, it)
	if conditionFailed(err) {
		return webhook.Conflict("task %s already exists", t.ID)
	}
	return wrapf(err, "create task %s", t.ID)
}

// GetTask implements webhook.Store, with a consistent read: a task's
// progress changes.
func (s *Store) GetTask(ctx context.Context, id string) (*webhook.Task, error) {
	it, found, err := s.getItem(ctx, taskKey(id), true)
	if err != nil {
		return nil, wrapf(err, "get task %s", id)
	}
	if !found || !visible(numAttr(it, "expMs"), s.clock.Now()) {
		return nil, webhook.NotFound("task %s not found", id)
	}
	t, err := decodeTask(it)
	if err != nil {
		return nil, wrapf(err, "get task %s", id)
	}
	return &t, nil
}

// UpdateTask implements webhook.Store: one UpdateItem of status, data,
// state and updatedAt, on condition that the task exists, has not expired
// and still has the caller's updatedAt; when refused, a read tells
// NotFound from ErrStale.
func (s *Store) UpdateTask(ctx context.Context, t *webhook.Task, ifUpdatedAt time.Time) error {
	now := s.clock.Now()
	updatedAt := webhook.NextUpdatedAt(ifUpdatedAt, t.UpdatedAt)
	var e expr
	u := update{e: &e}
	u.set("status", str(string(t.Status)))
	for attr, v := range map[string][]byte{"data": t.Data, "state": t.State} {
		if len(v) > 0 {
			u.set(attr, bytesValue(v))
		} else {
			u.del(attr)
		}
	}
	u.setTime("updatedAt", updatedAt)
	cond := and(e.exists(AttrPK), e.notExpired(now), timeIs(&e, "updatedAt", ifUpdatedAt))
	_, err := s.updateItem(ctx, &dynamodb.UpdateItemInput{
		Key:                       taskKey(t.ID).item(),
		UpdateExpression:          aws.String(u.String()),
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  e.nameMap(),
		ExpressionAttributeValues: e.valueMap(),
	})
	if conditionFailed(err) {
		it, found, err := s.getItem(ctx, taskKey(t.ID), true)
		if err != nil {
			return wrapf(err, "update task %s", t.ID)
		}
		if !found || !visible(numAttr(it, "expMs"), now) {
			return webhook.NotFound("task %s not found", t.ID)
		}
		return stalef("update task %s", t.ID)
	}
	if err != nil {
		return wrapf(err, "update task %s", t.ID)
	}
	t.UpdatedAt = updatedAt
	return nil
}

// ListTasks implements webhook.Store. It reads IndexList's task partition
// in the direction of travel (expired entries filtered there), then the
// entries' items, consistently, and keeps those that pass the filters,
// until it has one more than the page or the partition ends.
func (s *Store) ListTasks(ctx context.Context, f webhook.TaskFilter) (webhook.Page[webhook.Task], error) {
	now := s.clock.Now()
	limit := pageLimit(f.Limit)
	backward := f.Backward && f.Cursor != ""
	// A backward page is the forward page of the list in the other order,
	// reversed.
	travel := webhook.ListOptions{Limit: limit, Cursor: f.Cursor, Ascending: f.Ascending != backward}
	q := listQuery{
		index: IndexList, pkAttr: AttrListPK, skAttr: AttrListSK, pk: tasksPartition,
		filter: func(e *expr) string { return e.notExpired(now) },
	}
	var tasks []webhook.Task
	for len(tasks) <= limit {
		entries, more, err := s.list(ctx, q, travel)
		if err != nil {
			return webhook.Page[webhook.Task]{}, wrapf(err, "list tasks")
		}
		items, err := s.fetch(ctx, entries, true)
		if err != nil {
			return webhook.Page[webhook.Task]{}, wrapf(err, "list tasks")
		}
		for _, it := range items {
			t, err := decodeTask(it)
			if err != nil {
				return webhook.Page[webhook.Task]{}, wrapf(err, "list tasks")
			}
			if visible(millis(t.ExpiresAt), now) && (f.AppID == "" || t.AppID == f.AppID) &&
				(f.Status == "" || t.Status == f.Status) && (f.Kind == "" || t.Kind == f.Kind) {
				tasks = append(tasks, t)
			}
		}
		if !more || len(entries) == 0 {
			break
		}
		travel.Cursor = stringAttr(entries[len(entries)-1], AttrListSK)
	}
	more := len(tasks) > limit
	if more {
		tasks = tasks[:limit]
	}
	if backward {
		slices.Reverse(tasks)
	}
	return webhook.Page[webhook.Task]{Items: tasks, More: more}, nil
}
