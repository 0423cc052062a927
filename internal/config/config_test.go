package config

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

func TestEnvReadsEachKind(t *testing.T) {
	vars := map[string]string{
		"S": "x", "D": "90s", "B": "false", "I": "7", "SCHED": "0s,1s", "WORD": "JSON", "LEVEL": "warn", "REQ": "r",
	}
	e := New(func(k string) string { return vars[k] })
	var (
		s, req, word = "default", "", "text"
		d            = time.Second
		b            = true
		i            = 1
		sched        webhook.Schedule
		level        slog.Level
		untouched    = "keep"
	)
	e.String("S", &s)
	e.String("UNSET", &untouched)
	e.Required("REQ", &req)
	e.Duration("D", &d)
	e.Bool("B", &b)
	e.Int("I", 1, 10, &i)
	e.Schedule("SCHED", &sched)
	e.OneOf("WORD", &word, "text", "json")
	e.Level("LEVEL", &level)
	var parsed string
	e.Parse("S", func(v string) error { parsed = "<" + v + ">"; return nil })
	e.Parse("UNSET", func(string) error { t.Error("Parse calls parse for an unset variable"); return nil })
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	if s != "x" || req != "r" || d != 90*time.Second || b || i != 7 || sched.String() != "0s,1s" ||
		word != "json" || level != slog.LevelWarn || untouched != "keep" || parsed != "<x>" {
		t.Errorf("got s=%q req=%q d=%s b=%v i=%d sched=%s word=%q level=%v untouched=%q", s, req, d, b, i, sched, word, level, untouched)
	}
}

func TestEnvReportsEveryProblem(t *testing.T) {
	vars := map[string]string{"D": "soon", "D0": "0s", "B": "maybe", "I": "11", "SCHED": "1s,-1s", "WORD": "xml", "LEVEL": "loud", "P": "odd"}
	e := New(func(k string) string { return vars[k] })
	var (
		d     time.Duration
		b     bool
		i     int
		sched webhook.Schedule
		word  string
		level slog.Level
		req   string
	)
	e.Duration("D", &d)
	e.Duration("D0", &d)
	e.Bool("B", &b)
	e.Int("I", 1, 10, &i)
	e.Schedule("SCHED", &sched)
	e.OneOf("WORD", &word, "text", "json")
	e.Level("LEVEL", &level)
	e.Required("REQ", &req)
	e.Parse("P", func(string) error { return errors.New("an even thing") })
	err := e.Err()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"D=", "D0=", "B=", "I=", "SCHED=", "WORD=", "LEVEL=", "REQ is not set", `P="odd": want an even thing`} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
}
