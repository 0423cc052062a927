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
// deleting an app or an endpoint deletes what hangs off it. Every write
// runs in a transaction (BEGIN IMMEDIATE, which also orders writers of
// other processes) on the one write connection, so RecordAttempt,
// DisableEndpoint and CancelDeliveries never lose each other's updates;
// concurrent writes are committed in groups, each write still returning
// only once it is durable (conn.go). Reads outside a write go to a pool of
// read-only connections, which WAL lets run alongside the writer, each
// seeing the database as of its last commit. Statements are prepared once
// per connection.
//
// The write path is the one local mode's throughput hangs on, so it does
// as little as it can: a message, its deliveries (one INSERT per 32) and
// its Idempotency-Key's claim (CreateMessageKeyed) are one write; an
// attempt is three statements, its row found by one unique index (msg_id,
// id), and the attempts of a group commit share theirs: one UPDATE each
// for their deliveries, one INSERT for all their rows, one UPDATE per
// endpoint for its health (recordAll, a batchKind); a group commit uses
// no savepoint unless one of its writes fails after writing.
//
// Its process making every write (local mode holds the data dir's lock),
// the Store counts the writes that change what attempts and fan-outs
// read (Changes, webhook.ChangeCounter) and keeps the apps GetApp read
// while that count stands: an API request then reads nothing to find its
// app.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is a webhook.Store in one SQLite database. It is safe for
// concurrent use.
type Store struct {
	wdb     *sql.DB       // the write connection's pool (of one)
	db      *sql.Conn     // the write connection, held for the Store's life
	w       *writer       // runs every write on db
	changes atomic.Uint64 // Changes: counts writes but the quiet ones
	apps    appCache      // GetApp's
	r       *reader       // the read-only connections
	clock   webhook.Clock
	cleanup func() error // removes a ":memory:" database's file
}

// readConns is the number of read connections. Reads are short; a few
// connections let them overlap the writer and each other.
const readConns = 4

var _ webhook.Store = (*Store)(nil)

// Open opens the database at path, creating it if needed, and brings its
// schema up to date. path is a file path or ":memory:": a private database
// that lives as long as the Store (a temporary file removed by Close, since
// the read and write connections must share it). The clock decides which
// messages, attempts and idempotency records have expired; nil means the
// system clock.
func Open(ctx context.Context, path string, clock webhook.Clock) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: open %q: path must be non-empty and contain no '?' or '#'", path)
	}
	if clock == nil {
		clock = webhook.SystemClock{}
	}
	s := &Store{clock: clock, cleanup: func() error { return nil }}
	if path == ":memory:" {
		dir, err := os.MkdirTemp("", "hookstep-sqlite-")
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		s.cleanup = func() error { return os.RemoveAll(dir) }
		path = filepath.Join(dir, "hookstep.db")
	}
	if err := s.open(ctx, path); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, path string) error {
	params := url.Values{
		"_pragma": {
			"busy_timeout(10000)", // wait for other processes' writes
			"foreign_keys(1)",
			"journal_mode(WAL)",
			"synchronous(FULL)", // an acknowledged write survives power loss
			// Savepoint and statement journals (and sorts) in memory: a
			// group commit run again with savepoints (conn.go) would
			// otherwise copy every page it changes to a temporary file.
			"temp_store(MEMORY)",
		},
		"_txlock": {"immediate"}, // take the write lock at BEGIN: no upgrade deadlocks
	}
	db, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return err
	}
	// One write connection, never closed while the Store is open.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := migrate(ctx, db); err != nil {
		_ = db.Close() // the migration error is the one to report
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return err
	}

	// Read connections: created after the migration, so that they see
	// the WAL journal mode it set.
	rdb, err := sql.Open("sqlite", path+"?"+url.Values{"_pragma": {"busy_timeout(10000)", "query_only(1)", "temp_store(MEMORY)"}}.Encode())
	if err != nil {
		_ = conn.Close()
		_ = db.Close()
		return err
	}
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	s.wdb, s.db, s.w, s.r = db, conn, newWriter(conn), &reader{db: rdb}
	return nil
}

// Close waits for the writes in progress, then closes the database.
func (s *Store) Close() error {
	err := errors.Join(s.w.close(), s.r.close(), s.wdb.Close(), s.cleanup())
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// migrate applies the migrations the database has not seen yet, in one
// transaction, and records the schema version in PRAGMA user_version.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	err = func() error {
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
	}()
	if err != nil {
		return err
	}
	return tx.Commit()
}

// querier is what the reader, the writer, *sql.DB and *sql.Tx have in
// common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// inTx runs fn in a write transaction and returns once it has committed,
// or fn's error (its writes rolled back). fn must use tx for every
// statement: the write connection is tx's. Its statements are not
// canceled with ctx (see conn.go).
//
// fn may run more than once; it must set, not accumulate, what it
// returns. When another write of its group fails, the group is rolled
// back and run again (conn.go), so fn must assign its results to the
// variables it captures (resetting them first if a path leaves them
// alone), never append to a slice declared outside it or add to an outer
// counter, and do no other side effect (a channel send, a log line) that
// a second run would repeat. Only the last run's results count: the
// caller returns after the commit of that run.
//
// The write counts as a change (Changes) once it has committed (or
// failed), before inTx returns; writes that change nothing an attempt or
// a fan-out reads use quietTx instead. Not before it commits: a reader
// reads the count, then the store, and keeps what it read while the
// count stays the same, so a count that moved for a write still queued
// would let it keep, as current, what it read without the write. Moved
// after the commit, the count at worst makes a reader that already saw
// the write read once more.
func (s *Store) inTx(ctx context.Context, fn func(tx querier) error) error {
	defer s.changes.Add(1)
	return s.w.do(ctx, fn)
}

// inTxFirst is inTx for a write that a request waits on: it commits ahead
// of the other writes queued with it (conn.go).
func (s *Store) inTxFirst(ctx context.Context, fn func(tx querier) error) error {
	defer s.changes.Add(1)
	return s.w.doFirst(ctx, fn)
}

// quietTx is inTx for the writes that change nothing a held delivery's
// attempt or a message's fan-out has read, and leave Changes alone: new
// messages and their deliveries, attempts (a delivery's own state, which
// only its claim's holder changes, and the endpoint's failing_since,
// which attempts do not read), claims, dispatch records and idempotency
// keys.
func (s *Store) quietTx(ctx context.Context, fn func(tx querier) error) error {
	return s.w.do(ctx, fn)
}

// quietTxFirst is quietTx for a write that a request waits on.
func (s *Store) quietTxFirst(ctx context.Context, fn func(tx querier) error) error {
	return s.w.doFirst(ctx, fn)
}

// Changes implements webhook.ChangeCounter: this Store's process makes
// every write to its database (local mode holds the data dir's lock), so
// a count in memory sees them all.
func (s *Store) Changes() uint64 { return s.changes.Load() }

// exec runs one write statement in a transaction of its own.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execWith(ctx, s.inTx, query, args...)
}

// quietExec is exec for a quiet write (quietTx).
func (s *Store) quietExec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execWith(ctx, s.quietTx, query, args...)
}

// execWith runs one write statement through write (inTx or quietTx).
func execWith(ctx context.Context, write func(context.Context, func(querier) error) error, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := write(ctx, func(tx querier) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
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

// bytesCol reads a BLOB column into a copy of its bytes, as scanning to a
// *[]byte does, for fields of a named byte-slice type (json.RawMessage).
type bytesCol struct{ dst *[]byte }

// Scan implements sql.Scanner.
func (b bytesCol) Scan(v any) error {
	switch v := v.(type) {
	case []byte:
		*b.dst = bytes.Clone(v)
	case string:
		*b.dst = []byte(v)
	case nil:
		*b.dst = nil
	default:
		return fmt.Errorf("BLOB column holds %T", v)
	}
	return nil
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

// qualified prefixes each column of a list like deliveryCols with a
// table's alias, for a join.
func qualified(alias, cols string) string {
	names := strings.Split(cols, ",")
	for i, c := range names {
		names[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(names, ", ")
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
