package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"strconv"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// funcs are the template functions.
var funcs = template.FuncMap{
	"time":        timeHTML,
	"json":        prettyJSON,
	"statusLabel": statusLabel,
	"statusClass": statusClass,
	"state":       stateOf,
	"code":        responseCode,
	"trigger": func(t webhook.Trigger) string {
		if t == webhook.TriggerManual {
			return "manual"
		}
		return "scheduled"
	},
}

// timeHTML writes t as a <time> element in UTC, which the page's script
// rewrites in the viewer's time zone.
func timeHTML(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	return template.HTML(fmt.Sprintf(`<time datetime="%s">%s</time>`,
		t.Format(time.RFC3339), t.Format("2006-01-02 15:04:05 UTC")))
}

// prettyJSON indents JSON for reading; other bytes are shown as they are.
func prettyJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return string(b)
	}
	return buf.String()
}

func statusLabel(s webhook.Status) string {
	switch s {
	case webhook.StatusSuccess:
		return "Succeeded"
	case webhook.StatusFail:
		return "Failed"
	case webhook.StatusCanceled:
		return "Canceled"
	case webhook.StatusSending:
		return "Retrying"
	}
	return "Pending"
}

func statusClass(s webhook.Status) string {
	switch s {
	case webhook.StatusSuccess:
		return "ok"
	case webhook.StatusFail, webhook.StatusCanceled:
		return "fail"
	}
	return "pending"
}

func responseCode(code int) string {
	if code == 0 {
		return "no response"
	}
	return strconv.Itoa(code)
}

// endpointState is how an endpoint's status is shown: a label, its CSS
// class, since when, and why.
type endpointState struct {
	Label, Class, Why string
	Since             time.Time
}

func stateOf(ep webhook.Endpoint) endpointState {
	switch {
	case ep.Disabled && ep.DisabledWhy == webhook.DisabledFailing:
		return endpointState{Label: "Disabled", Class: "off", Since: ep.DisabledAt,
			Why: "Disabled automatically because every delivery to it failed for a week."}
	case ep.Disabled:
		return endpointState{Label: "Disabled", Class: "off", Since: ep.DisabledAt,
			Why: "Disabled by hand. Nothing is sent to it until it is enabled."}
	case !ep.FailingSince.IsZero():
		return endpointState{Label: "Failing", Class: "fail", Since: ep.FailingSince,
			Why: "Deliveries are failing. If they keep failing for a week, the endpoint is disabled."}
	}
	return endpointState{Label: "Enabled", Class: "ok"}
}
