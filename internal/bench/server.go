package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is the local-mode binary running as a child process.
type server struct {
	cmd  *exec.Cmd
	URL  string // http://127.0.0.1:port
	done chan error
}

// startServer runs bin with the HOOKSTEP_* variables in env (on top of a
// minimal environment: the bench's own HOOKSTEP_* variables are not
// inherited), its stderr appended to logw, and waits for its "hookstep
// listening on" line.
func startServer(ctx context.Context, bin string, env map[string]string, logw io.Writer) (*server, error) {
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = logw
	// Its own process group, killed with the bench if the bench dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "hookstep listening on "); ok {
				addr <- u
			}
		}
		io.Copy(io.Discard, out)
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case s.URL = <-addr:
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("%s exited before listening: %v (see its log)", bin, err)
	case <-time.After(30 * time.Second):
		s.kill()
		return nil, fmt.Errorf("%s did not print its address within 30s", bin)
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
}

// Pid returns the server's process id.
func (s *server) Pid() int { return s.cmd.Process.Pid }

// stop asks the server to shut down (SIGTERM) and kills it if it has not
// exited within the grace period.
func (s *server) stop(grace time.Duration) error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(grace):
		s.kill()
		return fmt.Errorf("server did not stop within %s; killed", grace)
	}
}

func (s *server) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// procCPU returns a process's user+system CPU time so far, from
// /proc/<pid>/stat (clock ticks of 10 ms, Linux's USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are
	// space-separated, utime and stime being fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const tick = 10 * time.Millisecond
	return time.Duration(utime+stime) * tick, nil
}

// procPeakRSS returns a process's peak resident set size in bytes (VmHWM).
func procPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// machineBusy returns the CPU time all processes have used so far, from
// the first line of /proc/stat (every state but idle and iowait).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("unexpected /proc/stat format")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	const tick = 10 * time.Millisecond
	return time.Duration(busy) * tick, nil
}

// cpuSample is a reading of the CPU time used by the server, by this
// process (load generator and receivers) and by the whole machine.
type cpuSample struct {
	server, self, machine time.Duration
}

func sampleCPU(serverPid int) (cpuSample, error) {
	var c cpuSample
	var err1, err2, err3 error
	c.server, err1 = procCPU(serverPid)
	c.self, err2 = procCPU(os.Getpid())
	c.machine, err3 = machineBusy()
	return c, errors.Join(err1, err2, err3)
}
