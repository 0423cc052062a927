package main

import (
	"context"
	"strings"
	"testing"
)

// A misconfigured cold start fails before lambda.Start, with one error
// naming every variable this function cannot start without.
func TestRunNamesTheMissingConfiguration(t *testing.T) {
	err := run(context.Background(), func(string) string { return "" })
	if err == nil {
		t.Fatal("run started without configuration")
	}
	for _, name := range []string{"HOOKSTEP_TABLE"} {
		if !strings.Contains(err.Error(), name+" is not set") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	for _, name := range []string{"HOOKSTEP_STATE_MACHINE_ARN", "HOOKSTEP_ADMIN_TOKEN_SECRET_ARN"} {
		if strings.Contains(err.Error(), name) {
			t.Errorf("error names %s, which this function does not need: %v", name, err)
		}
	}
}
