package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/hookstep/hookstep/internal/webhook"
)

// eventTypeOut is EventTypeOut.
type eventTypeOut struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Archived     bool            `json:"archived"`
	Deprecated   bool            `json:"deprecated"`
	Schemas      json.RawMessage `json:"schemas"`
	GroupName    *string         `json:"groupName"`
	FeatureFlags []string        `json:"featureFlags"`
	CreatedAt    timestamp       `json:"createdAt"`
	UpdatedAt    timestamp       `json:"updatedAt"`
}

func newEventTypeOut(et *webhook.EventType, withContent bool) eventTypeOut {
	out := eventTypeOut{
		Name:         et.Name,
		Description:  et.Description,
		Archived:     et.Archived,
		Deprecated:   et.Deprecated,
		GroupName:    stringOrNull(et.GroupName),
		FeatureFlags: listOrNull(et.FeatureFlags),
		CreatedAt:    timestamp(et.CreatedAt),
		UpdatedAt:    timestamp(et.UpdatedAt),
	}
	if withContent && len(et.Schemas) > 0 {
		out.Schemas = et.Schemas
	}
	return out
}

const maxFeatureFlags = 50

// eventTypeInput is a decoded EventTypeIn, EventTypeUpdate or
// EventTypePatch.
type eventTypeInput struct {
	description  opt[string]
	archived     opt[bool]
	deprecated   opt[bool]
	schemas      opt[json.RawMessage]
	groupName    opt[string]
	featureFlags opt[[]string]
}

// readEventTypeInput decodes and checks an event type body; POST and PUT
// bodies must have a description.
func readEventTypeInput(f *fields, full bool) eventTypeInput {
	var in eventTypeInput
	if full {
		d, ok := required[string](f, "description")
		in.description = opt[string]{Set: ok, V: d}
	} else {
		in.description = field[string](f, "description")
		if in.description.Null {
			f.p.Add(loc("body", "description"), "must not be null")
		}
	}
	if in.description.Value() {
		webhook.ValidateDescription(f.p, loc("body", "description"), in.description.V)
	}
	in.archived = notNull(f, "archived", field[bool](f, "archived"))
	in.deprecated = notNull(f, "deprecated", field[bool](f, "deprecated"))

	in.schemas = field[json.RawMessage](f, "schemas")
	if in.schemas.Value() {
		var buf bytes.Buffer
		var m map[string]json.RawMessage
		if json.Unmarshal(in.schemas.V, &m) != nil || m == nil || json.Compact(&buf, in.schemas.V) != nil {
			f.p.Add(loc("body", "schemas"), "must be an object of JSON Schemas by version")
		} else {
			in.schemas.V = buf.Bytes()
		}
	}

	in.groupName = field[string](f, "groupName")
	if in.groupName.Value() && in.groupName.V != "" {
		webhook.ValidateEventTypeName(f.p, loc("body", "groupName"), in.groupName.V)
	}

	name := "featureFlags"
	if f.has(name) {
		in.featureFlags = field[[]string](f, name)
	} else if f.has("featureFlag") {
		// The deprecated singular form holds one flag.
		name = "featureFlag"
		single := field[string](f, name)
		in.featureFlags = opt[[]string]{Set: single.Set, Null: single.Null}
		if single.Value() {
			in.featureFlags.V = []string{single.V}
		}
	}
	if in.featureFlags.Value() {
		if len(in.featureFlags.V) > maxFeatureFlags {
			f.p.Add(loc("body", name), "at most %d feature flags", maxFeatureFlags)
		}
		for _, ff := range in.featureFlags.V {
			webhook.ValidateEventTypeName(f.p, loc("body", name), ff)
		}
	}
	return in
}

// notNull reports a null for a field that cannot be cleared.
func notNull[T any](f *fields, name string, o opt[T]) opt[T] {
	if o.Null {
		f.p.Add(loc("body", name), "must not be null")
		return opt[T]{}
	}
	return o
}

// apply sets the fields the input mentions; absent fields are kept and
// null ones cleared.
func (in eventTypeInput) apply(et *webhook.EventType) {
	if in.description.Value() {
		et.Description = in.description.V
	}
	if in.archived.Value() {
		et.Archived = in.archived.V
	}
	if in.deprecated.Value() {
		et.Deprecated = in.deprecated.V
	}
	if in.schemas.Set {
		et.Schemas = in.schemas.V
	}
	if in.groupName.Set {
		et.GroupName = in.groupName.V
	}
	if in.featureFlags.Set {
		et.FeatureFlags = in.featureFlags.V
	}
}

// replace sets every field from a full (POST or PUT) body: absent fields
// take their defaults.
func (in eventTypeInput) replace(et *webhook.EventType) {
	et.Archived, et.Deprecated = false, false
	et.Schemas, et.GroupName, et.FeatureFlags = nil, "", nil
	in.apply(et)
}

// eventTypeVisible reports whether the request's principal may see et in
// the catalog (webhook.AppToken.SeesEventType). A hidden type reads as
// absent: a list leaves it out, and its name is in no iterator; a get is
// 404; an endpoint filter naming it is refused as naming an unknown type.
func eventTypeVisible(r *http.Request, et *webhook.EventType) bool {
	return appTokenOf(r).SeesEventType(et)
}

// appTokenOf returns the request's app token, nil for the admin.
func appTokenOf(r *http.Request) *webhook.AppToken {
	if p := principalOf(r); p != nil {
		return p.app
	}
	return nil
}

// eventTypeFromPath loads the event type named by {event_type_name},
// archived or not.
func (s *Server) eventTypeFromPath(r *http.Request) (*webhook.EventType, error) {
	name := r.PathValue("event_type_name")
	if !isEventTypeName(name) {
		return nil, errNotFound("Event type")
	}
	et, err := s.store.GetEventType(r.Context(), name)
	if webhook.IsNotFound(err) {
		return nil, errNotFound("Event type")
	}
	return et, err
}

func (s *Server) listEventTypes(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	q := newQuery(r, &p)
	f := webhook.EventTypeFilter{
		ListOptions:     q.listOptions(true, isEventTypeName),
		IncludeArchived: q.bool("include_archived", false),
	}
	withContent := q.bool("with_content", true)
	if err := p.Err(); err != nil {
		return err
	}
	page, err := s.visibleEventTypes(r.Context(), f, appTokenOf(r))
	if err != nil {
		return err
	}
	conv := func(et *webhook.EventType) (eventTypeOut, bool, error) {
		return newEventTypeOut(et, withContent), true, nil
	}
	key := func(et *webhook.EventType) string { return et.Name }
	return writeList(s, w, r, f.ListOptions, page, key, conv)
}

// visibleEventTypes reads a page of the event types tok may see: for the
// admin the store's page; for an app token the store's pages from the
// cursor on, until the page is full of visible types, so that the page
// and its iterators (the names of its first and last items) hold no
// hidden type.
func (s *Server) visibleEventTypes(ctx context.Context, f webhook.EventTypeFilter, tok *webhook.AppToken) (webhook.Page[webhook.EventType], error) {
	if tok == nil {
		return s.store.ListEventTypes(ctx, f)
	}
	want := f.Limit
	if want == 0 {
		want = webhook.DefaultLimit
	}
	if f.Cursor == "" {
		f.Backward = false // the stores read forwards without a cursor
	}
	var out webhook.Page[webhook.EventType]
	for {
		page, err := s.store.ListEventTypes(ctx, f)
		if err != nil {
			return out, err
		}
		for i := range page.Items {
			if !tok.SeesEventType(&page.Items[i]) {
				continue
			}
			if len(out.Items) == want {
				out.More = true
				return out, nil
			}
			out.Items = append(out.Items, page.Items[i])
		}
		if !page.More || len(page.Items) == 0 {
			return out, nil
		}
		f.Cursor = page.Items[len(page.Items)-1].Name
	}
}

// createEventType creates an event type. Creating one that exists archived
// brings it back (as Svix does); creating one that exists otherwise is a
// conflict.
func (s *Server) createEventType(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	name, ok := required[string](f, "name")
	if ok {
		webhook.ValidateEventTypeName(&p, loc("body", "name"), name)
	}
	in := readEventTypeInput(f, true)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	now := s.now()
	et := &webhook.EventType{Name: name, CreatedAt: now, UpdatedAt: now}
	in.replace(et)
	err = s.store.CreateEventType(ctx, et)
	if webhook.IsConflict(err) {
		exists := errConflict("Event type %q already exists", name)
		existing, getErr := s.store.GetEventType(ctx, name)
		if getErr != nil {
			if webhook.IsNotFound(getErr) {
				return exists // expunged meanwhile; the client may retry
			}
			return getErr
		}
		et, err = s.changeEventType(ctx, existing, func(cur *webhook.EventType) error {
			if !cur.Archived {
				return exists
			}
			in.replace(cur) // keeps CreatedAt
			return nil
		})
	}
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, newEventTypeOut(et, true))
	return nil
}

func (s *Server) getEventType(w http.ResponseWriter, r *http.Request) error {
	et, err := s.eventTypeFromPath(r)
	if err != nil {
		return err
	}
	if !eventTypeVisible(r, et) {
		return errNotFound("Event type")
	}
	s.writeJSON(w, r, http.StatusOK, newEventTypeOut(et, true))
	return nil
}

// putEventType replaces an event type, or creates it (201).
func (s *Server) putEventType(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("event_type_name")
	var p webhook.Problems
	webhook.ValidateEventTypeName(&p, loc("path", "event_type_name"), name)
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := readEventTypeInput(f, true)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	now := s.now()
	et, err := s.store.GetEventType(ctx, name)
	switch {
	case err == nil:
		et, err = s.changeEventType(ctx, et, func(et *webhook.EventType) error {
			in.replace(et)
			return nil
		})
		if err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, newEventTypeOut(et, true))
		return nil
	case !webhook.IsNotFound(err):
		return err
	}
	et = &webhook.EventType{Name: name, CreatedAt: now, UpdatedAt: now}
	in.replace(et)
	if err := s.store.CreateEventType(ctx, et); err != nil {
		if webhook.IsConflict(err) {
			return errConflict("Event type %q was created concurrently", name)
		}
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, newEventTypeOut(et, true))
	return nil
}

func (s *Server) patchEventType(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := readEventTypeInput(f, false)
	if err := p.Err(); err != nil {
		return err
	}
	et, err := s.eventTypeFromPath(r)
	if err != nil {
		return err
	}
	et, err = s.changeEventType(r.Context(), et, func(et *webhook.EventType) error {
		in.apply(et)
		return nil
	})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newEventTypeOut(et, true))
	return nil
}

// changeEventType applies a request's change to an event type and stores
// it, optimistically, as changeEndpoint does for endpoints: on
// webhook.ErrStale the event type is read again and change applied
// afresh. It returns the event type as stored.
func (s *Server) changeEventType(ctx context.Context, et *webhook.EventType, change func(et *webhook.EventType) error) (*webhook.EventType, error) {
	err := retryStale("event type", func(try int) error {
		if try > 0 {
			var err error
			if et, err = s.store.GetEventType(ctx, et.Name); err != nil {
				if webhook.IsNotFound(err) {
					return errNotFound("Event type")
				}
				return err
			}
		}
		read := et.UpdatedAt
		if err := change(et); err != nil {
			return err
		}
		et.UpdatedAt = s.now()
		err := s.store.UpdateEventType(ctx, et, read)
		if webhook.IsNotFound(err) {
			return errNotFound("Event type")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return et, nil
}

// deleteEventType archives an event type, or with ?expunge=true removes it.
func (s *Server) deleteEventType(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	expunge := newQuery(r, &p).bool("expunge", false)
	if err := p.Err(); err != nil {
		return err
	}
	et, err := s.eventTypeFromPath(r)
	if err != nil {
		return err
	}
	if expunge {
		err = s.store.DeleteEventType(r.Context(), et.Name)
	} else if !et.Archived {
		_, err = s.changeEventType(r.Context(), et, func(et *webhook.EventType) error {
			et.Archived = true
			return nil
		})
	}
	if webhook.IsNotFound(err) {
		return errNotFound("Event type")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
