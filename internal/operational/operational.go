// Package operational sends Svix's operational webhooks: events about the
// platform's own hookstep (an endpoint was created, disabled, is failing,
// a background task finished) to the operational endpoints the platform
// registered under /api/v1/operational-webhook/endpoint.
//
// Operational endpoints are the endpoints of one reserved app, AppID,
// which every surface for customers hides (app lists, the dashboard, the
// portal, app tokens). Each event is a message of that app, published
// through the delivery engine like any other: stored with its deliveries,
// signed with the operational endpoint's secret, retried on the same
// schedule, shown in the attempt log, filtered by the endpoint's
// filterTypes; and, being endpoints of their own, a failing operational
// endpoint waits in its own per-endpoint queue and does not slow the
// customers' deliveries.
//
// Choices where Svix's documentation is silent or where hookstep differs:
//   - message.attempt.failing is sent when a run's fourth attempt fails
//     (Svix: "sent on the fourth failure", the SDK's MessageAttemptFailingEvent),
//     whether or not the schedule has more; a schedule of fewer than four
//     attempts never sends it (message.attempt.exhausted covers it).
//   - message.attempt.exhausted is sent when a run's last scheduled attempt
//     fails (the schedule ran out); a 410 Gone, which ends the run at once,
//     does not send it.
//   - message.attempt.recovered is sent when an attempt succeeds after the
//     run's fourth failure, i.e. after failing was sent for that run.
//   - endpoint.updated is sent for every change of an endpoint's settings
//     (PUT, PATCH, headers); a change that disables or enables the
//     endpoint also sends endpoint.disabled (trigger manual) or
//     endpoint.enabled. endpoint.disabled with trigger automatic comes
//     from the sweeper, with failSince.
//   - Nothing is sent about the reserved app's own endpoints and
//     deliveries, which would loop.
//   - Emission is best effort and never fails the change that caused it:
//     the change is already stored when the event is published; a publish
//     that fails (store unreachable) is logged at error with the event's
//     type and ids and the event is dropped. Once published, an event is
//     as durable as any message (stored with its deliveries; the sweeper
//     re-drives undispatched ones). An outbox written in the same
//     transaction as the change would close the remaining window, at the
//     price of a write on every endpoint change in both stores; it is not
//     done.
//   - While no operational endpoint exists an event costs one read (a
//     page of one of the reserved app's endpoints) and is dropped; the
//     app's uid is read only for an event that is sent.
//   - Operational endpoints are endpoints like others to the sweeper: one
//     that fails for the disable-after period is disabled (silently, as
//     nothing is emitted about them); re-enable it with a PUT.
//
// Where each event is emitted (the component that observes the change):
//
//	endpoint.created/.updated/.deleted/.enabled, endpoint.disabled (manual)
//	    internal/api (PUT, PATCH, DELETE, headers, rotation) and
//	    internal/dashboard (the admin's and the portal's actions)
//	endpoint.disabled (automatic)
//	    internal/sweeper, after its DisableEndpoint wins
//	message.attempt.failing/.exhausted/.recovered
//	    internal/delivery's Attempt, after RecordAttempt applied the
//	    attempt (so a lost race emits nothing): in local mode the queue's
//	    worker, on AWS the deliver function — the step that makes the
//	    schedule's last attempt is the one that sees it exhausted
//	background_task.finished
//	    internal/delivery's RunTask, by the worker whose write ended the
//	    task (local mode: in process; AWS: the sweeper function)
//
// On AWS an event published by the api or the sweeper function is
// dispatched at once (their dispatchers). The deliver function may neither
// start executions (stepfunctions mode) nor invoke the sweeper (the
// reference would make the stack circular), so it stores its events'
// deliveries undispatched and the sweeper dispatches them on its next pass
// after HOOKSTEP_REDRIVE_AFTER (30 s by default): message.attempt.* reach
// the operational endpoints within about a minute, every other event at
// once. A deliver function that dies between recording an attempt and
// publishing its event loses that event (the best-effort window above).
package operational

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// AppID is the id of the reserved app whose endpoints are the operational
// endpoints. It has the form of no generated id (those are KSUIDs), so
// no customer app can have it.
const AppID = "app_operational"

// The event types, as Svix names them.
const (
	EndpointCreated         = "endpoint.created"
	EndpointUpdated         = "endpoint.updated"
	EndpointDeleted         = "endpoint.deleted"
	EndpointDisabled        = "endpoint.disabled"
	EndpointEnabled         = "endpoint.enabled"
	MessageAttemptFailing   = "message.attempt.failing"
	MessageAttemptExhausted = "message.attempt.exhausted"
	MessageAttemptRecovered = "message.attempt.recovered"
	BackgroundTaskFinished  = "background_task.finished"
)

// EventTypes are the types an operational endpoint can filter on.
var EventTypes = []string{
	BackgroundTaskFinished, EndpointCreated, EndpointDeleted, EndpointDisabled,
	EndpointEnabled, EndpointUpdated, MessageAttemptExhausted,
	MessageAttemptFailing, MessageAttemptRecovered,
}

// The triggers of endpoint.disabled.
const (
	TriggerManual    = "manual"
	TriggerAutomatic = "automatic"
)

// FailingAttempt is the number of the failed attempt of a run that sends
// message.attempt.failing.
const FailingAttempt = 4

// Reserved reports whether appID is the reserved app's: customers' surfaces
// hide it, and nothing about it is emitted.
func Reserved(appID string) bool { return appID == AppID }

// Publisher stores and dispatches a message (delivery.Service).
type Publisher interface {
	Publish(ctx context.Context, msg *webhook.Message) error
}

// Emitter publishes operational events. A nil *Emitter emits nothing, so
// components that may run without operational webhooks hold one as is.
type Emitter struct {
	store     webhook.Store
	publisher Publisher
	clock     webhook.Clock
	log       *slog.Logger
	retention time.Duration
}

// Config configures an Emitter.
type Config struct {
	Store     webhook.Store
	Publisher Publisher
	Clock     webhook.Clock // nil: webhook.SystemClock
	Logger    *slog.Logger  // nil discards
	// Retention is how long an event's payload and attempts are kept
	// (webhook.DefaultRetention).
	Retention time.Duration
}

// New returns an Emitter.
func New(cfg Config) *Emitter {
	e := &Emitter{store: cfg.Store, publisher: cfg.Publisher, clock: cfg.Clock, log: cfg.Logger,
		retention: webhook.DefaultRetention(cfg.Retention)}
	if e.clock == nil {
		e.clock = webhook.SystemClock{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e
}

// EnsureApp returns the reserved app, creating it if it does not exist.
func EnsureApp(ctx context.Context, store webhook.Store, now time.Time) (*webhook.App, error) {
	app, err := store.GetApp(ctx, AppID)
	if err == nil || !webhook.IsNotFound(err) {
		return app, err
	}
	app = &webhook.App{ID: AppID, Name: "Operational webhooks", Metadata: map[string]string{},
		CreatedAt: now, UpdatedAt: now}
	if err := store.CreateApp(ctx, app); err != nil {
		if webhook.IsConflict(err) { // created concurrently
			return store.GetApp(ctx, AppID)
		}
		return nil, err
	}
	return app, nil
}

// endpointData is the data of the endpoint.* events.
type endpointData struct {
	AppID       string     `json:"appId"`
	AppUID      *string    `json:"appUid,omitempty"`
	EndpointID  string     `json:"endpointId"`
	EndpointUID *string    `json:"endpointUid,omitempty"`
	FailSince   *time.Time `json:"failSince,omitempty"`
	Trigger     string     `json:"trigger,omitempty"`
}

// attemptData is the data of the message.attempt.* events.
type attemptData struct {
	AppID       string      `json:"appId"`
	AppUID      *string     `json:"appUid,omitempty"`
	EndpointID  string      `json:"endpointId"`
	MsgID       string      `json:"msgId"`
	MsgEventID  *string     `json:"msgEventId,omitempty"`
	LastAttempt attemptInfo `json:"lastAttempt"`
}

// attemptInfo is MessageAttemptFailedData.
type attemptInfo struct {
	ID                 string    `json:"id"`
	ResponseStatusCode int       `json:"responseStatusCode"`
	Timestamp          time.Time `json:"timestamp"`
}

// taskData is BackgroundTaskFinishedEvent2.
type taskData struct {
	Data   json.RawMessage `json:"data"`
	Status string          `json:"status"`
	Task   string          `json:"task"`
	TaskID string          `json:"taskId"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Endpoint emits endpoint.created, .updated, .deleted or .enabled about
// ep. app is ep's app when the caller has it (nil: it is read).
func (e *Emitter) Endpoint(ctx context.Context, eventType string, app *webhook.App, ep *webhook.Endpoint) {
	if e == nil || Reserved(ep.AppID) {
		return
	}
	e.emit(ctx, eventType, func() any {
		return endpointData{
			AppID: ep.AppID, AppUID: e.appUID(ctx, app, ep.AppID),
			EndpointID: ep.ID, EndpointUID: optional(ep.UID),
		}
	})
}

// Disabled emits endpoint.disabled about ep with trigger TriggerManual or
// TriggerAutomatic; failSince, when not zero, is when it started failing.
func (e *Emitter) Disabled(ctx context.Context, app *webhook.App, ep *webhook.Endpoint, trigger string, failSince time.Time) {
	if e == nil || Reserved(ep.AppID) {
		return
	}
	e.emit(ctx, EndpointDisabled, func() any {
		d := endpointData{
			AppID: ep.AppID, AppUID: e.appUID(ctx, app, ep.AppID),
			EndpointID: ep.ID, EndpointUID: optional(ep.UID), Trigger: trigger,
		}
		if !failSince.IsZero() {
			t := failSince.UTC()
			d.FailSince = &t
		}
		return d
	})
}

// Changed emits what a settings change of an endpoint means: always
// endpoint.updated, and endpoint.disabled (manual) or endpoint.enabled
// when the change flipped Disabled.
func (e *Emitter) Changed(ctx context.Context, app *webhook.App, ep *webhook.Endpoint, wasDisabled bool) {
	if e == nil || Reserved(ep.AppID) {
		return
	}
	e.Endpoint(ctx, EndpointUpdated, app, ep)
	switch {
	case ep.Disabled && !wasDisabled:
		e.Disabled(ctx, app, ep, TriggerManual, ep.FailingSince)
	case !ep.Disabled && wasDisabled:
		e.Endpoint(ctx, EndpointEnabled, app, ep)
	}
}

// AttemptType says which event, if any, a recorded attempt sends: number
// is the attempt's 1-based number within its run, ok whether it
// succeeded, exhausted whether it failed and was the schedule's last.
func AttemptType(number int, ok, exhausted bool) string {
	switch {
	case ok && number > FailingAttempt:
		return MessageAttemptRecovered
	case ok:
		return ""
	case exhausted:
		return MessageAttemptExhausted
	case number == FailingAttempt:
		return MessageAttemptFailing
	}
	return ""
}

// Attempt emits what a recorded attempt of msg to ep means (AttemptType),
// if anything. When the fourth attempt is also the last, failing and
// exhausted are both sent.
func (e *Emitter) Attempt(ctx context.Context, msg *webhook.Message, a *webhook.Attempt, number int, exhausted bool) {
	if e == nil || Reserved(a.AppID) {
		return
	}
	ok := a.Status == webhook.StatusSuccess
	types := []string{AttemptType(number, ok, exhausted)}
	if types[0] == MessageAttemptExhausted && number == FailingAttempt {
		types = []string{MessageAttemptFailing, MessageAttemptExhausted}
	}
	if types[0] == "" {
		return
	}
	var d any // read once, for the first event sent
	data := func() any {
		if d == nil {
			d = attemptData{
				AppID: a.AppID, AppUID: e.appUID(ctx, nil, a.AppID),
				EndpointID: a.EndpointID, MsgID: a.MsgID, MsgEventID: optional(msg.EventID),
				LastAttempt: attemptInfo{ID: a.ID, ResponseStatusCode: a.ResponseStatusCode, Timestamp: a.Timestamp.UTC()},
			}
		}
		return d
	}
	for _, t := range types {
		e.emit(ctx, t, data)
	}
}

// TaskFinished emits background_task.finished about a task that ended
// (finished or failed).
func (e *Emitter) TaskFinished(ctx context.Context, t *webhook.Task) {
	if e == nil || Reserved(t.AppID) {
		return
	}
	data := t.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	e.emit(ctx, BackgroundTaskFinished, func() any {
		return taskData{Data: data, Status: string(t.Status), Task: string(t.Kind), TaskID: t.ID}
	})
}

// appUID returns the uid of the app appID (app, when given, is it).
func (e *Emitter) appUID(ctx context.Context, app *webhook.App, appID string) *string {
	if app == nil || app.ID != appID {
		var err error
		if app, err = e.store.GetApp(ctx, appID); err != nil {
			return nil // deleted meanwhile: the event still names its id
		}
	}
	return optional(app.UID)
}

// emit publishes one event, logging what fails (see the package doc).
// data builds the event's data, reading what it needs (the app's uid),
// only once an operational endpoint is known to exist.
func (e *Emitter) emit(ctx context.Context, eventType string, data func() any) {
	err := e.publish(ctx, eventType, data)
	if err != nil {
		e.log.ErrorContext(ctx, "operational webhook not sent", "event_type", eventType, "err", err)
	}
}

func (e *Emitter) publish(ctx context.Context, eventType string, data func() any) error {
	// One read decides: no operational endpoint (none made yet, all
	// deleted, or only the reserved app made by a GET of the routes), no
	// event.
	eps, err := e.store.ListEndpoints(ctx, AppID, webhook.ListOptions{Limit: 1})
	if webhook.IsNotFound(err) || (err == nil && len(eps.Items) == 0) {
		return nil
	}
	if err != nil {
		return err
	}
	payload, err := json.Marshal(struct {
		Data any    `json:"data"`
		Type string `json:"type"`
	}{data(), eventType})
	if err != nil {
		return err
	}
	now := e.clock.Now()
	msg := &webhook.Message{
		ID:        webhook.NewID(webhook.PrefixMessage),
		AppID:     AppID,
		EventType: eventType,
		Payload:   payload,
		Timestamp: now,
		ExpiresAt: now.Add(e.retention),
	}
	return e.publisher.Publish(ctx, msg)
}
