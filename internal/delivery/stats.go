package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hookstep/hookstep/internal/operational"
	"github.com/hookstep/hookstep/internal/webhook"
)

// appStatsPage is how many apps an application.stats task counts between
// two progress writes.
const appStatsPage = 50

// appCursor is how far a task that works app by app got: through the
// apps AppIDs names (resolved by the caller) or, when it names none,
// through every app, paged by id.
type appCursor struct {
	AppIDs []string `json:"appIds,omitempty"`
	// Done is how many of AppIDs are done; Cursor the id of the last app
	// done when AppIDs is empty.
	Done   int    `json:"done,omitempty"`
	Cursor string `json:"cursor,omitempty"`
}

// appStatsState is the State of an application.stats task: its window
// and its apps.
type appStatsState struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	appCursor
}

// appStat is one app's entry of the task's data, Svix's AppUsageStats:
// messageDestinations counts the deliveries (one per message and
// endpoint) created in the window.
type appStat struct {
	MessageDestinations int     `json:"messageDestinations"`
	AppID               string  `json:"appId"`
	AppUID              *string `json:"appUid"`
}

// appStatsData is the Data of an application.stats task, in Svix's shape.
type appStatsData struct {
	AppStats []appStat `json:"appStats"`
	Error    string    `json:"error,omitempty"`
}

// AppStats counts, per app, the deliveries created in [since, until)
// (Svix's AggregateAppStats; messageDestinations), for the apps named by
// appIDs (ids, resolved by the caller) or, when there are none, for every
// app. It stores a running application.stats task and returns it; the
// work is RunTask's, as Recover's.
//
// The counts come from Store.EndpointStats, one call per endpoint of each
// app: no store scans for them, and the cost is that of reading the
// window's deliveries once. Deliveries to endpoints deleted since are not
// counted (DeleteEndpoint removed them), nor, in internal/dynamo, a first
// delivery that has not been attempted yet (it is deferred).
func (s *Service) AppStats(ctx context.Context, appIDs []string, since, until time.Time) (webhook.Task, error) {
	state, err := json.Marshal(appStatsState{Since: since, Until: until, appCursor: appCursor{AppIDs: appIDs}})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: app stats: %w", err)
	}
	data, err := json.Marshal(appStatsData{AppStats: []appStat{}})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: app stats: %w", err)
	}
	return s.startAppTask(ctx, webhook.TaskAppStats, state, data)
}

// startAppTask stores a running task of kind, not tied to one app, and
// starts it.
func (s *Service) startAppTask(ctx context.Context, kind webhook.TaskKind, state, data json.RawMessage) (webhook.Task, error) {
	now := s.Clock.Now()
	task := webhook.Task{
		ID: webhook.NewID(webhook.PrefixTask), Kind: kind, Status: webhook.TaskRunning,
		Data: data, State: state, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(webhook.TaskRetention),
	}
	if err := s.Store.CreateTask(ctx, &task); err != nil {
		return webhook.Task{}, err
	}
	s.startTask(ctx, task.ID)
	return task, nil
}

// runAppStats does an application.stats task's work (see runPerApp).
func (s *Service) runAppStats(ctx context.Context, t *webhook.Task) error {
	var st appStatsState
	data := appStatsData{AppStats: []appStat{}}
	return s.runPerApp(ctx, t, &st, &st.appCursor, &data, &data.Error, func(app *webhook.App) error {
		n, err := s.countDestinations(ctx, app.ID, st.Since, st.Until)
		if err != nil {
			return err
		}
		stat := appStat{MessageDestinations: n, AppID: app.ID}
		if app.UID != "" {
			stat.AppUID = &app.UID
		}
		data.AppStats = append(data.AppStats, stat)
		return nil
	})
}

// runPerApp does the work of a task that goes app by app: it reads the
// task's State into st (whose apps are cur) and its Data into data, then
// calls each for a page of apps at a time and stores the progress after
// each page. A page cut short by an error is done again when the task
// resumes; its apps are not in Data yet, so none is done twice. A State
// that cannot be read fails the task, with the reason in *why.
func (s *Service) runPerApp(ctx context.Context, t *webhook.Task, st any, cur *appCursor, data any, why *string, each func(*webhook.App) error) error {
	save := func(status webhook.TaskStatus) error { return s.saveTaskProgress(ctx, t, st, data, status) }
	if err := json.Unmarshal(t.State, st); err != nil {
		*why = "the task's state cannot be read"
		return save(webhook.TaskFailed)
	}
	_ = json.Unmarshal(t.Data, data) // progress so far; the zero data when none
	for {
		apps, more, err := s.nextApps(ctx, cur)
		if err != nil {
			return err
		}
		for i := range apps {
			if err := each(&apps[i]); err != nil {
				return err
			}
		}
		status := webhook.TaskRunning
		if !more {
			status = webhook.TaskFinished
		}
		if err := save(status); err != nil {
			return err
		}
		if !more {
			s.Logger.Info("task finished", "task_id", t.ID, "task", string(t.Kind))
			return nil
		}
	}
}

// nextApps returns the next page of apps and moves cur past it; more
// reports whether apps remain after it. A named app deleted since, and
// the operational webhooks' reserved app, are left out.
func (s *Service) nextApps(ctx context.Context, cur *appCursor) (apps []webhook.App, more bool, err error) {
	if len(cur.AppIDs) > 0 {
		end := min(cur.Done+appStatsPage, len(cur.AppIDs))
		for _, id := range cur.AppIDs[cur.Done:end] {
			app, err := s.Store.GetApp(ctx, id)
			if webhook.IsNotFound(err) || (err == nil && operational.Reserved(app.ID)) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			apps = append(apps, *app)
		}
		cur.Done = end
		return apps, end < len(cur.AppIDs), nil
	}
	page, err := s.Store.ListApps(ctx, webhook.ListOptions{Limit: appStatsPage, Ascending: true, Cursor: cur.Cursor})
	if err != nil {
		return nil, false, err
	}
	more = page.More && len(page.Items) > 0
	if len(page.Items) > 0 {
		cur.Cursor = page.Items[len(page.Items)-1].ID
	}
	// The operational webhooks' reserved app is hookstep's, not a
	// customer's: it is in no usage statistics.
	apps = slices.DeleteFunc(page.Items, func(a webhook.App) bool { return operational.Reserved(a.ID) })
	return apps, more, nil
}

// countDestinations sums the deliveries of every endpoint of the app
// created in [since, until), whatever their status.
func (s *Service) countDestinations(ctx context.Context, appID string, since, until time.Time) (int, error) {
	eps, _, err := s.endpointsOf(ctx, appID)
	if webhook.IsNotFound(err) {
		return 0, nil // the app was deleted meanwhile
	}
	if err != nil {
		return 0, err
	}
	total := 0
	for _, ep := range eps {
		counts, err := s.Store.EndpointStats(ctx, appID, ep.ID, since, until)
		if webhook.IsNotFound(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		for _, n := range counts {
			total += n
		}
	}
	return total, nil
}

// appEventTypes is one app's entry of an event-type.aggregate task's
// data, in Svix's shape: the event types its endpoints filter on, and
// whether one of them takes every type.
type appEventTypes struct {
	AppID                          string   `json:"appId"`
	ExplicitlySubscribedEventTypes []string `json:"explicitlySubscribedEventTypes"`
	HasCatchAllEndpoint            bool     `json:"hasCatchAllEndpoint"`
}

// eventTypesData is the Data of an event-type.aggregate task.
type eventTypesData struct {
	EventTypes []appEventTypes `json:"event_types"`
	Error      string          `json:"error,omitempty"`
}

// AggregateEventTypes lists, per app, the event types its endpoints
// subscribe to explicitly (the union of their filterTypes) and whether
// one endpoint has no filter (Svix's AggregateEventTypes). Disabled
// endpoints count: they are subscribed, only paused. It stores a running
// event-type.aggregate task and returns it; the work is RunTask's.
func (s *Service) AggregateEventTypes(ctx context.Context) (webhook.Task, error) {
	state, err := json.Marshal(appCursor{})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: aggregate event types: %w", err)
	}
	data, err := json.Marshal(eventTypesData{EventTypes: []appEventTypes{}})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: aggregate event types: %w", err)
	}
	return s.startAppTask(ctx, webhook.TaskEventTypeAggregate, state, data)
}

// runEventTypes does an event-type.aggregate task's work (see runPerApp).
func (s *Service) runEventTypes(ctx context.Context, t *webhook.Task) error {
	var cur appCursor
	data := eventTypesData{EventTypes: []appEventTypes{}}
	return s.runPerApp(ctx, t, &cur, &cur, &data, &data.Error, func(app *webhook.App) error {
		entry := appEventTypes{AppID: app.ID, ExplicitlySubscribedEventTypes: []string{}}
		eps, _, err := s.endpointsOf(ctx, app.ID)
		if err != nil && !webhook.IsNotFound(err) {
			return err
		}
		for _, ep := range eps {
			if len(ep.FilterTypes) == 0 {
				entry.HasCatchAllEndpoint = true
			}
			entry.ExplicitlySubscribedEventTypes = append(entry.ExplicitlySubscribedEventTypes, ep.FilterTypes...)
		}
		slices.Sort(entry.ExplicitlySubscribedEventTypes)
		entry.ExplicitlySubscribedEventTypes = slices.Compact(entry.ExplicitlySubscribedEventTypes)
		data.EventTypes = append(data.EventTypes, entry)
		return nil
	})
}
