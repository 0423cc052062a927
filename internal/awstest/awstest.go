// Package awstest runs the AWS stand-ins hookstep's tests and its bench
// use on this machine: dynalite (the DynamoDB API, from infra/node_modules),
// the real Lambda bootstrap binaries under the AWS Lambda Runtime Interface
// Emulator, fauxqs (the SQS API), and a fake of Lambda's asynchronous
// Invoke. Everything binds 127.0.0.1 on a free port and runs in its own
// process group, killed when the test ends (or with the process that
// started it).
//
// Each stand-in has two doors: one for tests (Dynalite, Run, NewSQS,
// NewLambda), which takes a testing.TB, fails or skips it and cleans up
// after it, and one for the bench and TestMain (StartDynalite,
// StartEmulator, Invoke), which returns errors and a Process to Stop.
//
// The tools come from `make test` (npm ci in infra/, go install of the
// emulator). When one is missing, a test fails if HOOKSTEP_REQUIRE_AWS_TOOLS
// is 1 (make test and CI set it) and otherwise skips with one line saying
// how to install it.
package awstest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Root returns the repository's top directory, found from this source
// file's location so that any package's tests can call it.
func Root(t testing.TB) string {
	t.Helper()
	root, err := RootDir()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// RootDir is Root for callers without a test.
func RootDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("awstest: cannot locate the repository")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file))), nil
}

// RequireTool returns path if it exists; otherwise it fails the test (when
// HOOKSTEP_REQUIRE_AWS_TOOLS=1) or skips it with one line.
func RequireTool(t testing.TB, what, path string) string {
	t.Helper()
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("%s not found at %q; `make test` installs it", what, path)
	if os.Getenv("HOOKSTEP_REQUIRE_AWS_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RIE returns the path of the Lambda runtime emulator that make test
// installs (HOOKSTEP_RIE, or build/tools/aws-lambda-rie).
func RIE(t testing.TB) string {
	t.Helper()
	path := os.Getenv("HOOKSTEP_RIE")
	if path == "" {
		path = filepath.Join(Root(t), "build", "tools", "aws-lambda-rie")
	}
	return RequireTool(t, "the Lambda runtime emulator", path)
}
