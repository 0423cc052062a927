package api

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/hookstep/hookstep/internal/awstest"
	"github.com/hookstep/hookstep/internal/dynamo"
	"github.com/hookstep/hookstep/internal/webhook"
)

// storeOpener opens a fresh store for a test, on the harness's clock.
type storeOpener func(testing.TB, webhook.Clock) webhook.Store

// eachStore runs test once per Store implementation, as subtests named
// after it: SQLite, and DynamoDB on a dynalite started for the subtest.
// Behaviour that lives in the handler but rests on a store's paging (its
// cursors, its order) is proven against both, as on AWS and locally.
//
// Without dynalite the dynamo subtest fails when HOOKSTEP_REQUIRE_DYNALITE
// or HOOKSTEP_REQUIRE_AWS_TOOLS is 1 (make test sets both) and otherwise
// skips, saying how to install it.
func eachStore(t *testing.T, test func(t *testing.T, open storeOpener)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openSQLite) })
	t.Run("dynamo", func(t *testing.T) { test(t, dynaliteOpener(t)) })
}

// dynaliteOpener starts dynalite for t and returns an opener that creates
// a table of its own for each store.
func dynaliteOpener(t *testing.T) storeOpener {
	t.Helper()
	if os.Getenv("HOOKSTEP_REQUIRE_DYNALITE") == "1" {
		bin := filepath.Join(awstest.Root(t), "infra", "node_modules", ".bin", "dynalite")
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("dynalite not found at %s (HOOKSTEP_REQUIRE_DYNALITE=1 requires it; `make test` installs it)", bin)
		}
		if _, err := exec.LookPath("node"); err != nil {
			t.Fatalf("node is not on PATH (HOOKSTEP_REQUIRE_DYNALITE=1 requires it for dynalite)")
		}
	}
	client := dynamodb.New(dynamodb.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(awstest.Dynalite(t)),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
	tables := 0
	return func(t testing.TB, clock webhook.Clock) webhook.Store {
		t.Helper()
		tables++
		table := fmt.Sprintf("hookstep-%d", tables)
		if err := dynamo.CreateTable(context.Background(), client, table); err != nil {
			t.Fatalf("create table %s: %v", table, err)
		}
		return dynamo.New(client, table, clock)
	}
}
