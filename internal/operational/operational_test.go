package operational_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svix/svix-webhooks/go/models"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/sqlite"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

func TestAttemptType(t *testing.T) {
	tests := []struct {
		name      string
		number    int
		ok, final bool
		want      string
	}{
		{"first success", 1, true, false, ""},
		{"success after three failures", 4, true, false, ""},
		{"success after the failing event", 5, true, false, operational.MessageAttemptRecovered},
		{"first failure", 1, false, false, ""},
		{"third failure", 3, false, false, ""},
		{"fourth failure", 4, false, false, operational.MessageAttemptFailing},
		{"fifth failure", 5, false, false, ""},
		{"last failure", 9, false, true, operational.MessageAttemptExhausted},
		{"last failure of a short schedule", 2, false, true, operational.MessageAttemptExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := operational.AttemptType(tt.number, tt.ok, tt.final); got != tt.want {
				t.Errorf("AttemptType(%d, %v, %v) = %q, want %q", tt.number, tt.ok, tt.final, got, tt.want)
			}
		})
	}
}

// recorder is a Publisher that keeps what it is given, or fails.
type recorder struct {
	msgs []*webhook.Message
	err  error
}

func (r *recorder) Publish(_ context.Context, msg *webhook.Message) error {
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, msg)
	return nil
}

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T, withApp bool) (*operational.Emitter, *recorder, webhook.Store, *bytes.Buffer) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hookstep.db"), storetest.NewClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if withApp {
		if _, err := operational.EnsureApp(ctx, store, now); err != nil {
			t.Fatal(err)
		}
		if _, err := operational.EnsureApp(ctx, store, now); err != nil {
			t.Fatalf("EnsureApp again: %v", err)
		}
		if err := store.CreateEndpoint(ctx, &webhook.Endpoint{ID: "ep_ops", AppID: operational.AppID, URL: "https://ops.example/hooks",
			Keys: []webhook.SigningKey{{Key: []byte("0123456789abcdef01234567")}}, Version: 1, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.CreateApp(ctx, &webhook.App{ID: "app_1", UID: "acme", Name: "Acme", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	logs := &bytes.Buffer{}
	e := operational.New(operational.Config{Store: store, Publisher: rec, Clock: storetest.NewClock(now),
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Retention: 24 * time.Hour})
	return e, rec, store, logs
}

var ep = &webhook.Endpoint{ID: "ep_1", AppID: "app_1", UID: "hook"}

func TestNoEventsBeforeAnOperationalEndpoint(t *testing.T) {
	e, rec, store, _ := setup(t, false)
	ctx := context.Background()
	e.Endpoint(ctx, operational.EndpointCreated, nil, ep)
	if len(rec.msgs) != 0 {
		t.Errorf("published %d messages without the reserved app, want 0", len(rec.msgs))
	}
	// A GET of the operational routes makes the reserved app; with no
	// endpoint in it, events are still dropped.
	if _, err := operational.EnsureApp(ctx, store, now); err != nil {
		t.Fatal(err)
	}
	e.Endpoint(ctx, operational.EndpointCreated, nil, ep)
	if len(rec.msgs) != 0 {
		t.Errorf("published %d messages with the reserved app but no operational endpoint, want 0", len(rec.msgs))
	}
}

func TestNothingAboutTheReservedApp(t *testing.T) {
	e, rec, _, _ := setup(t, true)
	ctx := context.Background()
	own := &webhook.Endpoint{ID: "ep_ops", AppID: operational.AppID}
	e.Endpoint(ctx, operational.EndpointCreated, nil, own)
	e.Disabled(ctx, nil, own, operational.TriggerAutomatic, now)
	e.Changed(ctx, nil, own, true)
	e.Attempt(ctx, &webhook.Message{ID: "msg_1", AppID: operational.AppID},
		&webhook.Attempt{ID: "atmpt_1", AppID: operational.AppID, EndpointID: "ep_ops", Status: webhook.StatusFail}, 9, true)
	e.TaskFinished(ctx, &webhook.Task{ID: "qtask_1", AppID: operational.AppID})
	if len(rec.msgs) != 0 {
		t.Errorf("published %d events about the reserved app's own endpoints, want 0", len(rec.msgs))
	}
	var none *operational.Emitter // components without operational webhooks
	none.Endpoint(ctx, operational.EndpointCreated, nil, ep)
	none.Attempt(ctx, &webhook.Message{}, &webhook.Attempt{AppID: "app_1"}, 4, false)
}

// TestEventShapes: every event decodes into the SDK's model of it, with
// the fields hookstep knows, as a message of the reserved app.
func TestEventShapes(t *testing.T) {
	e, rec, _, _ := setup(t, true)
	ctx := context.Background()
	msg := &webhook.Message{ID: "msg_1", AppID: "app_1", EventID: "evt-1"}
	failed := &webhook.Attempt{ID: "atmpt_4", AppID: "app_1", EndpointID: "ep_1", MsgID: "msg_1",
		Status: webhook.StatusFail, ResponseStatusCode: 503, Timestamp: now}

	e.Changed(ctx, nil, &webhook.Endpoint{ID: "ep_1", AppID: "app_1", UID: "hook", Disabled: true, FailingSince: now.Add(-time.Hour)}, false)
	e.Disabled(ctx, nil, ep, operational.TriggerAutomatic, now.Add(-time.Hour))
	e.Attempt(ctx, msg, failed, 4, false)
	e.Attempt(ctx, msg, failed, 4, true) // a four-attempt schedule: failing and exhausted
	e.TaskFinished(ctx, &webhook.Task{ID: "qtask_1", AppID: "app_1", Kind: webhook.TaskEndpointRecover,
		Status: webhook.TaskFinished, Data: json.RawMessage(`{"recovered":3}`)})

	var types []string
	for _, m := range rec.msgs {
		types = append(types, m.EventType)
		if m.AppID != operational.AppID || !m.ExpiresAt.Equal(now.Add(24*time.Hour)) || !strings.HasPrefix(m.ID, webhook.PrefixMessage) {
			t.Errorf("message %+v: want one of the reserved app, expiring after the retention", m)
		}
	}
	want := []string{"endpoint.updated", "endpoint.disabled", "endpoint.disabled", "message.attempt.failing",
		"message.attempt.failing", "message.attempt.exhausted", "background_task.finished"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("events %v, want %v", types, want)
	}

	var manual models.EndpointDisabledEvent
	decode(t, rec.msgs[1], &manual)
	if manual.Type != "endpoint.disabled" || manual.Data.AppUid == nil || *manual.Data.AppUid != "acme" ||
		*manual.Data.EndpointUid != "hook" || *manual.Data.Trigger != models.ENDPOINTDISABLEDTRIGGER_MANUAL ||
		manual.Data.FailSince == nil || !manual.Data.FailSince.Equal(now.Add(-time.Hour)) {
		t.Errorf("manual disable: %s", rec.msgs[1].Payload)
	}
	var auto models.EndpointDisabledEvent
	decode(t, rec.msgs[2], &auto)
	if *auto.Data.Trigger != models.ENDPOINTDISABLEDTRIGGER_AUTOMATIC {
		t.Errorf("automatic disable: %s", rec.msgs[2].Payload)
	}
	var failing models.MessageAttemptFailingEvent
	decode(t, rec.msgs[3], &failing)
	if failing.Data.MsgId != "msg_1" || *failing.Data.MsgEventId != "evt-1" || failing.Data.LastAttempt.Id != "atmpt_4" ||
		failing.Data.LastAttempt.ResponseStatusCode != 503 || !failing.Data.LastAttempt.Timestamp.Equal(now) {
		t.Errorf("failing: %s", rec.msgs[3].Payload)
	}
	var exhausted models.MessageAttemptExhaustedEvent
	decode(t, rec.msgs[5], &exhausted)
	if exhausted.Data.EndpointId != "ep_1" || exhausted.Data.AppId != "app_1" {
		t.Errorf("exhausted: %s", rec.msgs[5].Payload)
	}
	var task models.BackgroundTaskFinishedEvent
	decode(t, rec.msgs[6], &task)
	if task.Data.TaskId != "qtask_1" || task.Data.Status != models.BACKGROUNDTASKSTATUS_FINISHED ||
		task.Data.Task != models.BACKGROUNDTASKTYPE_ENDPOINT_RECOVER || task.Data.Data["recovered"] != float64(3) {
		t.Errorf("task: %s", rec.msgs[6].Payload)
	}
}

func decode(t *testing.T, m *webhook.Message, v any) {
	t.Helper()
	if err := json.Unmarshal(m.Payload, v); err != nil {
		t.Fatalf("%s does not decode as the SDK's model: %v", m.Payload, err)
	}
}

// TestPublishFailureIsLogged: the change that caused an event stands;
// the lost event is logged with its type.
func TestPublishFailureIsLogged(t *testing.T) {
	e, rec, _, logs := setup(t, true)
	rec.err = errors.New("store down")
	e.Endpoint(context.Background(), operational.EndpointDeleted, nil, ep)
	if !strings.Contains(logs.String(), "operational webhook not sent") || !strings.Contains(logs.String(), "endpoint.deleted") {
		t.Errorf("logs %q, want the lost endpoint.deleted", logs)
	}
}

// appReads counts GetApp calls.
type appReads struct {
	webhook.Store
	n int
}

func (s *appReads) GetApp(ctx context.Context, idOrUID string) (*webhook.App, error) {
	s.n++
	return s.Store.GetApp(ctx, idOrUID)
}

// TestNoAppReadWithoutAListener: while no operational endpoint exists,
// an event reads nothing to build itself (the app's uid); once one does,
// it does, once per event.
func TestNoAppReadWithoutAListener(t *testing.T) {
	for _, listening := range []bool{false, true} {
		_, rec, store, logs := setup(t, listening)
		reads := &appReads{Store: store}
		e := operational.New(operational.Config{Store: reads, Publisher: rec, Clock: storetest.NewClock(now),
			Logger: slog.New(slog.NewTextHandler(logs, nil)), Retention: 24 * time.Hour})
		ctx := context.Background()
		e.Endpoint(ctx, operational.EndpointUpdated, nil, ep)
		e.Disabled(ctx, nil, ep, operational.TriggerAutomatic, now)
		e.Attempt(ctx, &webhook.Message{ID: "msg_1", AppID: "app_1"}, &webhook.Attempt{ID: "atmpt_1", AppID: "app_1", MsgID: "msg_1",
			EndpointID: ep.ID, Status: webhook.StatusFail, Timestamp: now}, operational.FailingAttempt, true) // failing and exhausted: 2 events, 1 read
		want := map[bool]int{false: 0, true: 3}[listening]
		if reads.n != want || len(rec.msgs) != map[bool]int{false: 0, true: 4}[listening] {
			t.Errorf("listening %v: %d app reads, %d events; want %d reads", listening, reads.n, len(rec.msgs), want)
		}
	}
}
