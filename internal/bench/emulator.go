package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookstep/hookstep/internal/awstest"
)

// emulator is one Lambda function under the AWS Lambda Runtime
// Interface Emulator. The emulator starts the bootstrap on the first
// invocation (the cold start) and prints a REPORT line after each.
type emulator struct {
	*awstest.Process
	url     string
	reports chan invokeReport
	logMu   sync.Mutex
	logs    int // bytes the function itself logged
}

// invokeReport is what the emulator says of an invocation.
type invokeReport struct {
	Init     time.Duration // the runtime's init, on a cold start; 0 after
	Duration time.Duration // the handler's, as Lambda bills it
}

// The emulator logs each phase; these are the lines with the numbers.
// (Its REPORT line's "Init Duration" is not the runtime's init, and its
// "Duration" includes the emulator's own HTTP handling.)
var (
	reInit   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	reRTDone = regexp.MustCompile(`INVOKE RTDONE\(.*duration: ([0-9.]+)ms\)`)
)

// startEmulator runs bootstrap under the emulator, reading its output.
func startEmulator(rie, bootstrap string, env []string) (*emulator, error) {
	pr, pw := io.Pipe()
	e := &emulator{reports: make(chan invokeReport, 1024)}
	go e.scan(pr) // from the start: the pipe holds nothing unread
	p, url, err := awstest.StartEmulator(rie, bootstrap, env, pw)
	if err != nil {
		pw.Close()
		return nil, err
	}
	e.Process, e.url = p, url
	go func() {
		<-p.Exited() // and its output written
		pw.Close()
	}()
	return e, nil
}

// scan reads the emulator's output: REPORT lines become reports; the
// function's own lines are counted (what it would send to CloudWatch Logs).
func (e *emulator) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var rep invokeReport
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "REPORT RequestId"):
			e.reports <- rep
			rep = invokeReport{}
		case strings.Contains(line, "(rapid)"):
			if m := reInit.FindStringSubmatch(line); m != nil {
				rep.Init = msDuration(m[1])
			}
			if m := reRTDone.FindStringSubmatch(line); m != nil {
				rep.Duration = msDuration(m[1])
			}
		case strings.HasPrefix(line, "{"): // the functions log JSON (slog)
			e.logMu.Lock()
			e.logs += len(line) + 1
			e.logMu.Unlock()
		}
	}
	io.Copy(io.Discard, r)
}

func msDuration(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Millisecond))
}

// logBytes returns how many bytes the function has logged so far.
func (e *emulator) logBytes() int {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logs
}

// invoke calls the function with event, decodes its result into out (if
// not nil) and returns the emulator's report of the invocation.
func (e *emulator) invoke(ctx context.Context, event, out any) (invokeReport, error) {
	body, err := awstest.Invoke(ctx, e.url, event)
	if err != nil {
		return invokeReport{}, fmt.Errorf("invoke: %w", err)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return invokeReport{}, fmt.Errorf("invoke: result %s: %w", body, err)
		}
	}
	select {
	case rep := <-e.reports:
		return rep, nil
	case <-time.After(10 * time.Second):
		return invokeReport{}, fmt.Errorf("invoke: no REPORT line from the emulator")
	}
}

// runtimePid returns the process id of the function's bootstrap, the
// emulator's child (running once the first invocation started it).
func (e *emulator) runtimePid(bootstrap string) (int, error) {
	want, err := filepath.EvalSymlinks(bootstrap)
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || exe != want {
			continue
		}
		if ppid, err := parentPid(pid); err == nil && ppid == e.Pid() {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no running %s under the emulator", bootstrap)
}

func parentPid(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("unexpected /proc stat format")
	}
	return strconv.Atoi(f[1])
}

// threadsCPU returns the CPU time of a process's live threads, summed
// from /proc/<pid>/task/*/schedstat (nanoseconds; finer than the 10 ms
// ticks of /proc/<pid>/stat, which short invocations need).
func threadsCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		total += ns
	}
	return time.Duration(total), nil
}
