package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hookstep/hookstep/internal/webhook"
)

func vars(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := loadConfig(vars(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != ".hookstep" || !c.AllowPrivate ||
		c.HTTPTimeout != 15*time.Second || c.DisableAfter != 168*time.Hour || c.SweepInterval != time.Minute || c.Retention != 90*24*time.Hour {
		t.Errorf("defaults: got %+v", c)
	}
	if diff := cmp.Diff(webhook.DefaultSchedule, c.Schedule); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
}

func TestLoadConfigOverrides(t *testing.T) {
	c, err := loadConfig(vars(map[string]string{
		"HOOKSTEP_ADDR":                   "127.0.0.1:9999",
		"HOOKSTEP_RETRY_SCHEDULE":         "0s,1s,2s",
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS":  "false",
		"HOOKSTEP_DISABLE_AFTER":          "1h",
		"HOOKSTEP_WORKERS":                "3",
		"HOOKSTEP_LOG_FORMAT":             "JSON",
		"HOOKSTEP_RETENTION":              "720h",
		"HOOKSTEP_PORTAL_FRAME_ANCESTORS": "https://app.example.com, http://localhost:3000",
		"HOOKSTEP_PORTAL_NAME":            "Hooks",
		"HOOKSTEP_PUBLIC_URL":             "https://hooks.example.com/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"https://app.example.com", "http://localhost:3000"}, c.PortalFrameAncestors); diff != "" {
		t.Errorf("frame ancestors (-want +got):\n%s", diff)
	}
	if c.PortalName != "Hooks" || c.PublicURL != "https://hooks.example.com" {
		t.Errorf("portal name %q, public URL %q", c.PortalName, c.PublicURL)
	}
	want := webhook.Schedule{0, time.Second, 2 * time.Second}
	if diff := cmp.Diff(want, c.Schedule); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	if c.Addr != "127.0.0.1:9999" || c.AllowPrivate || c.DisableAfter != time.Hour || c.Workers != 3 || c.LogFormat != "json" || c.Retention != 30*24*time.Hour {
		t.Errorf("got %+v", c)
	}
}

func TestLoadConfigReportsEveryBadVariable(t *testing.T) {
	_, err := loadConfig(vars(map[string]string{
		"HOOKSTEP_HTTP_TIMEOUT":           "soon",
		"HOOKSTEP_RETRY_SCHEDULE":         "1s,-1s",
		"HOOKSTEP_ALLOW_PRIVATE_TARGETS":  "maybe",
		"HOOKSTEP_WORKERS":                "0",
		"HOOKSTEP_SWEEP_INTERVAL":         "0s",
		"HOOKSTEP_RETENTION":              "2160h1s",
		"HOOKSTEP_PORTAL_FRAME_ANCESTORS": "https://app.example.com/path",
		"HOOKSTEP_PUBLIC_URL":             "hooks.example.com",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"HOOKSTEP_HTTP_TIMEOUT", "HOOKSTEP_RETRY_SCHEDULE", "HOOKSTEP_ALLOW_PRIVATE_TARGETS", "HOOKSTEP_WORKERS", "HOOKSTEP_SWEEP_INTERVAL", "HOOKSTEP_RETENTION", "HOOKSTEP_PORTAL_FRAME_ANCESTORS", "HOOKSTEP_PUBLIC_URL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}
