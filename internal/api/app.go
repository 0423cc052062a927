package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// appOut is ApplicationOut.
type appOut struct {
	ID           string            `json:"id"`
	UID          *string           `json:"uid"`
	Name         string            `json:"name"`
	Metadata     map[string]string `json:"metadata"`
	ThrottleRate *int              `json:"throttleRate"`
	RateLimit    *int              `json:"rateLimit"`
	CreatedAt    timestamp         `json:"createdAt"`
	UpdatedAt    timestamp         `json:"updatedAt"`
}

func newAppOut(a *webhook.App) appOut {
	return appOut{
		ID:           a.ID,
		UID:          stringOrNull(a.UID),
		Name:         a.Name,
		Metadata:     nonNilMap(a.Metadata),
		ThrottleRate: a.ThrottleRate,
		RateLimit:    a.ThrottleRate,
		CreatedAt:    timestamp(a.CreatedAt),
		UpdatedAt:    timestamp(a.UpdatedAt),
	}
}

// maxThrottleRate is the largest throttleRate the SDKs can send (uint16).
const maxThrottleRate = 65535

// appInput is a decoded ApplicationIn or ApplicationPatch.
type appInput struct {
	name     opt[string]
	uid      opt[string]
	metadata opt[map[string]string]
	throttle opt[int]
}

// readAppInput decodes and checks an app body; a PUT or POST body must
// have a name.
func readAppInput(f *fields, nameRequired bool) appInput {
	var in appInput
	if nameRequired {
		name, ok := required[string](f, "name")
		in.name = opt[string]{Set: ok, V: name}
	} else {
		in.name = field[string](f, "name")
		if in.name.Null {
			f.p.Add(loc("body", "name"), "must not be null")
		}
	}
	if in.name.Value() {
		webhook.ValidateName(f.p, loc("body", "name"), in.name.V)
	}
	in.uid = field[string](f, "uid")
	if in.uid.Value() {
		webhook.ValidateUID(f.p, loc("body", "uid"), in.uid.V)
	}
	in.metadata = field[map[string]string](f, "metadata")
	if in.metadata.Value() {
		webhook.ValidateMetadata(f.p, loc("body", "metadata"), in.metadata.V)
	}
	var name string
	in.throttle, name = aliased[int](f, "throttleRate", "rateLimit")
	if in.throttle.Value() {
		checkThrottle(f.p, name, in.throttle.V)
	}
	return in
}

func checkThrottle(p *webhook.Problems, name string, v int) {
	if v < 0 || v > maxThrottleRate {
		p.Add(loc("body", name), "must be from 0 to %d", maxThrottleRate)
	}
}

// throttleOf returns the throttle rate to store for a decoded field.
func throttleOf(o opt[int]) *int {
	if !o.Value() {
		return nil
	}
	v := o.V
	return &v
}

// apply sets the fields the input mentions; absent fields are kept and
// null ones cleared.
func (in appInput) apply(a *webhook.App) {
	if in.name.Value() {
		a.Name = in.name.V
	}
	if in.uid.Set {
		a.UID = in.uid.V
	}
	if in.metadata.Set {
		a.Metadata = in.metadata.V
	}
	if in.throttle.Set {
		a.ThrottleRate = throttleOf(in.throttle)
	}
}

func (s *Server) now() time.Time { return s.clock.Now().UTC() }

// appFromPath loads the app named by {app_id}, an id or a uid, or on an
// operational webhook route the reserved app.
func (s *Server) appFromPath(r *http.Request) (*webhook.App, error) {
	if app := opsApp(r); app != nil {
		return app, nil // read by opsRoute
	}
	idOrUID := r.PathValue("app_id")
	if idOrUID == "" || len(idOrUID) > maxPathValue {
		return nil, errNotFound("Application")
	}
	if p := principalOf(r); p != nil && p.pathApp != nil {
		return p.pathApp, nil // an app token's, resolved by authorize
	}
	return s.customerApp(r.Context(), idOrUID)
}

// customerApp loads the app idOrUID names, an id or a uid. The reserved
// app of the operational webhooks is hookstep's, no customer's: it is not
// found.
func (s *Server) customerApp(ctx context.Context, idOrUID string) (*webhook.App, error) {
	app, err := s.store.GetApp(ctx, idOrUID)
	if webhook.IsNotFound(err) || (err == nil && operational.Reserved(app.ID)) {
		return nil, errNotFound("Application")
	}
	return app, err
}

// maxPathValue bounds ids, uids and names taken from the path; nothing
// longer can exist.
const maxPathValue = 512

func errUIDTaken(what, uid string) error {
	return errConflict("%s with uid %q already exists", what, uid)
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	opts := newQuery(r, &p).listOptions(true, isID(webhook.PrefixApp))
	if err := p.Err(); err != nil {
		return err
	}
	page, err := s.store.ListApps(r.Context(), opts)
	if err != nil {
		return err
	}
	key := func(a *webhook.App) string { return a.ID }
	return writeList(s, w, r, opts, page, key, func(a *webhook.App) (appOut, bool, error) {
		return newAppOut(a), !operational.Reserved(a.ID), nil
	})
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	getIfExists := newQuery(r, &p).bool("get_if_exists", false)
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := readAppInput(f, true)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	if getIfExists && in.uid.Value() {
		existing, err := s.store.GetApp(ctx, in.uid.V)
		if err == nil {
			s.writeJSON(w, r, http.StatusOK, newAppOut(existing))
			return nil
		}
		if !webhook.IsNotFound(err) {
			return err
		}
	}
	now := s.now()
	app := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	in.apply(app)
	if err := s.store.CreateApp(ctx, app); err != nil {
		if !webhook.IsConflict(err) {
			return err
		}
		if getIfExists {
			// Lost a race with a concurrent create of the same uid.
			if existing, err := s.store.GetApp(ctx, app.UID); err == nil {
				s.writeJSON(w, r, http.StatusOK, newAppOut(existing))
				return nil
			}
		}
		return errUIDTaken("An application", app.UID)
	}
	s.writeJSON(w, r, http.StatusCreated, newAppOut(app))
	return nil
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) error {
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newAppOut(app))
	return nil
}

// putApp replaces an app, or creates it (201) when {app_id} is a uid that
// names no app yet. A PUT body without uid keeps the stored uid, since SDKs
// omit unset fields and a PUT must not make the app unreachable by the uid
// it was just addressed with.
func (s *Server) putApp(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := readAppInput(f, true)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	app, err := s.appFromPath(r)
	switch {
	case err == nil:
		app, err = s.changeApp(ctx, app, func(app *webhook.App) {
			app.Metadata = map[string]string{}
			app.ThrottleRate = nil
			in.apply(app)
		})
		if err != nil {
			return err
		}
		s.writeJSON(w, r, http.StatusOK, newAppOut(app))
		return nil
	case !webhook.IsNotFound(err):
		return err
	}

	// Create: only a valid uid in the path can name a new app.
	uid := r.PathValue("app_id")
	var up webhook.Problems
	webhook.ValidateUID(&up, nil, uid)
	if up.Err() != nil {
		return errNotFound("Application")
	}
	if in.uid.Value() && in.uid.V != uid {
		return webhook.Invalid(loc("body", "uid"), "must match the uid in the path")
	}
	now := s.now()
	app = &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Metadata: map[string]string{}, CreatedAt: now, UpdatedAt: now}
	in.apply(app)
	app.UID = uid
	if err := s.store.CreateApp(ctx, app); err != nil {
		if webhook.IsConflict(err) {
			return errUIDTaken("An application", uid)
		}
		return err
	}
	s.writeJSON(w, r, http.StatusCreated, newAppOut(app))
	return nil
}

func (s *Server) patchApp(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := readAppInput(f, false)
	if err := p.Err(); err != nil {
		return err
	}
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	app, err = s.changeApp(r.Context(), app, func(app *webhook.App) {
		in.apply(app)
		if app.Metadata == nil {
			app.Metadata = map[string]string{}
		}
	})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, newAppOut(app))
	return nil
}

// changeApp applies a request's change to an app and stores it,
// optimistically, as changeEndpoint does for endpoints: on
// webhook.ErrStale the app is read again and change applied afresh. It
// returns the app as stored.
func (s *Server) changeApp(ctx context.Context, app *webhook.App, change func(app *webhook.App)) (*webhook.App, error) {
	err := retryStale("application", func(try int) error {
		if try > 0 {
			var err error
			if app, err = s.store.GetApp(ctx, app.ID); err != nil {
				if webhook.IsNotFound(err) {
					return errNotFound("Application")
				}
				return err
			}
		}
		read := app.UpdatedAt
		change(app)
		app.UpdatedAt = s.now()
		err := s.store.UpdateApp(ctx, app, read)
		switch {
		case errors.Is(err, webhook.ErrStale):
			return err
		case webhook.IsConflict(err):
			return errUIDTaken("An application", app.UID)
		case webhook.IsNotFound(err):
			return errNotFound("Application")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return app, nil
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) error {
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteApp(r.Context(), app.ID); err != nil {
		if webhook.IsNotFound(err) {
			return errNotFound("Application")
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
