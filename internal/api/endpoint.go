package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/signing"
	"github.com/hookstep/hookstep/internal/webhook"
)

// endpointOut is EndpointOut, plus failingSince and disabledReason, which
// Svix does not have and the dashboard shows.
type endpointOut struct {
	ID             string            `json:"id"`
	UID            *string           `json:"uid"`
	URL            string            `json:"url"`
	Description    string            `json:"description"`
	Version        int               `json:"version"`
	Disabled       bool              `json:"disabled"`
	FilterTypes    []string          `json:"filterTypes"`
	EventTypes     []string          `json:"eventTypes"`
	Channels       []string          `json:"channels"`
	Metadata       map[string]string `json:"metadata"`
	ThrottleRate   *int              `json:"throttleRate"`
	RateLimit      *int              `json:"rateLimit"`
	FailingSince   *timestamp        `json:"failingSince"`
	DisabledReason *string           `json:"disabledReason"`
	CreatedAt      timestamp         `json:"createdAt"`
	UpdatedAt      timestamp         `json:"updatedAt"`
}

func newEndpointOut(ep *webhook.Endpoint) endpointOut {
	out := endpointOut{
		ID:           ep.ID,
		UID:          stringOrNull(ep.UID),
		URL:          ep.URL,
		Description:  ep.Description,
		Version:      ep.Version,
		Disabled:     ep.Disabled,
		FilterTypes:  listOrNull(ep.FilterTypes),
		EventTypes:   listOrNull(ep.FilterTypes),
		Channels:     listOrNull(ep.Channels),
		Metadata:     nonNilMap(ep.Metadata),
		ThrottleRate: ep.ThrottleRate,
		RateLimit:    ep.ThrottleRate,
		FailingSince: timeOrNull(ep.FailingSince),
		CreatedAt:    timestamp(ep.CreatedAt),
		UpdatedAt:    timestamp(ep.UpdatedAt),
	}
	if ep.Disabled {
		out.DisabledReason = stringOrNull(ep.DisabledWhy)
	}
	return out
}

// maxVersion is the largest endpoint version the SDKs can send (uint16).
const maxVersion = 65535

// endpointMode says which body an endpoint input comes from.
type endpointMode int

const (
	endpointCreate endpointMode = iota // POST: EndpointIn
	endpointPut                        // PUT: EndpointUpdate, a full update
	endpointPatch                      // PATCH: EndpointPatch
)

// endpointInput is a decoded EndpointIn, EndpointUpdate or EndpointPatch.
type endpointInput struct {
	url         opt[string]
	description opt[string]
	uid         opt[string]
	disabled    opt[bool]
	filterTypes opt[[]string]
	filterName  string // the field filterTypes came from: filterTypes or eventTypes
	channels    opt[[]string]
	secret      opt[string]
	key         []byte // the parsed secret, when set
	metadata    opt[map[string]string]
	headers     opt[map[string]string]
	throttle    opt[int]
	version     opt[int]
}

// readEndpointInput decodes an endpoint body and checks everything that
// needs no store: syntax, limits, the URL and the secret.
func (s *Server) readEndpointInput(f *fields, mode endpointMode) endpointInput {
	var in endpointInput
	if mode == endpointPatch {
		in.url = notNull(f, "url", field[string](f, "url"))
	} else {
		u, ok := required[string](f, "url")
		in.url = opt[string]{Set: ok, V: u}
	}
	if in.url.Value() {
		s.checkURL(f.p, in.url.V)
	}

	in.description = field[string](f, "description")
	if in.description.Value() {
		webhook.ValidateDescription(f.p, loc("body", "description"), in.description.V)
	}
	in.uid = field[string](f, "uid")
	if in.uid.Value() {
		webhook.ValidateUID(f.p, loc("body", "uid"), in.uid.V)
	}
	in.disabled = notNull(f, "disabled", field[bool](f, "disabled"))

	in.filterTypes, in.filterName = aliased[[]string](f, "filterTypes", "eventTypes")
	if in.filterTypes.Value() {
		in.filterTypes.V = checkFilterTypes(f.p, in.filterName, in.filterTypes.V)
	}
	in.channels = field[[]string](f, "channels")
	if in.channels.Value() {
		webhook.ValidateChannels(f.p, loc("body", "channels"), in.channels.V, false)
	}

	in.secret = field[string](f, "secret")
	if in.secret.Value() {
		key, err := signing.ParseSecret(in.secret.V)
		if err != nil {
			f.p.Add(loc("body", "secret"), "must be whsec_ followed by the base64 of %d to %d bytes",
				signing.MinSecretBytes, signing.MaxSecretBytes)
		}
		in.key = key
	} else if in.secret.Null && mode != endpointPatch {
		// Only a PATCH can ask for a new generated secret with null.
		in.secret = opt[string]{}
	}

	in.metadata = field[map[string]string](f, "metadata")
	if in.metadata.Value() {
		webhook.ValidateMetadata(f.p, loc("body", "metadata"), in.metadata.V)
	}
	in.headers = field[map[string]string](f, "headers")
	if in.headers.Value() {
		checkHeaders(f.p, loc("body", "headers"), optionalValues(in.headers.V))
	}

	var name string
	in.throttle, name = aliased[int](f, "throttleRate", "rateLimit")
	if in.throttle.Value() {
		checkThrottle(f.p, name, in.throttle.V)
	}
	in.version = notNull(f, "version", field[int](f, "version"))
	if in.version.Value() && (in.version.V < 1 || in.version.V > maxVersion) {
		f.p.Add(loc("body", "version"), "must be from 1 to %d", maxVersion)
	}
	return in
}

// checkURL checks an endpoint URL: its length, webhook's SSRF rules
// for URLs, and https when required.
func (s *Server) checkURL(p *webhook.Problems, raw string) {
	l := loc("body", "url")
	if raw == "" || len(raw) > webhook.MaxURLLen {
		p.Add(l, "must be 1 to %d characters", webhook.MaxURLLen)
		return
	}
	if err := webhook.ValidateURL(raw, s.urlPolicy); err != nil {
		// ValidateURL's error text is written to be shown to the caller.
		p.Add(l, "%s", err.Error())
	}
}

// checkFilterTypes checks the syntax of an event-type filter and returns it
// without duplicates; an empty filter means "all types".
func checkFilterTypes(p *webhook.Problems, name string, types []string) []string {
	if len(types) > webhook.MaxFilterTypes {
		p.Add(loc("body", name), "at most %d event types", webhook.MaxFilterTypes)
		return nil
	}
	out := make([]string, 0, len(types))
	for _, t := range types {
		webhook.ValidateEventTypeName(p, loc("body", name), t)
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkEventTypesExist reports, as one problem, the event types of a filter
// that do not exist, are archived, or are hidden from tok (nil: the
// admin), for which they do not exist either.
func (s *Server) checkEventTypesExist(ctx context.Context, tok *webhook.AppToken, name string, types []string) error {
	var missing []string
	for _, t := range types {
		et, err := s.store.GetEventType(ctx, t)
		switch {
		case webhook.IsNotFound(err):
			missing = append(missing, t)
		case err != nil:
			return err
		case et.Archived || !tok.SeesEventType(et):
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return webhook.Invalid(loc("body", name), "The following event types don't exist: %s", strings.Join(missing, ", "))
	}
	return nil
}

// optionalValues converts headers to the form webhook.ValidateHeaders takes.
func optionalValues(h map[string]string) map[string]*string {
	out := make(map[string]*string, len(h))
	for k, v := range h {
		out[k] = &v
	}
	return out
}

// checkHeaders validates custom headers and rejects names that differ only
// in case, which would be the same header on the wire.
func checkHeaders(p *webhook.Problems, l []string, h map[string]*string) {
	webhook.ValidateHeaders(p, l, h)
	seen := make(map[string]string, len(h))
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		lower := strings.ToLower(name)
		if other, dup := seen[lower]; dup {
			p.Add(append(slices.Clone(l), name), "header %q is also given as %q", name, other)
		}
		seen[lower] = name
	}
}

// apply sets the fields the input mentions; absent fields are kept and
// null ones cleared. It reports whether the endpoint became disabled.
func (in endpointInput) apply(ep *webhook.Endpoint, now time.Time) (disabledNow bool) {
	if in.url.Value() {
		ep.URL = in.url.V
	}
	if in.description.Set {
		ep.Description = in.description.V
	}
	if in.uid.Set {
		ep.UID = in.uid.V
	}
	if in.filterTypes.Set {
		ep.FilterTypes = in.filterTypes.V
	}
	if in.channels.Set {
		ep.Channels = in.channels.V
	}
	if in.metadata.Set {
		ep.Metadata = in.metadata.V
	}
	if ep.Metadata == nil {
		ep.Metadata = map[string]string{}
	}
	if in.headers.Set {
		ep.Headers = in.headers.V
	}
	if in.throttle.Set {
		ep.ThrottleRate = throttleOf(in.throttle)
	}
	if in.version.Value() {
		ep.Version = in.version.V
	}
	if in.disabled.Value() {
		disabledNow = ep.SetDisabled(in.disabled.V, now)
	}
	return disabledNow
}

// setKey applies a secret from the input: a given secret becomes the
// current key, and so does the generated one that the caller put in
// in.key for a null. The replaced current key stops signing at once
// (rotate keeps it for a grace period).
func (in endpointInput) setKey(ep *webhook.Endpoint) {
	if !in.secret.Set {
		return
	}
	if len(ep.Keys) == 0 {
		ep.Keys = []webhook.SigningKey{{Key: in.key}}
		return
	}
	ep.Keys = slices.Clone(ep.Keys)
	ep.Keys[0] = webhook.SigningKey{Key: in.key}
}

// endpointFromPath loads the app and the endpoint named by {app_id} and
// {endpoint_id} (each an id or a uid).
func (s *Server) endpointFromPath(r *http.Request) (*webhook.App, *webhook.Endpoint, error) {
	app, err := s.appFromPath(r)
	if err != nil {
		return nil, nil, err
	}
	ep, err := s.appEndpoint(r.Context(), app, r.PathValue("endpoint_id"))
	return app, ep, err
}

// appEndpoint loads an endpoint of app by id or uid.
func (s *Server) appEndpoint(ctx context.Context, app *webhook.App, idOrUID string) (*webhook.Endpoint, error) {
	if idOrUID == "" || len(idOrUID) > maxPathValue {
		return nil, errNotFound("Endpoint")
	}
	ep, err := s.store.GetEndpoint(ctx, app.ID, idOrUID)
	if webhook.IsNotFound(err) {
		return nil, errNotFound("Endpoint")
	}
	if err == nil && ep.AppID != app.ID {
		return nil, errNotFound("Endpoint")
	}
	return ep, err
}

// changeEndpoint applies a request's change to an endpoint and stores it,
// optimistically: ep is the endpoint as just read, and the write is
// refused if anything else wrote it since (webhook.ErrStale). The
// endpoint is then read again and change applied to it afresh, so that
// concurrent changes (another PATCH, a rotation, the sweeper disabling
// the endpoint) all land and none undoes another. change must derive the
// new state from the endpoint it is given; it reports whether it disabled
// the endpoint, whose unfinished deliveries are then canceled. The stored
// change is then announced to the operational webhooks (endpoint.updated,
// and endpoint.disabled or endpoint.enabled if it flipped Disabled; ep is
// an endpoint of app). It returns the endpoint as stored.
func (s *Server) changeEndpoint(ctx context.Context, app *webhook.App, ep *webhook.Endpoint, change func(ep *webhook.Endpoint) (disabledNow bool, err error)) (*webhook.Endpoint, error) {
	var disabledNow, wasDisabled bool
	err := retryStale("endpoint", func(try int) error {
		if try > 0 {
			var err error
			if ep, err = s.store.GetEndpoint(ctx, ep.AppID, ep.ID); err != nil {
				if webhook.IsNotFound(err) {
					return errNotFound("Endpoint")
				}
				return err
			}
		}
		read := ep.UpdatedAt
		wasDisabled = ep.Disabled
		var err error
		if disabledNow, err = change(ep); err != nil {
			return err
		}
		ep.UpdatedAt = s.now()
		err = s.store.UpdateEndpoint(ctx, ep, read)
		switch {
		case errors.Is(err, webhook.ErrStale):
			return err
		case webhook.IsConflict(err):
			return errUIDTaken("An endpoint", ep.UID)
		case webhook.IsNotFound(err):
			return errNotFound("Endpoint")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if disabledNow {
		// The update stands even if this fails: the delivery engine also
		// stops runs of a disabled endpoint when it next looks at them.
		if _, err := s.store.CancelDeliveries(ctx, ep.AppID, ep.ID, ep.DisabledAt); err != nil {
			s.log.WarnContext(ctx, "cancel deliveries of disabled endpoint", "endpoint_id", ep.ID, "err", err)
		}
	}
	s.ops.Changed(ctx, app, ep, wasDisabled)
	return ep, nil
}

// maxUpdateTries bounds the read → change → write cycles of an update that
// keeps losing races with other writers of the same item.
const maxUpdateTries = 5

// retryStale runs one optimistic update cycle (try 0 works on the item as
// the handler read it, later tries read it again) until it does not fail
// with webhook.ErrStale. An update that loses maxUpdateTries races is a
// Conflict for the client to retry.
func retryStale(what string, cycle func(try int) error) error {
	for try := range maxUpdateTries {
		if err := cycle(try); !errors.Is(err, webhook.ErrStale) {
			return err
		}
	}
	return errConflict("The %s is being changed concurrently; retry the request", what)
}

func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	opts := newQuery(r, &p).listOptions(true, isID(webhook.PrefixEndpoint))
	if err := p.Err(); err != nil {
		return err
	}
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	page, err := s.store.ListEndpoints(r.Context(), app.ID, opts)
	if err != nil {
		return err
	}
	key := func(ep *webhook.Endpoint) string { return ep.ID }
	return writeList(s, w, r, opts, page, key, each(endpointView(r)))
}

func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := s.readEndpointInput(f, endpointCreate)
	checkOpsInput(r, &p, in)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	app, err := s.appFromPath(r)
	if err != nil {
		return err
	}
	if err := s.checkFilterExists(r, in.filterName, in.filterTypes.V); err != nil {
		return err
	}
	key := in.key
	if key == nil {
		if key, err = signing.GenerateSecret(); err != nil {
			return err
		}
	}
	now := s.now()
	ep := &webhook.Endpoint{
		ID:        webhook.NewID(webhook.PrefixEndpoint),
		AppID:     app.ID,
		Keys:      []webhook.SigningKey{{Key: key}},
		Version:   1,
		CreatedAt: now,
		UpdatedAt: now,
	}
	in.apply(ep, now)
	if err := s.store.CreateEndpoint(ctx, ep); err != nil {
		switch {
		case webhook.IsConflict(err):
			return errUIDTaken("An endpoint", ep.UID)
		case webhook.IsNotFound(err):
			return errNotFound("Application") // deleted meanwhile
		}
		return err
	}
	s.ops.Endpoint(ctx, operational.EndpointCreated, app, ep)
	if ep.Disabled {
		s.ops.Disabled(ctx, app, ep, operational.TriggerManual, ep.FailingSince)
	}
	s.writeJSON(w, r, http.StatusCreated, endpointView(r)(ep))
	return nil
}

func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	_, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, endpointView(r)(ep))
	return nil
}

// putEndpoint replaces an endpoint's settings. Fields absent from the body
// take their defaults, except uid, version, secret and headers, which are
// kept (EndpointUpdate has no secret or headers; SDKs omit an unset uid).
func (s *Server) putEndpoint(w http.ResponseWriter, r *http.Request) error {
	return s.updateEndpoint(w, r, endpointPut)
}

func (s *Server) patchEndpoint(w http.ResponseWriter, r *http.Request) error {
	return s.updateEndpoint(w, r, endpointPatch)
}

func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request, mode endpointMode) error {
	var p webhook.Problems
	f, err := decodeObject(w, r, &p)
	if err != nil {
		return err
	}
	in := s.readEndpointInput(f, mode)
	checkOpsInput(r, &p, in)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := r.Context()
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	if in.filterTypes.Value() {
		if err := s.checkFilterExists(r, in.filterName, in.filterTypes.V); err != nil {
			return err
		}
	}
	if mode == endpointPut && !in.disabled.Set {
		in.disabled = opt[bool]{Set: true, V: false}
	}
	if in.secret.Set && in.key == nil {
		// null asks for a new generated secret: one for all tries.
		if in.key, err = signing.GenerateSecret(); err != nil {
			return err
		}
	}
	ep, err = s.changeEndpoint(ctx, app, ep, func(ep *webhook.Endpoint) (bool, error) {
		if mode == endpointPut {
			ep.Description, ep.FilterTypes, ep.Channels = "", nil, nil
			ep.Metadata, ep.ThrottleRate = map[string]string{}, nil
		}
		disabledNow := in.apply(ep, s.now())
		in.setKey(ep)
		return disabledNow, nil
	})
	if err != nil {
		return err
	}
	s.writeJSON(w, r, http.StatusOK, endpointView(r)(ep))
	return nil
}

func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	app, ep, err := s.endpointFromPath(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteEndpoint(r.Context(), app.ID, ep.ID); err != nil {
		if webhook.IsNotFound(err) {
			return errNotFound("Endpoint")
		}
		return err
	}
	s.ops.Endpoint(r.Context(), operational.EndpointDeleted, app, ep)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// errEndpointDisabled refuses a manual delivery (resend, recover) to a
// disabled endpoint: manual triggers skip the filters, not "disabled".
func errEndpointDisabled(doing string) error {
	return webhook.BadRequest("generic_error", "The endpoint is disabled; enable it before %s", doing)
}
