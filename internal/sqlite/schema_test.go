package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hookstep/hookstep/internal/webhook"
	"github.com/hookstep/hookstep/internal/webhook/storetest"
)

// TestMigrateAttemptsByMessage: migration 7 moves the attempts of a
// schema-6 database into the table found by (msg_id, id), every column
// kept; they are read, listed by message and by endpoint, and still go
// with their message, and with their app.
func TestMigrateAttemptsByMessage(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hookstep.db")
	clock := storetest.NewClock(storetest.Epoch)
	now := clock.Now().UnixMilli()
	exp := clock.Now().Add(48 * time.Hour).UnixMilli()
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	stmts := append([]string{}, migrations[:6]...)
	stmts = append(stmts, "PRAGMA user_version = 6",
		fmt.Sprintf(`INSERT INTO apps (id, name, metadata, created_at, updated_at) VALUES ('app_1', 'a', '{}', %d, %d)`, now, now),
		fmt.Sprintf(`INSERT INTO endpoints (id, app_id, url, description, disabled, disabled_why, filter_types, channels, keys, headers, metadata, version, created_at, updated_at)
			VALUES ('ep_1', 'app_1', 'https://example.com/hook', '', 0, '', '[]', '[]', '[]', '{}', '{}', 1, %d, %d)`, now, now))
	for _, m := range []string{"msg_1", "msg_2"} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO messages (id, app_id, event_type, payload, channels, tags, timestamp, expires_at)
			VALUES ('%s', 'app_1', 'user.created', X'7B7D', '[]', '[]', %d, %d)`, m, now, exp))
	}
	for i, a := range []struct{ id, msg string }{{"atmpt_1", "msg_1"}, {"atmpt_2", "msg_1"}, {"atmpt_3", "msg_2"}} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO attempts (id, app_id, msg_id, endpoint_id, event_type, url, response, response_status_code,
			response_duration_ms, status, trigger_type, timestamp, expires_at)
			VALUES ('%s', 'app_1', '%s', 'ep_1', 'user.created', 'https://example.com/hook', 'body %d', %d, %d, %d, 0, %d, %d)`,
			a.id, a.msg, i, 500+i, 10+i, webhook.StatusFail, now+int64(i), exp))
	}
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%.60s: %v", stmt, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s := openAt(t, path, clock)
	var ddl string
	if err := s.r.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE name = 'attempts'").Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ddl, "UNIQUE (msg_id, id)") || strings.Contains(ddl, "REFERENCES apps") {
		t.Errorf("attempts after migration 7:\n%s", ddl)
	}
	got, err := s.GetAttempt(ctx, "app_1", "msg_1", "atmpt_2")
	if err != nil {
		t.Fatalf("GetAttempt: %v", err)
	}
	want := webhook.Attempt{ID: "atmpt_2", AppID: "app_1", MsgID: "msg_1", EndpointID: "ep_1", EventType: "user.created",
		URL: "https://example.com/hook", Response: "body 1", ResponseStatusCode: 501, ResponseDurationMs: 11,
		Status: webhook.StatusFail, Trigger: 0, Timestamp: time.UnixMilli(now + 1).UTC(), ExpiresAt: time.UnixMilli(exp).UTC()}
	if *got != want {
		t.Errorf("GetAttempt:\n got %+v\nwant %+v", *got, want)
	}
	ids := func(f webhook.AttemptFilter) string {
		t.Helper()
		f.AppID, f.Ascending = "app_1", true
		page, err := s.ListAttempts(ctx, f)
		if err != nil {
			t.Fatalf("ListAttempts(%+v): %v", f, err)
		}
		var out []string
		for _, a := range page.Items {
			out = append(out, a.ID)
		}
		return strings.Join(out, " ")
	}
	if got := ids(webhook.AttemptFilter{MsgID: "msg_1"}); got != "atmpt_1 atmpt_2" {
		t.Errorf("attempts of msg_1: %q", got)
	}
	if got := ids(webhook.AttemptFilter{EndpointID: "ep_1"}); got != "atmpt_1 atmpt_2 atmpt_3" {
		t.Errorf("attempts of ep_1: %q", got)
	}
	if _, err := s.w.conn.ExecContext(ctx, "DELETE FROM messages WHERE id = 'msg_1'"); err != nil {
		t.Fatal(err)
	}
	if got := ids(webhook.AttemptFilter{EndpointID: "ep_1"}); got != "atmpt_3" {
		t.Errorf("after msg_1 went: %q", got)
	}
	if err := s.DeleteApp(ctx, "app_1"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM attempts").Scan(&n); err != nil || n != 0 {
		t.Errorf("attempts after DeleteApp: %d, %v", n, err)
	}
}

// TestCreateMessageStoresDeliveriesInChunks: a fan-out wider than one
// INSERT (deliveryRows) is stored whole, but a delivery to an endpoint
// deleted since it was listed, or to another app's endpoint, is dropped.
func TestCreateMessageStoresDeliveriesInChunks(t *testing.T) {
	f := newFixture(t)
	var ds []webhook.Delivery
	msg := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: []byte(`{}`), Timestamp: f.clock.Now()}
	var gone string
	for i := range 2*deliveryRows + 6 {
		ep := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: f.app.ID, URL: "https://example.com/hook", Version: 1}
		if err := f.s.CreateEndpoint(f.ctx, ep); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, webhook.NewDelivery(msg, ep.ID))
		if i == deliveryRows+3 {
			gone = ep.ID
		}
	}
	if err := f.s.DeleteEndpoint(f.ctx, f.app.ID, gone); err != nil {
		t.Fatal(err)
	}
	other := &webhook.App{ID: webhook.NewID(webhook.PrefixApp), Name: "other"}
	if err := f.s.CreateApp(f.ctx, other); err != nil {
		t.Fatal(err)
	}
	theirs := &webhook.Endpoint{ID: webhook.NewID(webhook.PrefixEndpoint), AppID: other.ID, URL: "https://example.com/o", Version: 1}
	if err := f.s.CreateEndpoint(f.ctx, theirs); err != nil {
		t.Fatal(err)
	}
	ds = append(ds[:5], append([]webhook.Delivery{webhook.NewDelivery(msg, theirs.ID)}, ds[5:]...)...)
	if err := f.s.CreateMessage(f.ctx, msg, ds); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	var n int
	if err := f.s.r.QueryRowContext(f.ctx, "SELECT COUNT(*) FROM deliveries WHERE msg_id = ?", msg.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ds)-2 {
		t.Errorf("%d deliveries stored, want %d", n, len(ds)-2)
	}
	if _, err := f.s.GetDelivery(f.ctx, other.ID, msg.ID, theirs.ID); !webhook.IsNotFound(err) {
		t.Errorf("the other app's endpoint's delivery: %v, want NotFound", err)
	}
	var cross int
	if err := f.s.r.QueryRowContext(f.ctx, "SELECT COUNT(*) FROM deliveries WHERE endpoint_id = ?", theirs.ID).Scan(&cross); err != nil || cross != 0 {
		t.Errorf("deliveries to the other app's endpoint: %d, %v", cross, err)
	}
	if _, err := f.s.GetDelivery(f.ctx, f.app.ID, msg.ID, gone); !webhook.IsNotFound(err) {
		t.Errorf("the deleted endpoint's delivery: %v, want NotFound", err)
	}
	// The same endpoint twice is refused whole.
	twice := &webhook.Message{ID: webhook.NewID(webhook.PrefixMessage), AppID: f.app.ID, EventType: "user.created",
		Payload: []byte(`{}`), Timestamp: f.clock.Now()}
	err := f.s.CreateMessage(f.ctx, twice, []webhook.Delivery{webhook.NewDelivery(twice, f.ep.ID), webhook.NewDelivery(twice, f.ep.ID)})
	if !webhook.IsConflict(err) {
		t.Errorf("an endpoint twice: %v, want Conflict", err)
	}
}

// TestRecordAttemptAdvancesFrom: with the delivery the attempt read
// (From), RecordAttempt returns it advanced, as GetDelivery then reads
// it — also when From was made in memory, its times finer than the
// store's millisecond; a From that is not the attempt's delivery and run
// is not trusted: the delivery is read back as stored.
func TestRecordAttemptAdvancesFrom(t *testing.T) {
	f := newFixture(t)
	for _, kind := range []string{"read", "in memory", "of another run"} {
		msg := f.message(time.Hour)
		from, err := f.s.GetDelivery(f.ctx, f.app.ID, msg.ID, f.ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		switch other := *from; kind {
		case "in memory":
			other.CreatedAt = other.CreatedAt.Add(123456 * time.Nanosecond)
			from = &other
		case "of another run":
			other.Run, other.EventType = 7, "not.this.one"
			from = &other
		}
		f.clock.Advance(time.Second)
		a := webhook.Attempt{ID: webhook.NewID(webhook.PrefixAttempt), AppID: f.app.ID, MsgID: msg.ID, EndpointID: f.ep.ID,
			EventType: msg.EventType, URL: f.ep.URL, Status: webhook.StatusFail, Timestamp: f.clock.Now(), ExpiresAt: msg.ExpiresAt}
		got, err := f.s.RecordAttempt(f.ctx, webhook.AttemptResult{Attempt: a, Attempts: 1, Status: webhook.StatusSending,
			NextAttemptAt: f.clock.Now().Add(time.Minute), From: from})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := f.s.GetDelivery(f.ctx, f.app.ID, msg.ID, f.ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(stored, got); d != "" {
			t.Errorf("From %s: RecordAttempt's delivery differs from the stored one (-stored +got):\n%s", kind, d)
		}
	}
}
