package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookstep/hookstep/internal/webhook"
)

// EventTypes returns the catalog as the event types both modes seed,
// created and updated at now. Svix keeps an event type's example payload
// in its schema's "examples", and so do they: the schema is version "1"
// of the type's schemas.
func EventTypes(now time.Time) ([]webhook.EventType, error) {
	cat, err := Catalog()
	if err != nil {
		return nil, err
	}
	out := make([]webhook.EventType, 0, len(cat))
	for _, e := range cat {
		var schema map[string]json.RawMessage
		if err := json.Unmarshal(e.Schema, &schema); err != nil {
			return nil, fmt.Errorf("events: %s: schema: %w", e.Name, err)
		}
		schema["examples"] = json.RawMessage("[" + string(e.Example) + "]")
		schemas, err := json.Marshal(map[string]any{"1": schema})
		if err != nil {
			return nil, fmt.Errorf("events: %s: %w", e.Name, err)
		}
		out = append(out, webhook.EventType{
			Name: e.Name, Description: e.Description, GroupName: e.GroupName,
			Schemas: schemas, CreatedAt: now, UpdatedAt: now,
		})
	}
	return out, nil
}
