package webhook

import (
	"encoding/json"
	"time"
)

// TaskStatus is the state of a background task, as Svix's
// BackgroundTaskStatus.
type TaskStatus string

// The task statuses. A task is Running from its creation until its worker
// ends it Finished (the work is done) or Failed (it cannot be done; its
// Data says why).
const (
	TaskRunning  TaskStatus = "running"
	TaskFinished TaskStatus = "finished"
	TaskFailed   TaskStatus = "failed"
)

// Valid reports whether s is one of the task statuses.
func (s TaskStatus) Valid() bool {
	return s == TaskRunning || s == TaskFinished || s == TaskFailed
}

// TaskKind is what a background task does, as Svix's BackgroundTaskType.
type TaskKind string

// The kinds of task hookstep runs: TaskEndpointRecover re-sends an
// endpoint's failed messages of a window (Svix's "endpoint.recover");
// TaskAppStats counts each app's deliveries of a window (Svix's
// "application.stats", AggregateAppStats); TaskEventTypeAggregate lists
// the event types each app's endpoints subscribe to (Svix's
// "event-type.aggregate", AggregateEventTypes).
const (
	TaskEndpointRecover    TaskKind = "endpoint.recover"
	TaskAppStats           TaskKind = "application.stats"
	TaskEventTypeAggregate TaskKind = "event-type.aggregate"
)

// taskKinds are every BackgroundTaskType Svix defines (SDK v1.99.1). The
// API accepts each as a list filter, so that an SDK's filter never fails,
// although only TaskEndpointRecover, TaskAppStats and
// TaskEventTypeAggregate tasks exist.
var taskKinds = []TaskKind{
	"endpoint.replay", TaskEndpointRecover, TaskAppStats, "message.broadcast",
	"sdk.generate", TaskEventTypeAggregate, "application.purge_content", "endpoint.bulk-replay",
}

// Valid reports whether k is a BackgroundTaskType of Svix.
func (k TaskKind) Valid() bool {
	for _, known := range taskKinds {
		if k == known {
			return true
		}
	}
	return false
}

// TaskRetention is how long a task is kept: as long as a message is at
// most (Svix lists the background tasks of the last 90 days).
const TaskRetention = MaxRetentionDays * 24 * time.Hour

// Task is a background task: work a request started that runs off the
// request path, which clients poll by id (Svix's BackgroundTaskOut).
//
// AppID and EndpointID name what it concerns, so that the tasks of one
// app can be told apart (an app-scoped token will see only its app's).
// Data is a JSON object that clients see as the task's data (its progress
// and outcome); State is the worker's own JSON, never shown: the task's
// parameters and a cursor, from which a worker that died is resumed.
// Both are opaque to stores, which keep them byte for byte.
type Task struct {
	ID         string
	AppID      string
	EndpointID string
	Kind       TaskKind
	Status     TaskStatus
	Data       json.RawMessage
	State      json.RawMessage
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time
}

// TaskFilter selects tasks, ordered by id (creation order). Zero fields
// do not filter.
type TaskFilter struct {
	ListOptions
	AppID  string
	Status TaskStatus
	Kind   TaskKind
}
