package awstest

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// DynalitePath returns where `make deps` installs dynalite (pinned in
// infra/package.json) under the repository root.
func DynalitePath(root string) string {
	return filepath.Join(root, "infra", "node_modules", ".bin", "dynalite")
}

// StartDynalite runs dynalite (bin), in memory, on a free loopback port,
// its output to out, and returns it once it accepts connections, with its
// endpoint URL.
func StartDynalite(bin string, out io.Writer) (*Process, string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, "", fmt.Errorf("dynalite needs node: %w", err)
	}
	addr, err := PickAddr()
	if err != nil {
		return nil, "", err
	}
	host, port, _ := strings.Cut(addr, ":")
	p, err := StartProcess(nil, out, bin, "--host", host, "--port", port, "--createTableMs", "0", "--deleteTableMs", "0")
	if err != nil {
		return nil, "", err
	}
	if err := p.WaitListening(addr); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// Dynalite starts a dynalite for the test and returns its endpoint URL.
func Dynalite(t testing.TB) string {
	t.Helper()
	bin := RequireTool(t, "dynalite", DynalitePath(Root(t)))
	p, endpoint, err := StartDynalite(bin, logWriter{t, "dynalite"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return endpoint
}
