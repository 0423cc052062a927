package sqlite

// migrations are the schema changes in order; migrations[i] takes the
// database from version i to i+1 (PRAGMA user_version). Append only: never
// edit a migration that has shipped.
var migrations = []string{
	// 1: the initial schema. Times are unix milliseconds (NULL = zero
	// time); JSON columns hold maps and lists.
	`
CREATE TABLE apps (
	id            TEXT PRIMARY KEY,
	uid           TEXT UNIQUE,     -- NULL when the app has none
	name          TEXT NOT NULL,
	metadata      TEXT NOT NULL,   -- JSON object
	throttle_rate INTEGER,
	created_at    INTEGER,
	updated_at    INTEGER
) STRICT;

CREATE TABLE event_types (
	name          TEXT PRIMARY KEY,
	description   TEXT NOT NULL,
	archived      INTEGER NOT NULL,
	deprecated    INTEGER NOT NULL,
	schemas       TEXT,            -- JSON, as given
	group_name    TEXT NOT NULL,
	feature_flags TEXT NOT NULL,   -- JSON array
	created_at    INTEGER,
	updated_at    INTEGER
) STRICT;

CREATE TABLE endpoints (
	id            TEXT PRIMARY KEY,
	app_id        TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
	uid           TEXT,
	url           TEXT NOT NULL,
	description   TEXT NOT NULL,
	disabled      INTEGER NOT NULL,
	disabled_at   INTEGER,
	disabled_why  TEXT NOT NULL,
	filter_types  TEXT NOT NULL,   -- JSON array
	channels      TEXT NOT NULL,   -- JSON array
	keys          TEXT NOT NULL,   -- JSON array of signing keys
	headers       TEXT NOT NULL,   -- JSON object
	metadata      TEXT NOT NULL,   -- JSON object
	throttle_rate INTEGER,
	version       INTEGER NOT NULL,
	failing_since INTEGER,
	created_at    INTEGER,
	updated_at    INTEGER,
	UNIQUE (app_id, uid)
) STRICT;
CREATE INDEX endpoints_by_app ON endpoints (app_id, id);
CREATE INDEX endpoints_failing ON endpoints (failing_since)
	WHERE disabled = 0 AND failing_since IS NOT NULL;

CREATE TABLE messages (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
	event_type TEXT NOT NULL,
	event_id   TEXT,               -- NULL when the message has none
	payload    BLOB NOT NULL,      -- the exact bytes that are signed
	channels   TEXT NOT NULL,      -- JSON array
	tags       TEXT NOT NULL,      -- JSON array
	timestamp  INTEGER,
	expires_at INTEGER
) STRICT;
CREATE INDEX messages_by_app ON messages (app_id, id);
CREATE INDEX messages_by_event_id ON messages (app_id, event_id, timestamp)
	WHERE event_id IS NOT NULL;
CREATE INDEX messages_by_expiry ON messages (expires_at) WHERE expires_at IS NOT NULL;

-- One row per (message, endpoint): the state of its current run. The rows
-- with status pending (1) or sending (3) are local mode's delivery queue.
CREATE TABLE deliveries (
	msg_id          TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	endpoint_id     TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
	app_id          TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
	event_type      TEXT NOT NULL,
	channels        TEXT NOT NULL, -- JSON array
	status          INTEGER NOT NULL,
	run             INTEGER NOT NULL,
	trigger_type    INTEGER NOT NULL,
	attempts        INTEGER NOT NULL,
	next_attempt_at INTEGER,
	dispatched      INTEGER NOT NULL,
	created_at      INTEGER,       -- the message's timestamp
	updated_at      INTEGER,
	expires_at      INTEGER,       -- the message's
	PRIMARY KEY (msg_id, endpoint_id)
) STRICT;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, msg_id);
CREATE INDEX deliveries_by_app ON deliveries (app_id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN (1, 3);
CREATE INDEX deliveries_undispatched ON deliveries (updated_at)
	WHERE dispatched = 0 AND status IN (1, 3);

CREATE TABLE attempts (
	id                   TEXT PRIMARY KEY,
	app_id               TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
	msg_id               TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	endpoint_id          TEXT NOT NULL, -- kept when the endpoint is deleted
	event_type           TEXT NOT NULL,
	url                  TEXT NOT NULL,
	response             TEXT NOT NULL,
	response_status_code INTEGER NOT NULL,
	response_duration_ms INTEGER NOT NULL,
	status               INTEGER NOT NULL,
	trigger_type         INTEGER NOT NULL,
	timestamp            INTEGER,
	expires_at           INTEGER
) STRICT;
CREATE INDEX attempts_by_msg ON attempts (msg_id, id);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_by_app ON attempts (app_id);
CREATE INDEX attempts_by_expiry ON attempts (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE idempotency (
	key         TEXT PRIMARY KEY,
	done        INTEGER NOT NULL,
	status_code INTEGER NOT NULL,
	body        BLOB,
	expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX idempotency_by_expiry ON idempotency (expires_at);
`,
	// 2: when an idempotency key was claimed, so that a claim whose
	// request died can be taken over (NULL: claimed before this column).
	`ALTER TABLE idempotency ADD COLUMN claimed_at INTEGER;`,
	// 3: who holds an unfinished delivery (the claim constants in
	// queue.go): nobody (0), a worker of the running process, with
	// next_attempt_at the end of its claim (1), or nobody yet: due, it
	// waits for a slot of its endpoint (2). The queue's due index leaves
	// the waiting ones out, and they get one of their own, by endpoint.
	`
ALTER TABLE deliveries ADD COLUMN claim INTEGER NOT NULL DEFAULT 0;
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN (1, 3) AND claim < 2;
CREATE INDEX deliveries_waiting ON deliveries (endpoint_id, next_attempt_at) WHERE status IN (1, 3) AND claim = 2;
`,
	// 4: background tasks (recover). No foreign keys: a task is the
	// record of work done and outlives its app and endpoint until it
	// expires. data and state are JSON kept byte for byte.
	`
CREATE TABLE tasks (
	id          TEXT PRIMARY KEY,
	app_id      TEXT NOT NULL,
	endpoint_id TEXT NOT NULL,
	kind        TEXT NOT NULL,
	status      TEXT NOT NULL,
	data        BLOB,
	state       BLOB,
	created_at  INTEGER,
	updated_at  INTEGER,
	expires_at  INTEGER
) STRICT;
CREATE INDEX tasks_by_status ON tasks (status, id);
CREATE INDEX tasks_by_expiry ON tasks (expires_at) WHERE expires_at IS NOT NULL;
`,
	// 5: what the request that claimed an idempotency key creates (a
	// message id; NULL: nothing named).
	`ALTER TABLE idempotency ADD COLUMN resource TEXT;`,
	// 6: app tokens (the portal's, webhook.AppTokenStore), by the hex
	// SHA-256 of the token, and the cut-offs of ExpireAppTokens: one row
	// per app (session_id '') and per app and session, each a JSON list of
	// [createdBy, deadAt] pairs. No foreign keys: a token of a deleted app
	// reaches nothing, and expires.
	`
CREATE TABLE app_tokens (
	hash          TEXT PRIMARY KEY,
	app_id        TEXT NOT NULL,
	capabilities  TEXT NOT NULL,   -- JSON array
	read_only     INTEGER NOT NULL,
	session_id    TEXT NOT NULL,   -- '' when none
	feature_flags TEXT NOT NULL,   -- JSON array
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX app_tokens_by_expiry ON app_tokens (expires_at);

CREATE TABLE app_token_cutoffs (
	app_id     TEXT NOT NULL,
	session_id TEXT NOT NULL,      -- '' for the whole app
	cutoffs    TEXT NOT NULL,      -- JSON array of [createdBy, deadAt] (unix ms)
	expires_at INTEGER NOT NULL,   -- when every token it covers has expired
	PRIMARY KEY (app_id, session_id)
) STRICT;
CREATE INDEX app_token_cutoffs_by_expiry ON app_token_cutoffs (expires_at);
`,
	// 7: a leaner attempts table, the one written with every attempt:
	// its rows are found by (msg_id, id) — what every read of one attempt
	// or of a message's attempts names — through one unique index, where
	// an index on id and one on (msg_id, id) were two. The app's attempts
	// go with its messages (ON DELETE CASCADE through msg_id), so app_id
	// needs no foreign key, nor an index for one; no route lists an app's
	// attempts without an endpoint or a message. Two b-trees fewer per
	// attempt recorded. (Not WITHOUT ROWID: a row there spills to an
	// overflow page past about 1 KB, and a stored response may be 16.)
	`
CREATE TABLE attempts_v7 (
	id                   TEXT NOT NULL,
	app_id               TEXT NOT NULL,
	msg_id               TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
	endpoint_id          TEXT NOT NULL, -- kept when the endpoint is deleted
	event_type           TEXT NOT NULL,
	url                  TEXT NOT NULL,
	response             TEXT NOT NULL,
	response_status_code INTEGER NOT NULL,
	response_duration_ms INTEGER NOT NULL,
	status               INTEGER NOT NULL,
	trigger_type         INTEGER NOT NULL,
	timestamp            INTEGER,
	expires_at           INTEGER,
	UNIQUE (msg_id, id)
) STRICT;
INSERT INTO attempts_v7 SELECT id, app_id, msg_id, endpoint_id, event_type, url, response, response_status_code,
	response_duration_ms, status, trigger_type, timestamp, expires_at FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_v7 RENAME TO attempts;
CREATE INDEX attempts_by_endpoint ON attempts (endpoint_id, id);
CREATE INDEX attempts_by_expiry ON attempts (expires_at) WHERE expires_at IS NOT NULL;
`,
}
