package functions_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	catalog "github.com/hookstep/hookstep/events"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/sfn/sfntest"
)

// TestTheAPIFunctionSeedsTheCatalog: right after a deploy (an empty
// table), the api function's first cold start lists the five event types
// of events/eventtypes with no other step; what the API changes then — a
// description edited, a type expunged — survives a second cold start of
// another instance, which seeds nothing again.
func TestTheAPIFunctionSeedsTheCatalog(t *testing.T) {
	root := awstest.Root(t)
	dbURL := awstest.Dynalite(t)
	newTable(t, dbURL, "hookstep")
	env := functionEnv(dbURL, sfntest.New(t).URL, awstest.NewLambda(t).URL, fakeSecrets(t))
	bootstrap := awstest.Build(t, "api")

	cat, err := catalog.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // name → description
	for _, et := range cat {
		want[et.Name] = et.Description
	}
	if len(want) != 5 {
		t.Fatalf("events/eventtypes holds %d event types, want 5", len(want))
	}

	call := func(api *awstest.Function, method, path, body string, query map[string][]string, status int) []byte {
		t.Helper()
		ev := apiEvent(t, root, method, path, body)
		ev.MultiValueQueryStringParameters = query
		var res events.APIGatewayProxyResponse
		api.InvokeInto(t, ev, &res)
		if res.StatusCode != status {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, res.StatusCode, res.Body, status)
		}
		return []byte(res.Body)
	}
	list := func(api *awstest.Function) map[string]string {
		t.Helper()
		var page struct {
			Data []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				Schemas     map[string]map[string]json.RawMessage
			} `json:"data"`
		}
		body := call(api, "GET", "/api/v1/event-type", "", map[string][]string{"include_archived": {"true"}, "with_content": {"true"}}, http.StatusOK)
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, et := range page.Data {
			got[et.Name] = et.Description
			if _, ok := et.Schemas["1"]["examples"]; !ok {
				t.Errorf("%s: schemas %v, want version 1 with the catalog's example", et.Name, et.Schemas)
			}
		}
		return got
	}

	first := awstest.Run(t, bootstrap, env)
	if got := list(first); !maps.Equal(got, want) {
		t.Fatalf("after the first cold start: event types %v, want the catalog's %v", got, want)
	}
	call(first, "PATCH", "/api/v1/event-type/v1.end_user.created", `{"description":"Edited through the API"}`, nil, http.StatusOK)
	call(first, "DELETE", "/api/v1/event-type/v1.conversation.ended", "", map[string][]string{"expunge": {"true"}}, http.StatusNoContent)
	want["v1.end_user.created"] = "Edited through the API"
	delete(want, "v1.conversation.ended")

	second := awstest.Run(t, bootstrap, env)
	got := list(second)
	if !maps.Equal(got, want) {
		t.Errorf("after a second cold start: event types %v, want %v", got, want)
	}
	if names := slices.Sorted(maps.Keys(got)); len(names) != 4 {
		t.Errorf("after a second cold start: %d event types %v, want 4", len(names), names)
	}
}
