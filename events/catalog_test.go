package events

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The five event types of the seed page, in name order.
var seedTypes = []string{
	"v1.conversation.created",
	"v1.conversation.ended",
	"v1.conversation.message",
	"v1.end_user.created",
	"v1.end_user.updated",
}

func TestCatalogHasTheSeedTypes(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) != len(seedTypes) {
		t.Fatalf("got %d event types, want %d", len(cat), len(seedTypes))
	}
	for i, et := range cat {
		if et.Name != seedTypes[i] {
			t.Errorf("event type %d: got %q, want %q", i, et.Name, seedTypes[i])
		}
		if et.Description == "" {
			t.Errorf("%s: empty description", et.Name)
		}
	}
}

// TestExamplesMatchTheirSchemas compiles every schema and validates the
// example payload against it, so the catalog cannot drift from itself.
func TestExamplesMatchTheirSchemas(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	for _, et := range cat {
		t.Run(et.Name, func(t *testing.T) {
			schema := compile(t, et.Schema)
			example := decode(t, et.Example)
			if err := schema.Validate(example); err != nil {
				t.Fatalf("example does not match its schema: %v", err)
			}
			if typ := example.(map[string]any)["type"]; typ != et.Name {
				t.Errorf("example type: got %v, want %s", typ, et.Name)
			}
			// A payload of another type must fail, or the schema checks nothing.
			other := decode(t, et.Example)
			other.(map[string]any)["type"] = "v1.something.else"
			if err := schema.Validate(other); err == nil {
				t.Error("schema accepts a payload of another type")
			}
		})
	}
}

func compile(t *testing.T, raw json.RawMessage) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEventTypesCarryTheirExamples: what both modes seed is the catalog,
// each type's schema as version "1" with its example in "examples".
func TestEventTypesCarryTheirExamples(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ets, err := EventTypes(now)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(ets) != len(cat) {
		t.Fatalf("got %d event types, want %d", len(ets), len(cat))
	}
	for i, et := range ets {
		c := cat[i]
		if et.Name != c.Name || et.Description != c.Description || et.GroupName != c.GroupName || !et.CreatedAt.Equal(now) || !et.UpdatedAt.Equal(now) {
			t.Errorf("event type %d: got %+v, want the catalog's %s at %v", i, et, c.Name, now)
		}
		var schemas map[string]map[string]json.RawMessage
		if err := json.Unmarshal(et.Schemas, &schemas); err != nil {
			t.Fatalf("%s: schemas: %v", et.Name, err)
		}
		var examples []json.RawMessage
		if err := json.Unmarshal(schemas["1"]["examples"], &examples); err != nil || len(examples) != 1 {
			t.Fatalf("%s: examples %s, want one (%v)", et.Name, schemas["1"]["examples"], err)
		}
		if !bytes.Equal(compact(t, examples[0]), compact(t, c.Example)) {
			t.Errorf("%s: example %s, want %s", et.Name, examples[0], c.Example)
		}
	}
}

func compact(t *testing.T, raw json.RawMessage) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
