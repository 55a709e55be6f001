package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtrace/mtrace/internal/workload"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// lastLine is the last line of a run's stderr: the one-line error of a run that failed.
var lastLine = workload.LastLine

// syncBuffer is a bytes.Buffer safe to write from one goroutine and read from another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mtraceRun is one in-process run of the CLI.
type mtraceRun struct {
	code           int
	stdout, stderr string
}

func runMtrace(ctx context.Context, stdin *os.File, args ...string) mtraceRun {
	var stdout, stderr syncBuffer
	if stdin == nil {
		stdin, _ = os.Open(os.DevNull)
		defer stdin.Close()
	}
	code := run(ctx, append([]string{"mtrace"}, args...), stdin, &stdout, &stderr, false) // the test process keeps its capabilities
	return mtraceRun{code, stdout.String(), stderr.String()}
}

// runMtraceProcess runs mtrace to its end in a process of its own (this
// test binary as mtrace), which drops its capabilities once attached as
// the installed command does, with the test's environment.
func runMtraceProcess(t *testing.T, args ...string) mtraceRun {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MTRACE_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second // the traced command may hold stderr open after mtrace is gone
	if err := cmd.Run(); cmd.ProcessState == nil {
		t.Fatalf("run mtrace: %v", err)
	}
	return mtraceRun{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// tally is what a testdata program says it did in one function.
type tally struct {
	Allocs, AllocBytes, Frees, FreeBytes uint64
}

// parseTallies reads the "tally pid=PID FUNCTION allocs=N ..." lines of
// testdata programs: per pid, per function, summed over the processes that
// had the pid (a long run reuses pids; checkTallies sums the report alike).
func parseTallies(t *testing.T, out string) map[int]map[string]tally {
	t.Helper()
	tallies := make(map[int]map[string]tally)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var pid int
		var fn string
		var tl tally
		if _, err := fmt.Sscanf(sc.Text(), "tally pid=%d %s allocs=%d alloc_bytes=%d frees=%d free_bytes=%d",
			&pid, &fn, &tl.Allocs, &tl.AllocBytes, &tl.Frees, &tl.FreeBytes); err == nil {
			if tallies[pid] == nil {
				tallies[pid] = make(map[string]tally)
			}
			sum := tallies[pid][fn]
			tallies[pid][fn] = tally{sum.Allocs + tl.Allocs, sum.AllocBytes + tl.AllocBytes, sum.Frees + tl.Frees, sum.FreeBytes + tl.FreeBytes}
		}
	}
	if len(tallies) == 0 {
		t.Fatalf("no tally lines in the program's output:\n%s", out)
	}
	return tallies
}

// expect says what a testdata program's stacks must look like.
type expect struct {
	bin       string            // module the tallied functions live in
	exe       string            // executable of the process, if not bin
	callees   map[string]string // tallied function -> prefix of the allocation function it calls
	allocator string            // module the allocation functions must be in; "" for the C library
}

var allocsProgram = map[string]string{"make_small": "malloc", "make_zeroed": "calloc", "grow": "realloc"}

// checkTallies compares, for every pid that printed tallies, the report's
// counts per calling function in want.callees with what the program says it did.
func checkTallies(t *testing.T, r *sink.Report, programOut string, want expect) {
	t.Helper()
	if r.Schema != sink.Schema {
		t.Errorf("schema %d, want %d", r.Schema, sink.Schema)
	}
	if r.LostEvents != 0 {
		t.Errorf("lost events %d, want 0", r.LostEvents)
	}
	for pid, tallies := range parseTallies(t, programOut) {
		got := make(map[string]sink.Counts)
		found := false
		for _, proc := range r.Processes {
			if proc.Pid != pid {
				continue
			}
			found = true
			var total sink.Counts
			for _, s := range proc.Stacks {
				total.Add(s.Counts)
				if len(s.Frames) < 2 {
					continue
				}
				callee, caller := s.Frames[0], s.Frames[1]
				prefix, ok := want.callees[caller.Function]
				if !ok {
					continue
				}
				if !strings.HasPrefix(callee.Function, prefix) {
					t.Errorf("pid %d: %s calls %s, want %s", pid, caller.Function, callee.Function, prefix)
				}
				if want.allocator != "" && callee.Module != want.allocator {
					t.Errorf("pid %d: %s calls %s in %s, want it in %s", pid, caller.Function, callee.Function, callee.Module, want.allocator)
				}
				if caller.Module != want.bin {
					t.Errorf("pid %d: %s is in module %s, want %s", pid, caller.Function, caller.Module, want.bin)
				}
				c := got[caller.Function]
				c.Add(s.Counts)
				got[caller.Function] = c
			}
			if total != proc.Totals {
				t.Errorf("pid %d: totals %+v, sum of stacks %+v", pid, proc.Totals, total)
			}
			exe := want.exe
			if exe == "" {
				exe = want.bin
			}
			if strings.TrimSuffix(proc.Exe, " (deleted)") != exe && len(got) > 0 {
				t.Errorf("pid %d: exe %q, want %q", pid, proc.Exe, exe)
			}
		}
		if !found {
			t.Errorf("pid %d not in the report; the program said:\n%s", pid, programOut)
			continue
		}
		for fn, w := range tallies {
			if _, ok := want.callees[fn]; !ok {
				continue // checked by the test itself
			}
			wantCounts := sink.Counts{
				Allocs: w.Allocs, AllocBytes: w.AllocBytes, Frees: w.Frees, FreeBytes: w.FreeBytes,
				LiveObjects: w.Allocs - w.Frees, LiveBytes: w.AllocBytes - w.FreeBytes,
			}
			c := got[fn]
			c.LeakedObjects, c.LeakedBytes = 0, 0 // checked by the leak test
			if c != wantCounts {
				t.Errorf("pid %d %s: report %+v, program did %+v%s", pid, fn, c, wantCounts, describe(r, pid))
			}
		}
	}
}

func readReport(t *testing.T, path string) *sink.Report {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r sink.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("parse report: %v\n%s", err, data)
	}
	return &r
}

// checkFDs fails the test if the process holds more file descriptors at the
// end of the test than when it was called: every program, map, link and
// ring buffer of a run is a descriptor, so this catches any left open.
func checkFDs(t *testing.T) {
	t.Helper()
	count := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(entries)
	}
	before := count()
	t.Cleanup(func() {
		if after := count(); after > before {
			t.Errorf("%d file descriptors open after the run, %d before", after, before)
		}
	})
}

// background is a run of mtrace in a goroutine, stopped by cancelling its context.
type background struct {
	cancel context.CancelFunc
	done   chan int
	stderr syncBuffer
}

// startMtrace runs mtrace with args until stop, and returns once it has attached.
func startMtrace(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan int, 1)}
	go func() {
		b.done <- run(ctx, append([]string{"mtrace"}, args...), strings.NewReader(""), &syncBuffer{}, &b.stderr, false)
	}()
	t.Cleanup(cancel)
	waitFor(t, &b.stderr, "msg=attached", b.done)
	return b
}

// stop ends the run and fails the test unless mtrace exits 0.
func (b *background) stop(t *testing.T) {
	t.Helper()
	b.cancel()
	b.wait(t)
}

// wait waits for mtrace to end by itself (its targets exited), with exit code 0.
func (b *background) wait(t *testing.T) {
	t.Helper()
	select {
	case code := <-b.done:
		if code != 0 {
			t.Fatalf("mtrace exit %d: %s", code, b.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mtrace did not stop")
	}
}

// waitFor waits until buf contains s, failing if the run ends or takes too long first.
func waitFor(t *testing.T, buf *syncBuffer, s string, done <-chan int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(buf.String(), s) {
		select {
		case code := <-done:
			t.Fatalf("mtrace exited %d before %q: %s", code, s, buf.String())
		case <-deadline:
			t.Fatalf("no %q from mtrace: %s", s, buf.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// runTarget runs a target program to its end and returns its stdout.
func runTarget(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

// requireFile returns path, skipping the test if it does not exist, except
// in CI (MTRACE_REQUIRE_BPF=1), whose .ci/run installs it.
func requireFile(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("MTRACE_REQUIRE_BPF") == "1" {
			t.Fatalf("%s must be installed here: %v", path, err)
		}
		t.Skipf("needs %s", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// waiting is a target that waits to be released before it allocates:
// testdata's allocs --wait, or a command that ends in it.
type waiting struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   syncBuffer
}

// startWaiting starts a target and returns once it has said "ready".
func startWaiting(t *testing.T, name string, args ...string) *waiting {
	t.Helper()
	return startCommand(t, exec.Command(name, args...), "ready")
}

// startCommand starts a waiting target's cmd and returns once it has said ready.
func startCommand(t *testing.T, cmd *exec.Cmd, ready string) *waiting {
	t.Helper()
	w := &waiting{cmd: cmd}
	stdin, err := w.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	w.stdin = stdin
	w.cmd.Stdout = &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.cmd.Process.Kill(); w.cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(w.out.String(), ready) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never said %s: %q", strings.Join(cmd.Args, " "), ready, w.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w
}

func (w *waiting) pid() string { return strconv.Itoa(w.cmd.Process.Pid) }

// release lets the target allocate, waits for it to exit successfully, and
// returns what it printed.
func (w *waiting) release(t *testing.T) string {
	t.Helper()
	w.stdin.Write([]byte("go\n"))
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("target %s: %v: %q", strings.Join(w.cmd.Args, " "), err, w.out.String())
	}
	return w.out.String()
}

// describe summarizes what the report holds for pid, for failure messages.
func describe(r *sink.Report, pid int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n  dropped %+v, skipped %d", r.Dropped, r.SkippedProcesses)
	for _, p := range r.Processes {
		if p.Pid != pid {
			continue
		}
		fmt.Fprintf(&b, "\n  image exe=%q argv0=%q exited=%v allocators=%v", p.Exe, p.Argv0, p.Exited, p.Allocators)
		for i, s := range p.Stacks {
			if i == 4 {
				break
			}
			var names []string
			for _, f := range s.Frames {
				names = append(names, f.Function)
			}
			fmt.Fprintf(&b, "\n    %d allocs: %s", s.Allocs, strings.Join(names, " < "))
		}
	}
	return b.String()
}

// terminal is a tmux session running a shell command on a terminal of its own.
type terminal struct {
	t       *testing.T
	session string
}

// startTerminal runs cmd in a new tmux session of 200 columns and rows rows,
// killed when the test ends; the test skips without tmux.
func startTerminal(t *testing.T, cmd string, rows int) *terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("needs tmux")
	}
	term := &terminal{t: t, session: fmt.Sprintf("mtrace-%s-%d", t.Name(), os.Getpid())}
	if err := exec.Command("tmux", "new-session", "-d", "-s", term.session, "-x", "200", "-y", strconv.Itoa(rows), cmd).Run(); err != nil {
		t.Fatalf("tmux: %v", err)
	}
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", term.session).Run() })
	return term
}

// screen returns what the terminal shows.
func (term *terminal) screen() []byte {
	out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", term.session).Output()
	return out
}

// waitFor waits until the terminal shows want and returns the screen, failing
// the test if it does not within 20 s.
func (term *terminal) waitFor(want string) []byte {
	term.t.Helper()
	var screen []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if screen = term.screen(); bytes.Contains(screen, []byte(want)) {
			return screen
		}
	}
	term.t.Fatalf("the screen never showed %q:\n%s", want, screen)
	return nil
}

// keys types keys on the terminal.
func (term *terminal) keys(keys string) {
	term.t.Helper()
	if err := exec.Command("tmux", "send-keys", "-t", term.session, keys).Run(); err != nil {
		term.t.Fatal(err)
	}
}

// nobodyArgs are setpriv's arguments that run argv as the unprivileged
// attacker: user nobody, group nogroup, no supplementary groups.
func nobodyArgs(t *testing.T, argv ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	return append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}, argv...)
}

// asNobody is a command that runs name as the unprivileged attacker (nobodyArgs).
func asNobody(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command("setpriv", nobodyArgs(t, append([]string{name}, args...)...)...)
}

// inCgroup has cmd start in cgroup (clone3), and returns it.
func inCgroup(t *testing.T, cgroup string, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	dir, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	return cmd
}

// openFDs counts the file descriptors process pid holds.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// commandDir returns a temporary directory that the commands mtrace starts
// (as nobody) may write in.
func commandDir(t *testing.T) string {
	t.Helper()
	dir := tracertest.SharedDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}
