package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// messageOut is MessageOut.
type messageOut struct {
	ID        string          `json:"id"`
	EventType string          `json:"eventType"`
	EventID   *string         `json:"eventId"`
	Payload   json.RawMessage `json:"payload"`
	Channels  []string        `json:"channels"`
	Tags      []string        `json:"tags"`
	Timestamp timestamp       `json:"timestamp"`
}

// emptyPayload stands in for the payload when with_content=false.
var emptyPayload = json.RawMessage("{}")

// expiredPayload stands in for a payload that was expunged, as Svix
// shows a payload it no longer has (expunged or past its retention).
var expiredPayload = json.RawMessage(`{"expired":true}`)

func newMessageOut(m *webhook.Message, withContent bool) messageOut {
	out := messageOut{
		ID:        m.ID,
		EventType: m.EventType,
		EventID:   stringOrNull(m.EventID),
		Payload:   emptyPayload,
		Channels:  listOrNull(m.Channels),
		Tags:      listOrNull(m.Tags),
		Timestamp: timestamp(m.Timestamp),
	}
	switch {
	case !withContent:
	case m.Expunged():
		out.Payload = expiredPayload
	default:
		out.Payload = m.Payload
	}
	return out
}

// tagPattern is the Svix syntax of a message tag.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_./\\#]+$`)

// eventIDPattern is the syntax of an eventId; like a uid, it can be used in
// a path in place of the message id.
var eventIDPattern = regexp.MustCompile(`^[a-zA-Z0-9\-_.]+$`)

const maxRetentionHours = webhook.MaxRetentionDays * 24

// readMessageInput decodes and checks a MessageIn, but for its
// application (see createMessage). Unknown or unsupported fields that do
// not change delivery (transformationsParams) are ignored; deliverAt,
// which would, is refused.
func readMessageInput(f *fields, now time.Time, retention time.Duration) *webhook.Message {
	msg := &webhook.Message{Timestamp: now}
	eventType, ok := required[string](f, "eventType")
	if ok {
		webhook.ValidateEventTypeName(f.p, loc("body", "eventType"), eventType)
		msg.EventType = eventType
	}
	if payload, ok := required[json.RawMessage](f, "payload"); ok {
		msg.Payload = webhook.ValidatePayload(f.p, loc("body", "payload"), payload)
	}
	if id := field[string](f, "eventId"); id.Value() {
		if id.V == "" || len(id.V) > webhook.MaxEventIDLen || !eventIDPattern.MatchString(id.V) {
			f.p.Add(loc("body", "eventId"), "must be 1 to %d letters, digits, '-', '_' or '.'", webhook.MaxEventIDLen)
		}
		msg.EventID = id.V
	}
	if ch := field[[]string](f, "channels"); ch.Value() {
		webhook.ValidateChannels(f.p, loc("body", "channels"), ch.V, true)
		msg.Channels = listOrNull(ch.V)
	}
	if tags := field[[]string](f, "tags"); tags.Value() {
		if len(tags.V) > webhook.MaxTags {
			f.p.Add(loc("body", "tags"), "at most %d tags", webhook.MaxTags)
		}
		for _, t := range tags.V {
			if len(t) > webhook.MaxTagLen || !tagPattern.MatchString(t) {
				f.p.Add(loc("body", "tags"), "each tag must be 1 to %d characters of letters, digits and -_./\\#", webhook.MaxTagLen)
				break
			}
		}
		msg.Tags = listOrNull(tags.V)
	}

	days := field[int](f, "payloadRetentionPeriod")
	hours := field[int](f, "payloadRetentionHours")
	switch {
	case days.Value() && hours.Value():
		f.p.Add(loc("body", "payloadRetentionHours"), "give payloadRetentionPeriod or payloadRetentionHours, not both")
	case days.Value():
		if days.V < webhook.MinRetentionDays || days.V > webhook.MaxRetentionDays {
			f.p.Add(loc("body", "payloadRetentionPeriod"), "must be from %d to %d days", webhook.MinRetentionDays, webhook.MaxRetentionDays)
		}
		retention = time.Duration(days.V) * 24 * time.Hour
	case hours.Value():
		if hours.V < 1 || hours.V > maxRetentionHours {
			f.p.Add(loc("body", "payloadRetentionHours"), "must be from 1 to %d hours", maxRetentionHours)
		}
		retention = time.Duration(hours.V) * time.Hour
	}
	msg.ExpiresAt = now.Add(retention)

	if f.has("deliverAt") && !isNull(f.raw["deliverAt"]) {
		f.p.Add(loc("body", "deliverAt"), "scheduled delivery is not supported")
	}
	return msg
}

// messageFromPath loads the app named by {app_id} and its message named by
// {msg_id} (an id or an eventId).
func (s *Server) messageFromPath(r *http.Request) (*webhook.App, *webhook.Message, error) {
	app, err := s.appFromPath(r)
	if err != nil {
		return nil, nil, err
	}
	msg, err := s.appMessage(r.Context(), app, r.PathValue("msg_id"))
	return app, msg, err
}

func (s *Server) appMessage(ctx context.Context, app *webhook.App, idOrEventID string) (*webhook.Message, error) {
	if idOrEventID == "" || len(idOrEventID) > maxPathValue {
		return nil, errNotFound("Message")
	}
	msg, err := s.store.GetMessage(ctx, app.ID, idOrEventID)
	if webhook.IsNotFound(err) {
		return nil, errNotFound("Message")
	}
	if err == nil && msg.AppID != app.ID {
		return nil, errNotFound("Message")
	}
	return msg, err
}

// createMessageRoute is the pattern of createMessage, which the
// idempotency middleware treats apart.
const createMessageRoute = "POST /api/v1/app/{app_id}/msg"

// createMessage accepts a message for delivery: 202 once it and its
// deliveries are stored. With an application, an app that does not exist
// is created first (Svix's implicit creation, as in appPortalAccess); an
// app that exists ignores it.
func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	withContent := newQuery(r, &p).bool("with_content", true)
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	msg := readMessageInput(f, s.now(), s.retention)
	appIn := readNestedApp(f)
	if err := p.Err(); err != nil {
		return err
	}
	app, err := s.appOrCreate(r, appIn)
	if err != nil {
		return err
	}
	msg.ID = webhook.NewID(webhook.PrefixMessage)
	msg.AppID = app.ID
	claim, keyed := claimedResource(r.Context())
	if keyed {
		// Its idempotency key names the id (see Server.idempotent).
		msg.ID = claim.id
	}
	if keyed && claim.key != "" {
		// The key is claimed with the message, in one write.
		err := s.deliveries.PublishKeyed(r.Context(), msg, webhook.KeyClaim{Key: claim.key, ExpiresAt: claim.expiresAt})
		var taken *webhook.KeyTakenError
		if !errors.As(err, &taken) {
			return s.published(w, r, msg, err, claim, withContent)
		}
		rec := taken.Record
		if rec.Resource == "" {
			// Claimed the other way (BeginIdempotent, before keys were
			// claimed with messages): that way, which takes over a claim
			// whose request died.
			held, err := s.store.BeginIdempotent(r.Context(), claim.key, msg.ID, claim.expiresAt, s.now().Add(-idempotencyStaleAfter))
			switch {
			case err != nil && webhook.IsConflict(err):
				return errConflict("A request with this idempotency key is still in progress")
			case err != nil:
				return err
			case held == nil: // taken over, naming msg
				err := s.deliveries.Publish(r.Context(), msg)
				if err != nil {
					_ = s.store.ReleaseIdempotent(context.WithoutCancel(r.Context()), claim.key)
				}
				return s.published(w, r, msg, err, resourceClaim{id: msg.ID}, withContent)
			case held.Resource == "":
				return errConflict("A request with this idempotency key is still in progress")
			}
			rec = *held
		}
		claim = repeatOf(rec, s.now())
		msg.ID = claim.id
	}
	if keyed && claim.repeat {
		stored, err := s.store.GetMessage(r.Context(), app.ID, claim.id)
		switch {
		case err == nil:
			s.writeJSON(w, r, http.StatusAccepted, newMessageOut(stored, withContent))
			return nil
		case !webhook.IsNotFound(err):
			return err
		case !claim.stale:
			return errConflict("A request with this idempotency key is still in progress")
		}
		// The first request died before it stored the message: store it
		// now, under the id its key names.
	}
	return s.published(w, r, msg, s.deliveries.Publish(r.Context(), msg), claim, withContent)
}

// published answers a request to create msg, given what publishing it
// returned; claim is the request's idempotency claim (id "" if none).
func (s *Server) published(w http.ResponseWriter, r *http.Request, msg *webhook.Message, err error, claim resourceClaim, withContent bool) error {
	switch {
	case err == nil:
		s.writeJSON(w, r, http.StatusAccepted, newMessageOut(msg, withContent))
		return nil
	case webhook.IsConflict(err) && claim.id != "":
		// A repeat that raced another: the message is stored.
		if stored, gerr := s.store.GetMessage(r.Context(), msg.AppID, claim.id); gerr == nil && stored.ID == claim.id {
			s.writeJSON(w, r, http.StatusAccepted, newMessageOut(stored, withContent))
			return nil
		}
		return errConflict("A message with eventId %q already exists", msg.EventID)
	case webhook.IsConflict(err):
		return errConflict("A message with eventId %q already exists", msg.EventID)
	case webhook.IsNotFound(err):
		return errNotFound("Application") // deleted meanwhile
	}
	return err
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	f := webhook.MessageFilter{
		ListOptions: q.listOptions(false, isID(webhook.PrefixMessage)),
		EventTypes:  q.eventTypes(),
		Channel:     q.channel(),
		Before:      q.time("before"),
		After:       q.time("after"),
	}
	withContent := q.bool("with_content", true)
	if err := p.Err(); err != nil {
		return err
	}
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	f.AppID = app.ID
	page, err := s.store.ListMessages(r.Context(), f)
	if err != nil {
		return err
	}
	conv := func(m *webhook.Message) messageOut { return newMessageOut(m, withContent) }
	key := func(m *webhook.Message) string { return m.ID }
	return writeList(s, w, r, f.ListOptions, page, key, each(conv))
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	withContent := newQuery(r, &p).bool("with_content", true)
	if err := p.Err(); err != nil {
		return err
	}
	_, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newMessageOut(msg, withContent))
	return nil
}

// resend starts a new manual run of a message to one endpoint.
func (s *Server) resend(w http.ResponseWriter, r *http.Request) error {
	app, msg, err := s.messageFromPath(r)
	if err != nil {
		return err
	}
	ep, err := s.appEndpoint(r.Context(), app, r.PathValue("endpoint_id"))
	if err != nil {
		return err
	}
	if ep.Disabled {
		return errEndpointDisabled("resending")
	}
	if msg.Expunged() {
		return errExpunged()
	}
	if err := s.deliveries.Resend(r.Context(), msg, ep); err != nil {
		if webhook.IsNotFound(err) {
			return errNotFound("Endpoint") // deleted meanwhile (the message was just read)
		}
		return err
	}
	s.writeJSON(w, r, http.StatusAccepted, struct{}{})
	return nil
}
