// Package events holds hookstep's sample data: the catalog of the five Ada
// event types (each with a JSON Schema and a realistic example payload),
// which both modes load as event types (EventTypes): local mode on its
// first start, the api function on AWS at each cold start, once per type
// per table (dynamo.Store.SeedEventTypes) — and, in lambda/, one sample
// event per Lambda function.
package events

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

//go:embed eventtypes/*.json
var eventTypeFiles embed.FS

// EventType is one entry of the catalog.
type EventType struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	GroupName   string          `json:"groupName"`
	Schema      json.RawMessage `json:"schema"`
	Example     json.RawMessage `json:"example"`
}

// Catalog returns the event types, sorted by name.
func Catalog() ([]EventType, error) {
	names, err := fs.Glob(eventTypeFiles, "eventtypes/*.json")
	if err != nil {
		return nil, err
	}
	out := make([]EventType, 0, len(names))
	for _, name := range names {
		b, err := eventTypeFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var et EventType
		if err := json.Unmarshal(b, &et); err != nil {
			return nil, fmt.Errorf("events: %s: %w", name, err)
		}
		if want := path.Base(name); et.Name+".json" != want {
			return nil, fmt.Errorf("events: %s names event type %q", name, et.Name)
		}
		out = append(out, et)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
