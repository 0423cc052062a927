package webhook

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error so that the edge (the HTTP API) can turn it into a
// status code without looking at its text.
type Kind int

// The error kinds. KindInternal is the zero value: an error that carries no
// kind is an internal one.
const (
	KindInternal     Kind = iota
	KindInvalid           // input fails validation: 422 with field details
	KindBadRequest        // a request that cannot be honoured: 400
	KindNotFound          // no such resource (or another tenant's): 404
	KindConflict          // unique key taken, concurrent change: 409
	KindTooLarge          // payload over its limit: 413
	KindUnauthorized      // missing or bad credentials: 401
	KindForbidden         // valid credentials that do not allow this: 403
)

// FieldError names one invalid input and why. Loc follows the Svix
// convention: ["body", "url"], ["query", "limit"], ["path", "app_id"].
type FieldError struct {
	Loc []string
	Msg string
}

// Error is a domain error with a kind. Code is an optional machine-readable
// code for 400 responses (e.g. "limit_reached").
type Error struct {
	Kind   Kind
	Code   string
	Msg    string
	Fields []FieldError
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Msg
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = strings.Join(f.Loc, ".") + ": " + f.Msg
	}
	if e.Msg == "" {
		return strings.Join(parts, "; ")
	}
	return e.Msg + ": " + strings.Join(parts, "; ")
}

// ErrorKind reports the kind of err, KindInternal if it has none.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsNotFound reports whether err is of KindNotFound.
func IsNotFound(err error) bool { return ErrorKind(err) == KindNotFound }

// IsConflict reports whether err is of KindConflict.
func IsConflict(err error) bool { return ErrorKind(err) == KindConflict }

// NotFound returns a KindNotFound error.
func NotFound(format string, args ...any) error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, args...)}
}

// Conflict returns a KindConflict error.
func Conflict(format string, args ...any) error {
	return &Error{Kind: KindConflict, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest returns a KindBadRequest error with a machine-readable code.
func BadRequest(code, format string, args ...any) error {
	return &Error{Kind: KindBadRequest, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Forbidden returns a KindForbidden error.
func Forbidden(format string, args ...any) error {
	return &Error{Kind: KindForbidden, Msg: fmt.Sprintf(format, args...)}
}

// TooLarge returns a KindTooLarge error.
func TooLarge(format string, args ...any) error {
	return &Error{Kind: KindTooLarge, Msg: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error for one field.
func Invalid(loc []string, format string, args ...any) error {
	return &Error{Kind: KindInvalid, Fields: []FieldError{{Loc: loc, Msg: fmt.Sprintf(format, args...)}}}
}

// Problems collects field errors during validation.
type Problems struct {
	fields []FieldError
	large  string
}

// Add records a problem with the field at loc.
func (p *Problems) Add(loc []string, format string, args ...any) {
	p.fields = append(p.fields, FieldError{Loc: loc, Msg: fmt.Sprintf(format, args...)})
}

// TooLarge records that the request is over a size limit; it wins over
// field problems because its status (413) is more specific.
func (p *Problems) TooLarge(format string, args ...any) {
	p.large = fmt.Sprintf(format, args...)
}

// Err returns the collected problems as one error, or nil.
func (p *Problems) Err() error {
	if p.large != "" {
		return &Error{Kind: KindTooLarge, Msg: p.large}
	}
	if len(p.fields) == 0 {
		return nil
	}
	return &Error{Kind: KindInvalid, Fields: p.fields}
}
