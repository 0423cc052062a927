package main

import (
	"context"
	"strings"
	"testing"
)

// A misconfigured cold start fails before lambda.Start, with one error
// naming every missing variable.
func TestRunRefusesMissingConfiguration(t *testing.T) {
	err := run(context.Background(), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "HOOKSTEP_TABLE is not set") {
		t.Fatalf("got %v, want an error naming HOOKSTEP_TABLE", err)
	}
}
