package awstest

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listenWithin is how long a stand-in may take to accept connections
// (node starting dynalite on a loaded machine is the slow one).
const listenWithin = 30 * time.Second

// Process is a stand-in running in its own process group, killed with
// the process that started it if that dies first.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited
}

// StartProcess runs name with env added to this process's environment,
// its output (stdout and stderr) to out.
func StartProcess(env []string, out io.Writer, name string, args ...string) (*Process, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid returns the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited and all its output has
// been written.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop kills the process group (the process and anything it started) and
// waits for the process. Stopping a stopped process does nothing.
func (p *Process) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// WaitListening waits until something accepts connections at addr; it
// fails if the process exits first or nothing listens within 30s.
func (p *Process) WaitListening(addr string) error {
	deadline := time.Now().Add(listenWithin)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before listening: %v", filepath.Base(p.cmd.Path), p.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listening at %s after %s", addr, listenWithin)
}

// PickAddr returns a free 127.0.0.1 address.
func PickAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// FreeAddr is PickAddr for tests.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := PickAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// Start runs a stand-in for a test, its output logged to the test, waits
// until it accepts connections at addr (unless addr is empty), and stops
// it when the test ends.
func Start(t testing.TB, env []string, addr, name string, args ...string) *Process {
	t.Helper()
	p, err := StartProcess(env, logWriter{t, filepath.Base(name)}, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if addr != "" {
		if err := p.WaitListening(addr); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// logWriter logs a stand-in's output to its test.
type logWriter struct {
	t    testing.TB
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.HasPrefix(line, "START RequestId") || strings.HasPrefix(line, "END RequestId") {
			continue // the emulator's per-invocation noise
		}
		w.t.Log(w.name + ": " + line)
	}
	return len(p), nil
}
