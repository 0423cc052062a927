// Package sqlite is the webhook.Store of local mode: one SQLite database
// file, through the pure-Go driver modernc.org/sqlite (no cgo). Beyond the
// Store it is local mode's durable delivery queue (ClaimDue, NextDue) and
// purges expired payloads (PurgeExpired).
//
// Each entity has its table. Columns that queries filter or sort on are
// real, indexed columns: ids, app_id, uid, event_type, status, timestamps as
// unix milliseconds, next_attempt_at, dispatched, failing_since. Maps, lists
// and signing keys are JSON text; payloads and stored responses are kept as
// the exact bytes given. A zero time.Time is stored as NULL. Deliveries keep
// a copy of their message's expiry so that reads can hide them with it.
//
// The database runs in WAL mode with synchronous=FULL, so a write that
// returned survives a crash or power loss, and enforces foreign keys, so
// deleting an app or an endpoint deletes what hangs off it. The Store uses a
// single connection: statements are serialised, and every write that
// touches more than one row or reads before it writes runs in one
// transaction (BEGIN IMMEDIATE, which also orders writers of other
// processes), so RecordAttempt, DisableEndpoint and CancelDeliveries never
// lose each other's updates.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is a webhook.Store in one SQLite database. It is safe for
// concurrent use.
type Store struct {
	db    *sql.DB
	clock webhook.Clock
}

var _ webhook.Store = (*Store)(nil)

// Open opens the database at path, creating it if needed, and brings its
// schema up to date. path is a file path or ":memory:" (a private database
// that lives as long as the Store). The clock decides which messages,
// attempts and idempotency records have expired; nil means the system
// clock.
func Open(ctx context.Context, path string, clock webhook.Clock) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: open %q: path must be non-empty and contain no '?' or '#'", path)
	}
	if clock == nil {
		clock = webhook.SystemClock{}
	}
	params := url.Values{
		"_pragma": {
			"busy_timeout(10000)", // wait for other processes' writes
			"foreign_keys(1)",
			"journal_mode(WAL)",
			"synchronous(FULL)", // an acknowledged write survives power loss
		},
		"_txlock": {"immediate"}, // take the write lock at BEGIN: no upgrade deadlocks
	}
	db, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One connection: writes are serialised in this process, and a
	// ":memory:" database is one database.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1) // never close it: that would drop a ":memory:" database
	s := &Store{db: db, clock: clock}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close() // the migration error is the one to report
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// migrate applies the migrations the database has not seen yet, in one
// transaction, and records the schema version in PRAGMA user_version.
func (s *Store) migrate(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this program's %d", version, len(migrations))
		}
		for i := version; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", i+1, err)
			}
		}
		// PRAGMA takes no parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		return nil
	})
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// inTx runs fn in a transaction and commits it if fn returns nil. fn must
// use tx, never s.db: the only connection is the transaction's.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one that matters
		return err
	}
	return tx.Commit()
}

// now is the store's clock in unix milliseconds, for expiry checks.
func (s *Store) now() int64 { return s.clock.Now().UnixMilli() }

// visible is the condition that hides expired rows; its one argument is
// s.now().
const visible = "(expires_at IS NULL OR expires_at > ?)"

// wrap adds the operation to an error, once: domain errors (NotFound,
// Conflict) pass through unchanged.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var we *webhook.Error
	if errors.As(err, &we) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// constraint reports whether err is a violation of the given extended
// constraint code.
func constraint(err error, codes ...int) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code() == c {
			return true
		}
	}
	return false
}

func isUnique(err error) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

func isForeignKey(err error) bool {
	return constraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}

// ms stores a time as unix milliseconds, the zero time as NULL.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// nullTime reads a time stored by ms.
type nullTime struct{ t *time.Time }

// Scan implements sql.Scanner.
func (n nullTime) Scan(v any) error {
	var i sql.NullInt64
	if err := i.Scan(v); err != nil {
		return err
	}
	*n.t = time.Time{}
	if i.Valid {
		*n.t = time.UnixMilli(i.Int64).UTC()
	}
	return nil
}

// jsonText stores v as JSON text.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// jsonCol reads a JSON column into the value dst points to.
type jsonCol struct{ dst any }

// Scan implements sql.Scanner.
func (j jsonCol) Scan(v any) error {
	var b []byte
	switch v := v.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case nil:
		return nil
	default:
		return fmt.Errorf("JSON column holds %T", v)
	}
	return json.Unmarshal(b, j.dst)
}

// nullString stores "" as NULL, so that unique indexes ignore absent uids
// and event ids.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// optString reads a column stored by nullString.
type optString struct{ s *string }

// Scan implements sql.Scanner.
func (o optString) Scan(v any) error {
	var n sql.NullString
	if err := n.Scan(v); err != nil {
		return err
	}
	*o.s = n.String
	return nil
}

// optInt stores and reads a nullable *int column.
type optInt struct{ p **int }

// Scan implements sql.Scanner.
func (o optInt) Scan(v any) error {
	var n sql.NullInt64
	if err := n.Scan(v); err != nil {
		return err
	}
	*o.p = nil
	if n.Valid {
		i := int(n.Int64)
		*o.p = &i
	}
	return nil
}

func intOrNull(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// placeholders returns "?, ?, ..." for n arguments.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// rowsAffected returns the number of rows a statement changed.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
