// Package config reads typed settings from environment variables. Each
// binary declares one config struct and fills it through an Env, which
// collects every bad variable so that a misconfigured start fails once,
// with one error naming them all.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// Env reads variables through a getenv function (os.Getenv in main, a map
// in tests). Each method leaves dst unchanged when the variable is unset.
type Env struct {
	getenv func(string) string
	errs   []error
}

// New returns an Env reading through getenv.
func New(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Err returns every problem found so far, or nil.
func (e *Env) Err() error {
	if err := errors.Join(e.errs...); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
}

func (e *Env) fail(name, value, want string) {
	e.errs = append(e.errs, fmt.Errorf("%s=%q: want %s", name, value, want))
}

// String reads a string.
func (e *Env) String(name string, dst *string) {
	if v := e.getenv(name); v != "" {
		*dst = v
	}
}

// Required reads a string that must be set.
func (e *Env) Required(name string, dst *string) {
	v := e.getenv(name)
	if v == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is not set", name))
		return
	}
	*dst = v
}

// Duration reads a positive Go duration.
func (e *Env) Duration(name string, dst *time.Duration) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, v, "a positive Go duration such as 15s or 168h")
		return
	}
	*dst = d
}

// DurationIn reads a Go duration from lo to hi.
func (e *Env) DurationIn(name string, lo, hi time.Duration, dst *time.Duration) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		e.fail(name, v, fmt.Sprintf("a Go duration from %s to %s", lo, hi))
		return
	}
	*dst = d
}

// Bool reads true or false (and the other forms strconv.ParseBool takes).
func (e *Env) Bool(name string, dst *bool) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, v, "true or false")
		return
	}
	*dst = b
}

// Int reads a whole number in [lo, hi].
func (e *Env) Int(name string, lo, hi int, dst *int) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.fail(name, v, fmt.Sprintf("a whole number from %d to %d", lo, hi))
		return
	}
	*dst = n
}

// Schedule reads a retry schedule (webhook.ParseSchedule).
func (e *Env) Schedule(name string, dst *webhook.Schedule) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	s, err := webhook.ParseSchedule(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: %w", name, v, err))
		return
	}
	*dst = s
}

// OneOf reads one of the given words, case-insensitively, stored lower-case.
func (e *Env) OneOf(name string, dst *string, words ...string) {
	v := strings.ToLower(e.getenv(name))
	if v == "" {
		return
	}
	for _, w := range words {
		if v == w {
			*dst = v
			return
		}
	}
	e.fail(name, v, strings.Join(words, " or "))
}

// Level reads a log level: debug, info, warn or error.
func (e *Env) Level(name string, dst *slog.Level) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		e.fail(name, v, "debug, info, warn or error")
		return
	}
	*dst = l
}

// Parse reads a variable of a kind of its own: parse gets the value when
// it is set, and an error from it, which names what it wants, is
// reported with the variable.
func (e *Env) Parse(name string, parse func(string) error) {
	v := e.getenv(name)
	if v == "" {
		return
	}
	if err := parse(v); err != nil {
		e.fail(name, v, err.Error())
	}
}
