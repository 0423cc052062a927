package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// appStatsPage is how many apps an application.stats task counts between
// two progress writes.
const appStatsPage = 50

// appStatsState is the State of an application.stats task: its window,
// the apps it counts (AppIDs, resolved by the caller; none means every
// app, paged by id) and how far its worker got.
type appStatsState struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	AppIDs []string  `json:"appIds,omitempty"`
	// Done is how many of AppIDs are counted; Cursor the id of the last
	// app counted when AppIDs is empty.
	Done   int    `json:"done,omitempty"`
	Cursor string `json:"cursor,omitempty"`
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
	now := s.Clock.Now()
	state, err := json.Marshal(appStatsState{Since: since, Until: until, AppIDs: appIDs})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: app stats: %w", err)
	}
	data, err := json.Marshal(appStatsData{AppStats: []appStat{}})
	if err != nil {
		return webhook.Task{}, fmt.Errorf("delivery: app stats: %w", err)
	}
	task := webhook.Task{
		ID: webhook.NewID(webhook.PrefixTask), Kind: webhook.TaskAppStats, Status: webhook.TaskRunning,
		Data: data, State: state, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(webhook.TaskRetention),
	}
	if err := s.Store.CreateTask(ctx, &task); err != nil {
		return webhook.Task{}, err
	}
	s.startTask(ctx, task.ID)
	return task, nil
}

// runAppStats does an application.stats task's work: a page of apps at a
// time, each counted over its endpoints, then the page's progress stored.
// A page cut short by an error is counted again when the task resumes;
// its apps are not in Data yet, so none is counted twice.
func (s *Service) runAppStats(ctx context.Context, t *webhook.Task) error {
	var st appStatsState
	var data appStatsData
	save := func(status webhook.TaskStatus) error {
		var err error
		if t.Data, err = json.Marshal(data); err != nil {
			return fmt.Errorf("delivery: task %s: %w", t.ID, err)
		}
		if t.State, err = json.Marshal(st); err != nil {
			return fmt.Errorf("delivery: task %s: %w", t.ID, err)
		}
		return s.saveTask(ctx, t, status)
	}
	if err := json.Unmarshal(t.State, &st); err != nil {
		data.Error = "the task's state cannot be read"
		return save(webhook.TaskFailed)
	}
	if err := json.Unmarshal(t.Data, &data); err != nil || data.AppStats == nil {
		data = appStatsData{AppStats: []appStat{}}
	}
	for {
		apps, more, err := s.appStatsPage(ctx, &st)
		if err != nil {
			return err
		}
		for _, app := range apps {
			n, err := s.countDestinations(ctx, app.ID, st.Since, st.Until)
			if err != nil {
				return err
			}
			stat := appStat{MessageDestinations: n, AppID: app.ID}
			if app.UID != "" {
				stat.AppUID = &app.UID
			}
			data.AppStats = append(data.AppStats, stat)
		}
		status := webhook.TaskRunning
		if !more {
			status = webhook.TaskFinished
		}
		if err := save(status); err != nil {
			return err
		}
		if !more {
			s.Logger.Info("app stats finished", "task_id", t.ID, "apps", len(data.AppStats))
			return nil
		}
	}
}

// appStatsPage returns the next page of apps to count and moves st past
// it; more reports whether apps remain after it. A named app deleted
// since is left out.
func (s *Service) appStatsPage(ctx context.Context, st *appStatsState) (apps []webhook.App, more bool, err error) {
	if len(st.AppIDs) > 0 {
		end := min(st.Done+appStatsPage, len(st.AppIDs))
		for _, id := range st.AppIDs[st.Done:end] {
			app, err := s.Store.GetApp(ctx, id)
			if webhook.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			apps = append(apps, *app)
		}
		st.Done = end
		return apps, end < len(st.AppIDs), nil
	}
	page, err := s.Store.ListApps(ctx, webhook.ListOptions{Limit: appStatsPage, Ascending: true, Cursor: st.Cursor})
	if err != nil {
		return nil, false, err
	}
	if len(page.Items) > 0 {
		st.Cursor = page.Items[len(page.Items)-1].ID
	}
	return page.Items, page.More && len(page.Items) > 0, nil
}

// countDestinations sums the deliveries of every endpoint of the app
// created in [since, until), whatever their status.
func (s *Service) countDestinations(ctx context.Context, appID string, since, until time.Time) (int, error) {
	total := 0
	opts := webhook.ListOptions{Limit: webhook.MaxLimit, Ascending: true}
	for {
		page, err := s.Store.ListEndpoints(ctx, appID, opts)
		if webhook.IsNotFound(err) {
			return total, nil // the app was deleted meanwhile
		}
		if err != nil {
			return 0, err
		}
		for _, ep := range page.Items {
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
		if !page.More || len(page.Items) == 0 {
			return total, nil
		}
		opts.Cursor = page.Items[len(page.Items)-1].ID
	}
}
