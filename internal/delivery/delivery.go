// Package delivery is hookstep's delivery engine, shared by local mode and
// AWS: it fans a message out to the subscribed endpoints and hands each
// delivery to the Dispatcher (Publish), starts manual runs (Resend, and
// Recover as a background task: RunTask), and makes one attempt of a
// delivery end to end (Attempt): load, sign, send, record, decide.
//
// Timing is not decided here. The retry schedule only says how long to wait
// after the n-th failure; the local queue or the Step Functions execution
// does the waiting and calls Attempt again.
//
// Choices where the spec is silent:
//   - Status: Pending until the run's first attempt, Sending while failed
//     attempts have retries left, then Success or Fail; Canceled when the
//     endpoint is disabled or deleted (or the message expired) mid-run.
//   - Resend and recover start a new run with the whole retry schedule; the
//     run's first attempt is triggered "manual", its retries "scheduled".
//   - A 410 Gone answer ends the run at once as Fail (the receiver says the
//     resource is gone for good); it does not disable the endpoint.
//   - Each attempt is logged at debug level only: the attempt log (API,
//     dashboard) records every one, and a line per attempt at info would
//     flood the logs, and cost CPU, in a retry storm. A run that exhausts
//     its schedule is logged at warn, a canceled one at info.
//   - An endpoint's throttleRate N allows at most N requests in any
//     second, in bursts of at most N; an attempt held back waits for its
//     token and is not an attempt (throttle.go, with what each mode does).
package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/sender"
	"github.com/hookstep/hookstep/internal/webhook"
)

// Outcome tells the caller of Attempt what to do next. The Step Functions
// Choice state switches on its string value.
type Outcome string

// The outcomes.
const (
	// Delivered: the endpoint answered 2xx; the run is over.
	Delivered Outcome = "delivered"
	// Retry: the attempt failed; wait Result.Wait and attempt again, unless
	// the schedule is exhausted (Result.Final), in which case the run
	// has ended as Fail.
	Retry Outcome = "retry"
	// Stop: nothing more to do for this run (endpoint disabled or deleted,
	// message expired, run superseded or already finished, 410 Gone).
	Stop Outcome = "stop"
	// Again: an attempt did not end with a result (the function failed or
	// timed out) and none was recorded: make it again (Reconcile).
	Again Outcome = "again"
	// HandOff: the run's attempt has gone unrecorded for ReconcileFor:
	// hand the run back to the sweeper for a fresh dispatch (Reconcile).
	HandOff Outcome = "handoff"
	// Throttled: the endpoint's throttleRate holds the attempt back; it
	// was not made and is not counted. The run has a token reserved at
	// Result.ResumeAt: wait until then and attempt it with that
	// reservation (AttemptReserved). See throttle.go.
	Throttled Outcome = "throttled"
)

// DefaultReconcileFor is the default of Service.ReconcileFor.
const DefaultReconcileFor = 15 * time.Minute

// Result is what one call of Attempt did.
type Result struct {
	Outcome    Outcome       `json:"outcome"`
	Attempt    int           `json:"attempt,omitempty"`    // 1-based number of the attempt within its run
	StatusCode int           `json:"statusCode,omitempty"` // 0 when no response arrived
	Wait       time.Duration `json:"-"`
	// NextAttemptAt is when the next attempt is due, on a Retry that is
	// not Final.
	NextAttemptAt time.Time `json:"-"`
	// ResumeAt is NextAttemptAt on a Retry that Reconcile found recorded:
	// the state machine waits until then (not a whole step of the
	// schedule again).
	ResumeAt *time.Time `json:"resumeAt,omitempty"`
	WaitSec  int64      `json:"waitSeconds,omitempty"`
	Final    bool       `json:"final"` // no further attempt of this run will be made
}

// Sender makes the signed HTTP request of one attempt (internal/sender).
type Sender interface {
	Send(ctx context.Context, req sender.Request) sender.Result
}

// Service runs the delivery engine over a Store and a Dispatcher.
type Service struct {
	Store      webhook.Store
	Dispatcher webhook.Dispatcher
	Sender     Sender
	Schedule   webhook.Schedule
	Clock      webhook.Clock
	Logger     *slog.Logger
	// ReconcileFor is how long the state machine may keep making a due
	// attempt again after failures that left no record (Reconcile
	// answers Again) before it hands the run back to the sweeper
	// (HandOff). Each round waits first, so the rounds are few. Default
	// DefaultReconcileFor.
	ReconcileFor time.Duration
	// AwaitCommit, when set, is how long after a message's id was made
	// an attempt that finds neither the message nor its delivery takes
	// them for not stored yet rather than gone: an Early dispatcher
	// hands runs over before their message is stored. The attempt
	// re-reads for a moment, then fails with ErrNotCommitted, which its
	// caller retries; after AwaitCommit the run stops. Zero: a missing
	// delivery is gone (local mode, which stores before it dispatches).
	AwaitCommit time.Duration
	// Go runs a task in the background (recover). Nil runs it inline,
	// which is what a Lambda function wants: it has no life after the
	// response.
	Go func(task func(ctx context.Context))
	// Retries, when set, starts what makes a run's retries once its
	// first attempt, made by AttemptQueued, failed and scheduled one
	// (AWS queue mode: the run's Step Functions execution). It must be
	// idempotent: a redelivered run calls it again.
	Retries func(ctx context.Context, ref webhook.Ref) error
	// HandTask, when set, hands a stored background task to a worker
	// elsewhere (AWS: the sweeper function, by its id) instead of running
	// it through Go; a task it fails to hand over stays running, and the
	// sweeper resumes it (ResumeTasks).
	HandTask func(ctx context.Context, taskID string) error
	// Throttle, when set, enforces endpoints' throttleRate (throttle.go);
	// nil sends to every endpoint at once.
	Throttle Limiter
	// TaskProgress, when set, is called by RunTask after each write of a
	// task's progress or end, with the task as stored; it runs on the
	// task's goroutine, which waits for it. Tests pause a task with it.
	TaskProgress func(ctx context.Context, t webhook.Task)
	// Operational, when set, hears of recorded attempts and finished
	// tasks, and sends the operational webhooks they call for
	// (message.attempt.*, background_task.finished).
	Operational *operational.Emitter

	fanout fanout // the apps' endpoints, over a ChangeCounter (fanout.go)
}

// Publish stores msg with one Pending delivery per subscribed endpoint and
// dispatches each. A dispatch failure does not fail Publish: the message is
// stored and the delivery stays undispatched until the sweeper re-drives it.
func (s *Service) Publish(ctx context.Context, msg *webhook.Message) error {
	return s.publish(ctx, msg, nil)
}

// PublishKeyed is Publish that claims an idempotency key for msg in the
// write that stores it; the Store must be a webhook.KeyedMessageCreator.
// A *webhook.KeyTakenError means the key was held and nothing was stored.
func (s *Service) PublishKeyed(ctx context.Context, msg *webhook.Message, claim webhook.KeyClaim) error {
	return s.publish(ctx, msg, &claim)
}

// create stores msg and its deliveries, claiming claim's key with them
// when there is one.
func (s *Service) create(ctx context.Context, msg *webhook.Message, deliveries []webhook.Delivery, claim *webhook.KeyClaim) error {
	if claim == nil {
		return s.Store.CreateMessage(ctx, msg, deliveries)
	}
	kc, ok := s.Store.(webhook.KeyedMessageCreator)
	if !ok {
		return fmt.Errorf("delivery: %T cannot claim an idempotency key with a message", s.Store)
	}
	return kc.CreateMessageKeyed(ctx, msg, deliveries, *claim)
}

func (s *Service) publish(ctx context.Context, msg *webhook.Message, claim *webhook.KeyClaim) error {
	var deliveries []webhook.Delivery
	var endpoints []*webhook.Endpoint // of each delivery
	readAt := s.Clock.Now()
	all, changes, err := s.endpointsOf(ctx, msg.AppID)
	if err != nil {
		return err
	}
	for _, ep := range all {
		if webhook.Subscribed(ep, msg) {
			deliveries = append(deliveries, webhook.NewDelivery(msg, ep.ID))
			endpoints = append(endpoints, ep)
		}
	}
	if e, ok := s.Dispatcher.(Early); ok && len(deliveries) > 0 {
		return s.publishEarly(ctx, e, msg, deliveries, claim)
	}
	var take func([]webhook.Loaded)
	if h, ok := s.Dispatcher.(Holder); ok && len(deliveries) > 0 {
		if until, t, ok := h.Hold(len(deliveries), s.Clock.Now()); ok {
			take = t
			for i := range deliveries {
				deliveries[i].NextAttemptAt, deliveries[i].Dispatched, deliveries[i].Claimed = until, true, true
			}
		}
	}
	_, polling := s.Dispatcher.(Polling)
	if take == nil && polling {
		for i := range deliveries {
			deliveries[i].Dispatched = true // stored due is dispatched
		}
	}
	if err := s.create(ctx, msg, deliveries, claim); err != nil {
		if take != nil {
			take(nil)
		}
		return err
	}
	if take != nil {
		held := make([]webhook.Loaded, len(deliveries))
		for i := range deliveries {
			held[i] = webhook.Loaded{Delivery: &deliveries[i], Endpoint: endpoints[i], Message: msg, At: readAt, Changes: changes}
		}
		take(held)
		return nil
	}
	refs := make([]webhook.Ref, len(deliveries))
	for i := range deliveries {
		refs[i] = deliveries[i].Ref()
	}
	if polling {
		if len(refs) > 0 {
			_, _ = s.Dispatcher.Dispatch(ctx, refs) // wakes it; nothing to record
		}
		return nil
	}
	s.dispatchAll(ctx, refs)
	return nil
}

// Polling is a Dispatcher that finds due deliveries in the store by
// itself (local mode's queue): a delivery stored due is as good as
// dispatched. Publish stores a new message's deliveries dispatched and
// calls Dispatch only to wake it, with no write to record the dispatch.
type Polling interface {
	webhook.Dispatcher
	// Polls says the Dispatcher is one; it does nothing.
	Polls()
}

// Early is a Dispatcher whose dispatch is durable on its own (an SQS
// message, a Step Functions execution: AWS). Publish hands a new
// message's runs to First before it stores the message, and stores those
// First took as dispatched — which lets the store defer writing them
// until their first attempt (webhook.Store.CreateMessage) — then hands
// the rest to Then. A run First took whose message is then not stored
// (the store failed, the event id was taken: the client gets an error)
// finds nothing to deliver; its attempts wait out AwaitCommit and stop.
// A client that retries with its idempotency key stores the same message
// id, which the runs taken before then deliver.
type Early interface {
	webhook.Dispatcher
	// First dispatches what it can of a new message's runs, within its
	// own bounds, and returns those it took.
	First(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error)
	// Then dispatches, once the message is stored, the runs First did
	// not take, and returns those it took.
	Then(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error)
}

// publishEarly is Publish with an Early dispatcher.
func (s *Service) publishEarly(ctx context.Context, e Early, msg *webhook.Message, deliveries []webhook.Delivery, claim *webhook.KeyClaim) error {
	refs := make([]webhook.Ref, len(deliveries))
	for i := range deliveries {
		refs[i] = deliveries[i].Ref()
	}
	taken, err := e.First(ctx, refs)
	if err != nil {
		s.Logger.Warn("dispatch before storing failed in part; the rest is dispatched after",
			"msg_id", msg.ID, "runs", len(refs), "dispatched", len(taken), "err", err)
	}
	took := make(map[webhook.Ref]bool, len(taken))
	for _, r := range taken {
		took[r] = true
	}
	var rest []webhook.Ref
	for i := range deliveries {
		if took[refs[i]] {
			deliveries[i].Dispatched = true
		} else {
			rest = append(rest, refs[i])
		}
	}
	if err := s.create(ctx, msg, deliveries, claim); err != nil {
		return err
	}
	if len(rest) == 0 {
		return nil
	}
	later, err := e.Then(ctx, rest)
	if len(later) > 0 {
		if merr := s.Store.MarkDispatchedBatch(ctx, later); merr != nil {
			err = errors.Join(err, fmt.Errorf("record dispatched: %w", merr))
		}
	}
	if err != nil {
		s.Logger.Warn("dispatch failed; the sweeper will re-drive what was not taken",
			"msg_id", msg.ID, "runs", len(rest), "err", err)
	}
	return nil
}

// Holder is a Dispatcher that makes the first attempts of new messages
// itself, from memory: the local queue, and no other. Publish asks it to
// hold a message's deliveries before storing them; when it has room, they
// are stored claimed until the time it returns (their NextAttemptAt), so
// that no worker claims them from the store, and handed over with take
// once stored, each with the endpoint and message Publish read
// (AttemptNext uses them while fresh); they are stored dispatched. The
// first attempt then waits for no write but the message's own, and reads
// nothing. Should the process die first, the claims are in the store and
// the deliveries are due again (local mode's next start releases them);
// nothing is lost.
//
// Holder is the local queue's one capability that Publish discovers by
// type assertion, on purpose, as it does Early for AWS: each says what
// kind of dispatcher it is (one that holds in memory, one durable on its
// own), which no other Dispatcher could offer. A store's fast paths, by
// contrast, are methods of webhook.Store that every store has (LoadRun,
// MarkDispatchedBatch).
type Holder interface {
	webhook.Dispatcher
	// Hold reserves room for n deliveries claimed at now. With room, it
	// returns when their claim ends and take, which hands the stored
	// deliveries over — or gives the room back when called with nil
	// (the message was not stored). ok is false when there is no room:
	// Publish then stores the deliveries due and dispatches them.
	Hold(n int, now time.Time) (until time.Time, take func([]webhook.Loaded), ok bool)
}

// Fresh is how long what Publish read for a held delivery (its endpoint
// and message) stands in for reading them again at its attempt. The
// first attempt of a new message normally starts within milliseconds; a
// change to the endpoint in that window (disabled, deleted, new URL or
// secret) is then seen by the next attempt, as it is when it lands while
// an attempt is in flight. A held delivery that waited longer is read
// again, as any other. Over a store that counts its changes
// (webhook.ChangeCounter: SQLite) the count decides instead (fresh).
const Fresh = time.Second

// fresh reports whether what Publish read for a held delivery still
// stands for the store: over a webhook.ChangeCounter, while its count has
// not moved, however long ago; otherwise for Fresh.
func (s *Service) fresh(l *webhook.Loaded) bool {
	if cc, ok := s.Store.(webhook.ChangeCounter); ok {
		return cc.Changes() == l.Changes
	}
	return s.Clock.Now().Sub(l.At) <= Fresh
}

// dispatchAll hands runs to the Dispatcher and records those it took,
// logging a failure instead of returning it: the caller has already
// acknowledged the work, and the sweeper re-drives whatever stays
// undispatched.
func (s *Service) dispatchAll(ctx context.Context, refs []webhook.Ref) {
	if len(refs) == 0 {
		return
	}
	if _, err := s.Dispatch(ctx, refs); err != nil {
		s.Logger.Warn("dispatch failed; the sweeper will re-drive what was not taken",
			"msg_id", refs[0].MsgID, "runs", len(refs), "err", err)
	}
}

// Dispatch hands runs to the Dispatcher, records those it took as
// dispatched, in one write where the store can, and returns them. A run
// that was not taken, or whose record failed, stays undispatched: the
// sweeper re-drives it, and dispatching a run twice is harmless.
func (s *Service) Dispatch(ctx context.Context, refs []webhook.Ref) ([]webhook.Ref, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	taken, err := s.Dispatcher.Dispatch(ctx, refs)
	if len(taken) > 0 {
		if merr := s.Store.MarkDispatchedBatch(ctx, taken); merr != nil {
			err = errors.Join(err, fmt.Errorf("record dispatched: %w", merr))
		}
	}
	return taken, err
}

// dispatchLogged dispatches one run as dispatchAll does.
func (s *Service) dispatchLogged(ctx context.Context, ref webhook.Ref) {
	s.dispatchAll(ctx, []webhook.Ref{ref})
}

// Resend starts a new manual run of msg to ep, whatever the endpoint's
// filters say, and dispatches it. A disabled endpoint, and a message whose
// payload was expunged, are refused.
func (s *Service) Resend(ctx context.Context, msg *webhook.Message, ep *webhook.Endpoint) error {
	if ep.Disabled {
		return webhook.BadRequest("generic_error", "endpoint %s is disabled; enable it before resending", ep.ID)
	}
	if msg.Expunged() {
		return webhook.BadRequest("missing_payload", "message %s's payload was expunged; it can no longer be resent", msg.ID)
	}
	d, err := s.Store.StartRun(ctx, msg, ep.ID, s.Clock.Now())
	if err != nil {
		return err
	}
	s.dispatchLogged(ctx, d.Ref())
	return nil
}

// AttemptNext is Attempt for the local queue (localqueue.AttemptFunc): it
// returns when the run's next attempt is due, zero when there is none.
// loaded, when not nil, is what Publish read for a held delivery; it is
// used instead of reading the store when it is no older than Fresh.
//
// An attempt the endpoint's throttle holds back is not made: the error is
// a *ThrottledError saying until when (the token is reserved for ref).
func (s *Service) AttemptNext(ctx context.Context, ref webhook.Ref, loaded *webhook.Loaded) (time.Time, error) {
	res, err := s.attempt(ctx, ref, loaded, false, time.Time{})
	if err == nil && res.Outcome == Throttled {
		return time.Time{}, &ThrottledError{Ref: ref, Until: res.NextAttemptAt}
	}
	return res.NextAttemptAt, err
}

// Attempt makes one attempt of the run ref: it loads the delivery, the
// endpoint and the message, signs and POSTs the payload, records the
// attempt, and says what should happen next. An error means the attempt
// could not be recorded (a store failure); the caller should try again
// later, and the receiver may then see the same webhook-id twice.
//
// An attempt asked for before it is due (by more than notDue) is not
// made: the result says to wait until it is. That is how an execution
// started for a run whose first attempts were made elsewhere (queue
// mode, AttemptQueued) enters at the right wait.
func (s *Service) Attempt(ctx context.Context, ref webhook.Ref) (Result, error) {
	return s.attempt(ctx, ref, nil, true, time.Time{})
}

// attempt is Attempt; early says whether an attempt that is not due yet
// waits (the local queue's claims move a run's due time, so it never
// asks early); reserved, when set, is the time of a throttle token that
// a Throttled result reserved for the run.
func (s *Service) attempt(ctx context.Context, ref webhook.Ref, loaded *webhook.Loaded, early bool, reserved time.Time) (Result, error) {
	var (
		d   *webhook.Delivery
		ep  *webhook.Endpoint
		msg *webhook.Message
		err error
	)
	if loaded != nil && loaded.Delivery.Ref() == ref && s.fresh(loaded) {
		d, ep, msg = loaded.Delivery, loaded.Endpoint, loaded.Message
	} else if d, ep, msg, err = s.loadCurrent(ctx, ref); err != nil {
		return Result{}, err
	}
	if !current(d, ref) {
		return Result{Outcome: Stop, Final: true}, nil
	}
	if ep == nil {
		return s.stop(ctx, ref, "endpoint deleted")
	}
	if ep.Disabled {
		return s.stop(ctx, ref, "endpoint disabled")
	}
	if msg == nil {
		return s.stop(ctx, ref, "message expired")
	}
	if msg.Expunged() {
		return s.stop(ctx, ref, "payload expunged")
	}

	if early && d.Attempts > 0 && d.NextAttemptAt.Sub(s.Clock.Now()) > notDue {
		// Asked for before its time (an execution entering a run whose
		// first attempts were made elsewhere): no POST; wait for it.
		return retryAt(d, s.Clock.Now()), nil
	}
	if d.Attempts >= s.Schedule.MaxAttempts() {
		// A re-driven run whose last attempt was recorded but not
		// closed: its schedule is spent, so close it without a POST.
		if err := s.Fail(ctx, ref); err != nil {
			return Result{}, err
		}
		return Result{Outcome: Retry, Attempt: d.Attempts, Final: true}, nil
	}
	if res, held, err := s.throttle(ctx, ref, d, ep, reserved); err != nil || held {
		return res, err
	}
	n := d.Attempts + 1
	trigger := webhook.TriggerScheduled
	if n == 1 {
		trigger = d.Trigger
	}
	start := s.Clock.Now()
	resp := s.Sender.Send(ctx, sender.Request{
		URL: ep.URL, MsgID: msg.ID, Timestamp: start, Keys: ep.CurrentKeys(start),
		Body: msg.Payload, Headers: ep.Headers,
	})
	end := s.Clock.Now()
	if errors.Is(resp.Err, sender.ErrCanceled) {
		// Our own deadline (the Lambda's, or shutdown) cut the request:
		// the endpoint is not at fault, so this is not an attempt.
		return Result{}, fmt.Errorf("delivery: attempt of %s to %s canceled: %w", ref.MsgID, ref.EndpointID, resp.Err)
	}

	res := webhook.AttemptResult{
		Attempt: webhook.Attempt{
			ID:                 webhook.NewID(webhook.PrefixAttempt),
			AppID:              ref.AppID,
			MsgID:              ref.MsgID,
			EndpointID:         ref.EndpointID,
			EventType:          msg.EventType,
			URL:                ep.URL,
			Response:           responseText(resp),
			ResponseStatusCode: resp.StatusCode,
			ResponseDurationMs: resp.Duration.Milliseconds(),
			Trigger:            trigger,
			Timestamp:          start,
			ExpiresAt:          msg.ExpiresAt,
		},
		Run:      d.Run,
		Attempts: n,
		From:     d,
		Endpoint: ep,
	}
	out := Result{Attempt: n, StatusCode: resp.StatusCode}
	exhausted := false
	switch wait, more := s.Schedule.Next(n); {
	case resp.OK():
		res.Attempt.Status, res.Status = webhook.StatusSuccess, webhook.StatusSuccess
		out.Outcome, out.Final = Delivered, true
	case resp.StatusCode == http.StatusGone:
		res.Attempt.Status, res.Status = webhook.StatusFail, webhook.StatusFail
		out.Outcome, out.Final = Stop, true
	case more:
		res.Attempt.Status, res.Status = webhook.StatusFail, webhook.StatusSending
		res.NextAttemptAt = end.Add(wait)
		out.Outcome, out.Wait, out.WaitSec, out.NextAttemptAt = Retry, wait, int64(wait/time.Second), res.NextAttemptAt
	default:
		res.Attempt.Status, res.Status = webhook.StatusFail, webhook.StatusFail
		out.Outcome, out.Final = Retry, true
		exhausted = true
	}

	after, err := s.Store.RecordAttempt(ctx, res)
	if webhook.IsNotFound(err) {
		// The endpoint or its app was deleted while we sent.
		return Result{Outcome: Stop, Attempt: n, StatusCode: resp.StatusCode, Final: true}, nil
	}
	if err != nil {
		return Result{}, err
	}
	if after.Run != d.Run || after.Attempts != n || after.Status != res.Status {
		// Someone moved the delivery on while we sent (disable, resend).
		return Result{Outcome: Stop, Attempt: n, StatusCode: resp.StatusCode, Final: true}, nil
	}
	s.Logger.Debug("attempt",
		"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "run", ref.Run, "attempt", n,
		"status_code", resp.StatusCode, "outcome", string(out.Outcome), "final", out.Final)
	if out.Final && res.Status == webhook.StatusFail {
		s.Logger.Warn("delivery failed: retry schedule exhausted",
			"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "run", ref.Run, "attempts", n)
	}
	s.Operational.Attempt(ctx, msg, &res.Attempt, n, exhausted)
	return out, nil
}

// load reads what an attempt of ref needs (webhook.Store.LoadRun).
func (s *Service) load(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	return s.Store.LoadRun(ctx, ref)
}

// ErrNotCommitted is the error of an attempt whose message may not be
// stored yet (AwaitCommit): its caller tries again later.
var ErrNotCommitted = errors.New("delivery: the message is not stored yet")

// commitPolls are the pauses between an attempt's reads of a delivery
// whose message may not be stored yet: the api stores it milliseconds
// after it dispatched the run, as a rule.
var commitPolls = []time.Duration{25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}

// uncommitted reports whether ref's message may not be stored yet: its id
// was made within AwaitCommit (ids are KSUIDs, which carry their second).
func (s *Service) uncommitted(ref webhook.Ref) bool {
	if s.AwaitCommit <= 0 {
		return false
	}
	made, ok := webhook.IDTime(ref.MsgID)
	return ok && s.Clock.Now().Sub(made) < s.AwaitCommit
}

// awaitCommit re-reads ref's run while its message may still be stored,
// and fails with ErrNotCommitted if it is not there yet.
func (s *Service) awaitCommit(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	for _, pause := range commitPolls {
		select {
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		case <-time.After(pause):
		}
		d, ep, msg, err := s.load(ctx, ref)
		if !webhook.IsNotFound(err) {
			return d, ep, msg, err
		}
	}
	return nil, nil, nil, fmt.Errorf("%w: %s", ErrNotCommitted, ref.MsgID)
}

// loadCurrent reads what an attempt of ref needs (load), waiting a moment
// for a message that may not be stored yet (AwaitCommit). What is missing
// is nil, not an error.
func (s *Service) loadCurrent(ctx context.Context, ref webhook.Ref) (*webhook.Delivery, *webhook.Endpoint, *webhook.Message, error) {
	d, ep, msg, err := s.load(ctx, ref)
	if webhook.IsNotFound(err) && s.uncommitted(ref) {
		d, ep, msg, err = s.awaitCommit(ctx, ref)
	}
	if webhook.IsNotFound(err) {
		err = nil
	}
	return d, ep, msg, err
}

// current reports whether d is the delivery of ref's run, unfinished.
func current(d *webhook.Delivery, ref webhook.Ref) bool {
	return d != nil && d.Run == ref.Run && !d.Status.Final()
}

// stop ends the run as Canceled because the delivery can no longer happen.
func (s *Service) stop(ctx context.Context, ref webhook.Ref, why string) (Result, error) {
	if err := s.Store.FinishDelivery(ctx, ref, webhook.StatusCanceled, s.Clock.Now()); err != nil && !webhook.IsNotFound(err) {
		return Result{}, err
	}
	s.Logger.Info("delivery canceled", "msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "run", ref.Run, "reason", why)
	return Result{Outcome: Stop, Final: true}, nil
}

// Reconcile says where a run stands after an attempt that ended without a
// result — the deliver function failed (the store was unreachable), timed
// out or ran out of memory — so that the state machine goes on from the
// right place: Stop when the run is over (finished, superseded, gone);
// Retry with the recorded attempt's number when that attempt was recorded
// and its retry is not due yet (wait for it); Again when the attempt is
// due and unrecorded (make it, at least once, again); HandOff when it has
// been due and unrecorded for ReconcileFor (the state machine hands the
// run to the sweeper). A run whose schedule is spent reports Retry, Final.
// ReconcileFor counts from when the attempt was due, or from since (when
// the execution started) if later: a run started late is not handed off
// at its first failure. An error means the store could not be read.
func (s *Service) Reconcile(ctx context.Context, ref webhook.Ref, since time.Time) (Result, error) {
	d, err := s.Store.GetDelivery(ctx, ref.AppID, ref.MsgID, ref.EndpointID)
	if webhook.IsNotFound(err) && s.uncommitted(ref) {
		return Result{Outcome: Again}, nil // the message may not be stored yet
	}
	if webhook.IsNotFound(err) {
		return Result{Outcome: Stop, Final: true}, nil
	}
	if err != nil {
		return Result{}, err
	}
	now := s.Clock.Now()
	switch {
	case d.Run != ref.Run || d.Status.Final():
		return Result{Outcome: Stop, Final: true}, nil
	case d.Attempts >= s.Schedule.MaxAttempts():
		return Result{Outcome: Retry, Attempt: d.Attempts, Final: true}, nil
	case d.Attempts > 0 && d.NextAttemptAt.After(now):
		return retryAt(d, now), nil
	case now.Sub(later(d.NextAttemptAt, since)) >= cmp.Or(s.ReconcileFor, DefaultReconcileFor):
		return Result{Outcome: HandOff, Attempt: d.Attempts}, nil
	}
	return Result{Outcome: Again, Attempt: d.Attempts}, nil
}

// notDue is how long before its due time an attempt may be asked for and
// still be made: an execution's Wait and this function's clock can
// disagree by that much.
const notDue = time.Second

// retryAt is the result that says d's recorded attempt scheduled a retry,
// not due yet at now: wait until then.
func retryAt(d *webhook.Delivery, now time.Time) Result {
	at := d.NextAttemptAt
	wait := at.Sub(now)
	return Result{Outcome: Retry, Attempt: d.Attempts, Wait: wait, WaitSec: int64(wait / time.Second), NextAttemptAt: at, ResumeAt: &at}
}

// AttemptQueued handles a run that the delivery queue handed over (AWS
// queue mode): it makes the run's first attempt, and the schedule's
// immediate retries (waits of zero) in the same call — a run that fails
// once and then succeeds needs no execution — and, when a retry is due
// later, starts what makes it (Retries). A redelivered run whose first
// attempt is already recorded is not sent again: only what is missing is
// done (Retries, which is idempotent). An error leaves the run to the
// queue, which hands it over again later.
//
// A first attempt the endpoint's throttle holds back is not made: the
// result is Throttled, and the caller hands the run back to the queue
// until the reservation (ResumeAt), then calls AttemptQueuedReserved. An
// immediate retry held back is left to the run's execution (Retries).
func (s *Service) AttemptQueued(ctx context.Context, ref webhook.Ref) (Result, error) {
	return s.AttemptQueuedReserved(ctx, ref, time.Time{})
}

// AttemptQueuedReserved is AttemptQueued for a run whose first attempt
// holds the throttle reservation reservedAt (see AttemptReserved); zero
// is none.
func (s *Service) AttemptQueuedReserved(ctx context.Context, ref webhook.Ref, reservedAt time.Time) (Result, error) {
	if !reservedAt.IsZero() {
		if err := s.awaitReservation(ctx, reservedAt); err != nil {
			return Result{}, err
		}
	}
	d, ep, msg, err := s.loadCurrent(ctx, ref)
	if err != nil {
		return Result{}, err
	}
	if !current(d, ref) {
		return Result{Outcome: Stop, Final: true}, nil
	}
	res := Result{Outcome: Retry, Attempt: d.Attempts}
	if d.Attempts == 0 {
		// The first attempt uses what was just read; a retry reads again.
		loaded := &webhook.Loaded{Delivery: d, Endpoint: ep, Message: msg, At: s.Clock.Now()}
		for {
			if res, err = s.attempt(ctx, ref, loaded, false, reservedAt); err != nil {
				return Result{}, err
			}
			loaded, reservedAt = nil, time.Time{}
			if res.Outcome == Throttled && res.Attempt > 0 {
				// An immediate retry held back: the execution waits for it.
				res = Result{Outcome: Retry, Attempt: res.Attempt}
				break
			}
			if res.Outcome != Retry || res.Final || res.Wait > 0 {
				break
			}
		}
		if res.Outcome != Retry || res.Final {
			return res, nil
		}
	}
	if s.Retries == nil {
		return res, fmt.Errorf("delivery: run %s/%s needs a retry and nothing starts retries", ref.MsgID, ref.EndpointID)
	}
	if err := s.Retries(ctx, ref); err != nil {
		return res, fmt.Errorf("delivery: start the retries of %s/%s: %w", ref.MsgID, ref.EndpointID, err)
	}
	return res, nil
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// HandBack gives a run whose execution cannot go on (see Reconcile) back
// to the sweeper: the delivery moves to a new run, undispatched, keeping
// its attempts (Store.Redrive), and the sweeper dispatches that run. A run
// that moved on meanwhile is left alone. It returns the new run.
func (s *Service) HandBack(ctx context.Context, ref webhook.Ref) (webhook.Ref, error) {
	d, err := s.Store.Redrive(ctx, ref, s.Clock.Now())
	if webhook.IsConflict(err) || webhook.IsNotFound(err) {
		return webhook.Ref{}, nil
	}
	if err != nil {
		return webhook.Ref{}, err
	}
	s.Logger.Warn("delivery handed back to the sweeper",
		"msg_id", ref.MsgID, "endpoint_id", ref.EndpointID, "run", ref.Run, "new_run", d.Run, "attempts", d.Attempts)
	return d.Ref(), nil
}

// Fail ends a run as Fail; the state machine's last step calls it when the
// schedule is exhausted, which is a no-op when Attempt already did so.
func (s *Service) Fail(ctx context.Context, ref webhook.Ref) error {
	err := s.Store.FinishDelivery(ctx, ref, webhook.StatusFail, s.Clock.Now())
	if webhook.IsNotFound(err) {
		return nil
	}
	return err
}

// responseText is what the attempt log shows as the response: the body
// (already capped by the Sender), or why there was none.
func responseText(r sender.Result) string {
	if r.StatusCode == 0 && r.Err != nil {
		return r.Err.Error()
	}
	return r.Body
}
