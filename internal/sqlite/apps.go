package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

const appCols = "id, uid, name, metadata, throttle_rate, created_at, updated_at"

func scanApp(sc scanner) (webhook.App, error) {
	var a webhook.App
	err := sc.Scan(&a.ID, optString{&a.UID}, &a.Name, jsonCol{&a.Metadata}, optInt{&a.ThrottleRate},
		nullTime{&a.CreatedAt}, nullTime{&a.UpdatedAt})
	return a, err
}

// CreateApp implements webhook.Store.
func (s *Store) CreateApp(ctx context.Context, app *webhook.App) error {
	meta, err := jsonText(app.Metadata)
	if err != nil {
		return wrap("create app", err)
	}
	_, err = s.exec(ctx, "INSERT INTO apps ("+appCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		app.ID, nullString(app.UID), app.Name, meta, intOrNull(app.ThrottleRate), ms(app.CreatedAt), ms(app.UpdatedAt))
	if isUnique(err) {
		return webhook.Conflict("an app with id %s or uid %q already exists", app.ID, app.UID)
	}
	return wrap("create app", err)
}

// GetApp implements webhook.Store.
//
// Every API request names its app, so the apps read are kept (appCache)
// and given back, as copies, while the store's change count has not
// moved (Changes: every write to apps moves it).
func (s *Store) GetApp(ctx context.Context, idOrUID string) (*webhook.App, error) {
	changes := s.changes.Load()
	if app, ok := s.apps.get(idOrUID, changes); ok {
		return app, nil
	}
	row := s.r.QueryRowContext(ctx, "SELECT "+appCols+" FROM apps WHERE id = ? OR uid = ?", idOrUID, idOrUID)
	app, err := scanApp(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("app %s not found", idOrUID)
	}
	if err != nil {
		return nil, wrap("get app", err)
	}
	s.apps.put(idOrUID, changes, &app)
	return &app, nil
}

// appCacheSize bounds the apps kept; past it, the cache starts over.
const appCacheSize = 1024

// appCache holds apps as read by GetApp, by the id or uid they were
// asked by, and the change count read before them.
type appCache struct {
	mu      sync.Mutex
	changes uint64
	apps    map[string]webhook.App
}

// get returns a copy of the app asked by idOrUID if it was read at
// changes.
func (c *appCache) get(idOrUID string, changes uint64) (*webhook.App, bool) {
	c.mu.Lock()
	app, ok := c.apps[idOrUID]
	ok = ok && c.changes == changes
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return cloneApp(&app), true
}

// put keeps a copy of app, read at changes.
func (c *appCache) put(idOrUID string, changes uint64, app *webhook.App) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.apps != nil && changes < c.changes {
		return // read before what is kept: older
	}
	if c.apps == nil || c.changes != changes || len(c.apps) >= appCacheSize {
		c.changes, c.apps = changes, map[string]webhook.App{}
	}
	c.apps[idOrUID] = *cloneApp(app)
}

// cloneApp copies app deep enough that changing the copy changes nothing
// of app.
func cloneApp(app *webhook.App) *webhook.App {
	c := *app
	c.Metadata = maps.Clone(app.Metadata)
	if app.ThrottleRate != nil {
		r := *app.ThrottleRate
		c.ThrottleRate = &r
	}
	return &c
}

// UpdateApp implements webhook.Store: one conditional UPDATE, and on a
// miss a read that tells NotFound from ErrStale.
func (s *Store) UpdateApp(ctx context.Context, app *webhook.App, ifUpdatedAt time.Time) error {
	meta, err := jsonText(app.Metadata)
	if err != nil {
		return wrap("update app", err)
	}
	updatedAt := webhook.NextUpdatedAt(ifUpdatedAt, app.UpdatedAt)
	err = s.inTx(ctx, func(tx querier) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE apps
			SET uid = ?, name = ?, metadata = ?, throttle_rate = ?, created_at = ?, updated_at = ?
			WHERE id = ? AND updated_at IS ?`,
			nullString(app.UID), app.Name, meta, intOrNull(app.ThrottleRate), ms(app.CreatedAt), ms(updatedAt),
			app.ID, ms(ifUpdatedAt)))
		switch {
		case isUnique(err):
			return webhook.Conflict("another app has uid %q", app.UID)
		case err != nil || n > 0:
			return err
		}
		return missingOrStale(ctx, tx, "app", "SELECT 1 FROM apps WHERE id = ?", app.ID)
	})
	if err != nil {
		return wrap("update app", err)
	}
	app.UpdatedAt = updatedAt
	return nil
}

// missingOrStale explains why an optimistic UPDATE changed no row: NotFound
// if query (SELECT 1 ... WHERE the key) finds nothing, else ErrStale.
func missingOrStale(ctx context.Context, tx querier, what, query string, key ...any) error {
	var one int
	err := tx.QueryRowContext(ctx, query, key...).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return noWrites(webhook.NotFound("%s %v not found", what, key[len(key)-1]))
	case err != nil:
		return err
	}
	return noWrites(fmt.Errorf("%s %v: %w", what, key[len(key)-1], webhook.ErrStale))
}

// DeleteApp implements webhook.Store. Foreign keys delete the app's
// endpoints, messages, deliveries and attempts with it.
func (s *Store) DeleteApp(ctx context.Context, id string) error {
	n, err := rowsAffected(s.exec(ctx, "DELETE FROM apps WHERE id = ?", id))
	if err != nil {
		return wrap("delete app", err)
	}
	if n == 0 {
		return webhook.NotFound("app %s not found", id)
	}
	return nil
}

// ListApps implements webhook.Store.
func (s *Store) ListApps(ctx context.Context, opts webhook.ListOptions) (webhook.Page[webhook.App], error) {
	p, err := list(ctx, s.r, query{from: appCols + " FROM apps"}, "id", opts, scanApp)
	return p, wrap("list apps", err)
}

const eventTypeCols = "name, description, archived, deprecated, schemas, group_name, feature_flags, created_at, updated_at"

func scanEventType(sc scanner) (webhook.EventType, error) {
	var et webhook.EventType
	var schemas []byte
	err := sc.Scan(&et.Name, &et.Description, &et.Archived, &et.Deprecated, &schemas, &et.GroupName,
		jsonCol{&et.FeatureFlags}, nullTime{&et.CreatedAt}, nullTime{&et.UpdatedAt})
	if schemas != nil {
		et.Schemas = schemas
	}
	return et, err
}

// eventTypeArgs returns the values of eventTypeCols after name.
func eventTypeArgs(et *webhook.EventType) ([]any, error) {
	flags, err := jsonText(et.FeatureFlags)
	if err != nil {
		return nil, err
	}
	var schemas any // NULL when there are none
	if et.Schemas != nil {
		schemas = string(et.Schemas)
	}
	return []any{et.Description, et.Archived, et.Deprecated, schemas, et.GroupName, flags, ms(et.CreatedAt), ms(et.UpdatedAt)}, nil
}

// CreateEventType implements webhook.Store.
func (s *Store) CreateEventType(ctx context.Context, et *webhook.EventType) error {
	args, err := eventTypeArgs(et)
	if err != nil {
		return wrap("create event type", err)
	}
	_, err = s.exec(ctx, "INSERT INTO event_types ("+eventTypeCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		append([]any{et.Name}, args...)...)
	if isUnique(err) {
		return webhook.Conflict("event type %s already exists", et.Name)
	}
	return wrap("create event type", err)
}

// GetEventType implements webhook.Store.
func (s *Store) GetEventType(ctx context.Context, name string) (*webhook.EventType, error) {
	et, err := scanEventType(s.r.QueryRowContext(ctx, "SELECT "+eventTypeCols+" FROM event_types WHERE name = ?", name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhook.NotFound("event type %s not found", name)
	}
	if err != nil {
		return nil, wrap("get event type", err)
	}
	return &et, nil
}

// UpdateEventType implements webhook.Store: one conditional UPDATE, and on
// a miss a read that tells NotFound from ErrStale.
func (s *Store) UpdateEventType(ctx context.Context, et *webhook.EventType, ifUpdatedAt time.Time) error {
	next := *et
	next.UpdatedAt = webhook.NextUpdatedAt(ifUpdatedAt, et.UpdatedAt)
	args, err := eventTypeArgs(&next)
	if err != nil {
		return wrap("update event type", err)
	}
	err = s.inTx(ctx, func(tx querier) error {
		n, err := rowsAffected(tx.ExecContext(ctx, `UPDATE event_types
			SET description = ?, archived = ?, deprecated = ?, schemas = ?, group_name = ?, feature_flags = ?,
				created_at = ?, updated_at = ?
			WHERE name = ? AND updated_at IS ?`, append(args, et.Name, ms(ifUpdatedAt))...))
		if err != nil || n > 0 {
			return err
		}
		return missingOrStale(ctx, tx, "event type", "SELECT 1 FROM event_types WHERE name = ?", et.Name)
	})
	if err != nil {
		return wrap("update event type", err)
	}
	et.UpdatedAt = next.UpdatedAt
	return nil
}

// DeleteEventType implements webhook.Store; NotFound if absent.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	n, err := rowsAffected(s.exec(ctx, "DELETE FROM event_types WHERE name = ?", name))
	if err != nil {
		return wrap("delete event type", err)
	}
	if n == 0 {
		return webhook.NotFound("event type %s not found", name)
	}
	return nil
}

// ListEventTypes implements webhook.Store.
func (s *Store) ListEventTypes(ctx context.Context, f webhook.EventTypeFilter) (webhook.Page[webhook.EventType], error) {
	q := query{from: eventTypeCols + " FROM event_types"}
	if !f.IncludeArchived {
		q.and("archived = 0")
	}
	p, err := list(ctx, s.r, q, "name", f.ListOptions, scanEventType)
	return p, wrap("list event types", err)
}
