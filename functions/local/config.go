package main

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	env "github.com/hookstep/hookstep/internal/config"
	"github.com/hookstep/hookstep/internal/dashboard"
	"github.com/hookstep/hookstep/internal/webhook"
)

// config is local mode's configuration, read once from the environment.
// The README's configuration table lists every variable.
type config struct {
	Addr          string           // HOOKSTEP_ADDR
	DataDir       string           // HOOKSTEP_DATA_DIR
	AdminToken    string           // HOOKSTEP_ADMIN_TOKEN; "" = generate or keep the stored one
	HTTPTimeout   time.Duration    // HOOKSTEP_HTTP_TIMEOUT
	AllowPrivate  bool             // HOOKSTEP_ALLOW_PRIVATE_TARGETS
	RequireHTTPS  bool             // HOOKSTEP_REQUIRE_HTTPS
	Schedule      webhook.Schedule // HOOKSTEP_RETRY_SCHEDULE
	DisableAfter  time.Duration    // HOOKSTEP_DISABLE_AFTER
	Retention     time.Duration    // HOOKSTEP_RETENTION: of a message that names none (default 90 days)
	SweepInterval time.Duration    // HOOKSTEP_SWEEP_INTERVAL
	Workers       int              // HOOKSTEP_WORKERS
	LogFormat     string           // HOOKSTEP_LOG_FORMAT: text or json
	LogLevel      slog.Level       // HOOKSTEP_LOG_LEVEL: debug, info, warn, error
	PprofAddr     string           // HOOKSTEP_PPROF_ADDR: net/http/pprof listener; "" = off
	// The customers' portal.
	PortalFrameAncestors []string // HOOKSTEP_PORTAL_FRAME_ANCESTORS: origins that may frame it; none = no site
	PortalName           string   // HOOKSTEP_PORTAL_NAME: what it calls itself; "" = Webhooks
	PublicURL            string   // HOOKSTEP_PUBLIC_URL: base of the portal links; "" = from each request
}

// loadConfig reads the configuration, reporting every bad variable at once.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{
		Addr:          "127.0.0.1:8080",
		DataDir:       ".hookstep",
		HTTPTimeout:   15 * time.Second,
		AllowPrivate:  true,
		Schedule:      webhook.DefaultSchedule,
		DisableAfter:  7 * 24 * time.Hour,
		Retention:     webhook.MaxRetentionDays * 24 * time.Hour,
		SweepInterval: time.Minute,
		Workers:       64,
		LogFormat:     "text",
		LogLevel:      slog.LevelInfo,
	}
	e := env.New(getenv)
	e.String("HOOKSTEP_ADDR", &c.Addr)
	e.String("HOOKSTEP_DATA_DIR", &c.DataDir)
	e.String("HOOKSTEP_ADMIN_TOKEN", &c.AdminToken)
	e.Duration("HOOKSTEP_HTTP_TIMEOUT", &c.HTTPTimeout)
	e.Bool("HOOKSTEP_ALLOW_PRIVATE_TARGETS", &c.AllowPrivate)
	e.Bool("HOOKSTEP_REQUIRE_HTTPS", &c.RequireHTTPS)
	e.Schedule("HOOKSTEP_RETRY_SCHEDULE", &c.Schedule)
	e.Duration("HOOKSTEP_DISABLE_AFTER", &c.DisableAfter)
	e.DurationIn("HOOKSTEP_RETENTION", webhook.MinRetentionDays*24*time.Hour, webhook.MaxRetentionDays*24*time.Hour, &c.Retention)
	e.Duration("HOOKSTEP_SWEEP_INTERVAL", &c.SweepInterval)
	e.Int("HOOKSTEP_WORKERS", 1, 4096, &c.Workers)
	e.OneOf("HOOKSTEP_LOG_FORMAT", &c.LogFormat, "text", "json")
	e.Level("HOOKSTEP_LOG_LEVEL", &c.LogLevel)
	e.String("HOOKSTEP_PPROF_ADDR", &c.PprofAddr)
	e.Parse("HOOKSTEP_PORTAL_FRAME_ANCESTORS", func(v string) (err error) {
		c.PortalFrameAncestors, err = dashboard.ParseFrameAncestors(v)
		return err
	})
	e.String("HOOKSTEP_PORTAL_NAME", &c.PortalName)
	e.Parse("HOOKSTEP_PUBLIC_URL", func(v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return errors.New("the URL your users reach hookstep at, such as https://hooks.example.com")
		}
		c.PublicURL = strings.TrimSuffix(v, "/")
		return nil
	})
	return c, e.Err()
}
