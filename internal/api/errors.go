package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/hookstep/hookstep/internal/webhook"
)

// internalDetail is all a client learns about a 500.
const internalDetail = "Internal server error"

// errorBody is the Svix error format: {"code": ..., "detail": ...}.
type errorBody struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// validationBody is the Svix validation error format (422).
type validationBody struct {
	Detail []validationItem `json:"detail"`
}

// validationItem is one problem of a 422: where and what.
type validationItem struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// statusFor maps an error kind to its HTTP status and default code.
var statusFor = map[webhook.Kind]struct {
	status int
	code   string
}{
	webhook.KindBadRequest:   {http.StatusBadRequest, "generic_error"},
	webhook.KindUnauthorized: {http.StatusUnauthorized, "authentication_failed"},
	webhook.KindNotFound:     {http.StatusNotFound, "not_found"},
	webhook.KindConflict:     {http.StatusConflict, "conflict"},
	webhook.KindTooLarge:     {http.StatusRequestEntityTooLarge, "payload_too_large"},
	// Svix's code for a 403, space and all (its HttpError::permission_denied).
	webhook.KindForbidden: {http.StatusForbidden, "insufficient access"},
}

// genericDetail answers a NotFound or Conflict that no handler described.
var genericDetail = map[webhook.Kind]string{
	webhook.KindNotFound: "Entity not found",
	webhook.KindConflict: "The request conflicts with the current state of the entity",
}

// clientError is a NotFound or Conflict that a handler made, with a detail
// written for the client (errNotFound, errConflict). The Store's errors of
// those kinds name internal ids and keys (e.g. "app app_2x… not found"),
// so their text never reaches a response: a handler turns them into its
// own, and writeError answers any it did not with a generic detail.
type clientError struct{ err *webhook.Error }

func (e *clientError) Error() string { return e.err.Error() }

// Unwrap exposes the domain error, so that webhook.ErrorKind and
// webhook.IsNotFound see through it.
func (e *clientError) Unwrap() error { return e.err }

// errNotFound is the 404 for a resource named by the request, e.g.
// errNotFound("Application") → "Application not found".
func errNotFound(what string) error {
	return &clientError{&webhook.Error{Kind: webhook.KindNotFound, Msg: what + " not found"}}
}

// errConflict is a 409 with a detail for the client.
func errConflict(format string, args ...any) error {
	return &clientError{&webhook.Error{Kind: webhook.KindConflict, Msg: fmt.Sprintf(format, args...)}}
}

// writeError is the one place where an error becomes a response. Errors
// without a kind are internal: they are logged and answered with a generic
// 500 that reveals nothing. NotFound and Conflict errors show their text
// only when a handler made them (clientError); the other kinds come from
// validation and from handlers, whose text is written for clients.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *webhook.Error
	if !errors.As(err, &e) || e.Kind == webhook.KindInternal {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.writeJSON(w, r, http.StatusInternalServerError, errorBody{Code: "server_error", Detail: internalDetail})
		return
	}
	if e.Kind == webhook.KindInvalid {
		s.writeJSON(w, r, http.StatusUnprocessableEntity, validationBodyOf(e))
		return
	}
	m, ok := statusFor[e.Kind]
	if !ok {
		s.log.ErrorContext(r.Context(), "unknown error kind", "kind", int(e.Kind), "err", err)
		s.writeJSON(w, r, http.StatusInternalServerError, errorBody{Code: "server_error", Detail: internalDetail})
		return
	}
	code := m.code
	if e.Kind == webhook.KindBadRequest && e.Code != "" {
		code = e.Code
	}
	if e.Kind == webhook.KindUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	detail := e.Msg
	if generic, ok := genericDetail[e.Kind]; ok {
		var ce *clientError
		if !errors.As(err, &ce) {
			s.log.InfoContext(r.Context(), "store error answered generically", "method", r.Method, "path", r.URL.Path,
				"status", m.status, "err", err)
			detail = generic
		}
	}
	if detail == "" {
		detail = http.StatusText(m.status)
	}
	s.writeJSON(w, r, m.status, errorBody{Code: code, Detail: detail})
}

func validationBodyOf(e *webhook.Error) validationBody {
	if len(e.Fields) == 0 {
		return validationBody{Detail: []validationItem{{Loc: []string{"body"}, Msg: e.Msg, Type: "value_error"}}}
	}
	items := make([]validationItem, len(e.Fields))
	for i, f := range e.Fields {
		loc := f.Loc
		if loc == nil {
			loc = []string{}
		}
		items[i] = validationItem{Loc: loc, Msg: f.Msg, Type: "value_error"}
	}
	return validationBody{Detail: items}
}

// writeJSON writes v as a JSON response. It encodes before writing so that
// an encoding failure still yields a well-formed 500.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // payloads go back out exactly as stored
	if err := enc.Encode(v); err != nil {
		s.log.ErrorContext(r.Context(), "encode response", "method", r.Method, "path", r.URL.Path, "err", err)
		buf.Reset()
		buf.WriteString(`{"code":"server_error","detail":"` + internalDetail + `"}` + "\n")
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// loc builds a validation location.
func loc(parts ...string) []string { return parts }
