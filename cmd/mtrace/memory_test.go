package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
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

	"github.com/mtrace/mtrace/internal/overhead"
	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestMillionLiveAllocations traces a program that keeps a million blocks
// live for a second. The kernel remembers each one (they are all freed
// in the end, and every free is matched), while mtrace keeps only per-stack
// aggregates: its peak RSS grows by less than a record per allocation would
// take over a run of the same program with a thousand blocks live, measured
// first as the floor.
func TestMillionLiveAllocations(t *testing.T) {
	tracertest.RequireBPF(t)
	hold := tracertest.BuildC(t, "hold.c")
	pol := writeFile(t, "policy.toml", overhead.Policy)
	floor, _ := recordHeld(t, hold, pol, 1000)
	const n = 1000000
	peak, r := recordHeld(t, hold, pol, n)
	if len(r.Processes) != 1 {
		t.Fatalf("%d processes in the report, want 1", len(r.Processes))
	}
	for _, fn := range []string{"fill_even", "fill_odd"} {
		var got uint64
		for _, s := range r.Processes[0].Stacks {
			if len(s.Frames) > 1 && s.Frames[1].Function == fn {
				if s.Allocs != n/2 || s.AllocBytes != n/2*32 || s.Frees != n/2 || s.FreeBytes != n/2*32 {
					t.Errorf("%s: %+v, want %d allocations and frees of 32 bytes", fn, s.Counts, n/2)
				}
				got++
			}
		}
		if got != 1 {
			t.Errorf("%s: %d stacks, want 1", fn, got)
		}
	}
	if r.LostEvents != 0 || r.Dropped.LiveMapFull != 0 {
		t.Errorf("%d events lost, %d allocations the live map had no room for", r.LostEvents, r.Dropped.LiveMapFull)
	}
	// A record per live allocation would take at least its address, size
	// and stack: 24 bytes, a million times.
	const perAllocation = 24 * n >> 10
	t.Logf("mtrace's peak RSS: %d MiB with %d allocations live, %d MiB with 1000", peak>>10, n, floor>>10)
	if peak > floor+perAllocation {
		t.Errorf("mtrace's peak RSS %d MiB with %d allocations live, want under %d MiB (%d MiB with 1000, plus what a record per allocation would take)",
			peak>>10, n, (floor+perAllocation)>>10, floor>>10)
	}
}

// recordHeld records hold keeping n blocks live for a second, and returns
// mtrace's peak RSS in KiB and its report.
func recordHeld(t *testing.T, hold, pol string, n int) (uint64, *sink.Report) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	cmd, stderr := startMtraceProcess(t, "record", "--policy", pol, "--format", "json", "--output", out, "--", hold, strconv.Itoa(n), "1")
	var peak uint64
	for {
		if kib, err := peakRSS(cmd.Process.Pid); err == nil {
			peak = kib
		}
		if strings.Contains(stderr.String(), "report written") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtrace: %v: %s", err, stderr.String())
	}
	return peak, readReport(t, out)
}

// peakRSS reads a process's peak resident set size in KiB (VmHWM).
func peakRSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// TestEndedProcessesLeaveTheLiveMap runs ten programs one after another in
// a cgroup, each exiting with six blocks still allocated, under a policy
// whose live map holds only sixteen. mtrace removes an ended process's
// allocations from the kernel's map (counting them as leaked first, with
// --leaks), so the map never fills: every count is exact, and every block
// live at a program's exit is reported leaked.
func TestEndedProcessesLeaveTheLiveMap(t *testing.T) {
	r, out, allocs := recordRunsInCgroup(t, "[limits]\nmax_live = 16\n", 10, 300*time.Millisecond, "--leaks", "--min-age", "0s")
	if r.Dropped.LiveMapFull != 0 {
		t.Errorf("the live map was full %d times", r.Dropped.LiveMapFull)
	}
	checkTallies(t, r, out, expect{bin: allocs, callees: allocsProgram})
	for _, p := range r.Processes {
		for _, s := range p.Stacks {
			if s.LeakedObjects != s.LiveObjects || s.LeakedBytes != s.LiveBytes {
				t.Errorf("pid %d %v: leaked %d (%d B), live at the end %d (%d B)",
					p.Pid, s.Frames[:min(2, len(s.Frames))], s.LeakedObjects, s.LeakedBytes, s.LiveObjects, s.LiveBytes)
			}
		}
	}
}

// TestExitedProcessesFold runs sixty programs in a cgroup under a policy
// that keeps ten exited processes apart: the rest are folded, per
// executable, into one entry that sums them. Nothing is lost in folding:
// the entries of the program add up to sixty processes, and their counts,
// per function, to exactly what the sixty programs did.
func TestExitedProcessesFold(t *testing.T) {
	r, out, allocs := recordRunsInCgroup(t, "[limits]\nmax_exited_processes = 10\n", 60, 20*time.Millisecond)
	want := map[string]sink.Counts{}
	for _, tallies := range parseTallies(t, out) {
		for fn, tl := range tallies {
			c := want[fn]
			c.Add(sink.Counts{Allocs: tl.Allocs, AllocBytes: tl.AllocBytes, Frees: tl.Frees, FreeBytes: tl.FreeBytes,
				LiveObjects: tl.Allocs - tl.Frees, LiveBytes: tl.AllocBytes - tl.FreeBytes})
			want[fn] = c
		}
	}
	got := map[string]sink.Counts{}
	processes, folded := 0, 0
	for _, p := range r.Processes {
		if p.Exe != allocs {
			continue
		}
		processes += max(p.FoldedProcesses, 1)
		if p.FoldedProcesses > 0 {
			folded++
			if p.Pid != 0 {
				t.Errorf("a folded entry has pid %d", p.Pid)
			}
		}
		for _, s := range p.Stacks {
			if len(s.Frames) > 1 {
				if _, ok := allocsProgram[s.Frames[1].Function]; ok {
					c := got[s.Frames[1].Function]
					c.Add(s.Counts)
					got[s.Frames[1].Function] = c
				}
			}
		}
	}
	if processes != 60 || folded != 1 {
		t.Errorf("the report has %d processes of %s in %d folded entries, want 60 in 1", processes, allocs, folded)
	}
	for fn, w := range want {
		if got[fn] != w {
			t.Errorf("%s: %+v in the report, the programs did %+v", fn, got[fn], w)
		}
	}
}

// recordRunsInCgroup records a new cgroup under the policy text (and the
// extra record flags) while allocs.c runs in it runs times, one after
// another with a pause after each. It returns the report, what the
// programs printed (every run is checked to have tallied) and allocs.c's path.
func recordRunsInCgroup(t *testing.T, policy string, runs int, pause time.Duration, flags ...string) (*sink.Report, string, string) {
	t.Helper()
	tracertest.RequireBPF(t)
	allocs := tracertest.BuildC(t, "allocs.c")
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-%s-%d", t.Name(), os.Getpid())))
	pol := writeFile(t, "policy.toml", policy)
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, append([]string{"record", "--cgroup", cg, "--policy", pol, "--format", "json", "--output", out}, flags...)...)
	var outputs strings.Builder
	for range runs {
		outputs.WriteString(runInCgroup(t, cg, allocs))
		time.Sleep(pause)
	}
	b.stop(t)
	if got := len(parseTallies(t, outputs.String())); got != runs {
		t.Fatalf("%d processes tallied, want %d", got, runs)
	}
	return readReport(t, out), outputs.String(), allocs
}

// TestSweepEndedImages runs five processes one after another, each leaving
// 600 blocks allocated when it exits, under a live-allocation map of 1000
// entries: the map never fills only if the allocations of processes that
// ended are swept out of it while tracing goes on. With --leaks --min-age 0
// the sweep counts each of the 3000 blocks as leaked, once.
func TestSweepEndedImages(t *testing.T) {
	tracertest.RequireBPF(t)
	leak := tracertest.BuildC(t, "leak.c")
	pol := writeFile(t, "policy.toml", "[limits]\nmax_live = 1000\n")
	script := fmt.Sprintf("for i in 1 2 3 4 5; do %s 600; sleep 0.5; done", leak)
	r, _ := recordJSON(t, "--policy", pol, "--leaks", "--min-age", "0s", "--", "sh", "-c", script)
	if r.Dropped.LiveMapFull != 0 {
		t.Errorf("the live map filled %d times: ended processes were not swept", r.Dropped.LiveMapFull)
	}
	var processes, leaked uint64
	for _, p := range r.Processes {
		if p.Exe != leak {
			continue
		}
		processes++
		for _, s := range p.Stacks {
			if len(s.Frames) > 1 && s.Frames[1].Function == "leak_blocks" {
				leaked += s.LeakedObjects
			}
		}
	}
	if processes != 5 || leaked != 5*600 {
		t.Errorf("%d leak processes with %d blocks leaked, want 5 with %d", processes, leaked, 5*600)
	}
}

// TestReportGzipBomb runs mtrace report on a gzip file of half a MiB that
// inflates to 512 MiB of zeros, twice the default max_output_bytes: it is
// refused in one line and exit code 1, and since its inflated size is
// measured before anything is kept, mtrace's peak RSS stays under 64 MiB
// (reading it all took 2.7 GB for a 1 GiB bomb before).
func TestReportGzipBomb(t *testing.T) {
	bomb := filepath.Join(t.TempDir(), "bomb.pb.gz")
	f, err := os.Create(bomb)
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 512 {
		zw.Write(zeros)
	}
	if err := errors.Join(zw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("inflates to more than %d bytes (max_output_bytes)", policy.DefaultLimits().MaxOutputBytes)
	if peak := refuseReport(t, bomb, want); peak > 64<<10 {
		t.Errorf("mtrace report's peak RSS %d MiB on a %d KiB gzip bomb, want at most 64 MiB", peak>>10, fileSize(t, bomb)>>10)
	}
}

// TestReportDecodeBombs runs mtrace report on reports that are small but
// would take far more memory decoded than a report of their size: 48 MiB
// of JSON made of 16 million empty frames (6.5 GB decoded before), and 50
// MiB of pprof profile made of 25 million empty samples (4.2 GB). Both are
// refused in one line, with exit code 1, before they are decoded: mtrace's
// peak RSS stays under 128 MiB (70 MiB measured: the file, read whole, and
// 20 MiB).
func TestReportDecodeBombs(t *testing.T) {
	dir := t.TempDir()
	frames := filepath.Join(dir, "frames.json")
	var b bytes.Buffer
	b.WriteString(`{"schema":1,"processes":[{"stacks":[{"frames":[{}`)
	b.Write(bytes.Repeat([]byte(",{}"), 16<<20))
	b.WriteString(`]}]}]}`)
	samples := filepath.Join(dir, "samples.pb")
	for path, data := range map[string][]byte{frames: b.Bytes(), samples: bytes.Repeat([]byte{0x12, 0x00}, 25<<20)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{frames, samples} {
		if peak := refuseReport(t, path, "bytes decoded, more than"); peak > 128<<10 {
			t.Errorf("mtrace report's peak RSS %d MiB on %s, want at most 128 MiB", peak>>10, path)
		}
	}
}

// refuseReport runs mtrace report on path in a process of its own, checks
// that it fails with exit code 1 and one line saying want, and returns its
// peak RSS in KiB.
func refuseReport(t *testing.T, path, want string) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "report", path)
	cmd.Env = append(os.Environ(), "MTRACE_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peak := watchPeak(cmd.Process.Pid)
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitRuntime {
		t.Errorf("mtrace report %s exited %d (%v), want %d", path, code, err, exitRuntime)
	}
	if msg := stderr.String(); strings.Count(msg, "\n") != 1 || !strings.Contains(msg, want) {
		t.Errorf("mtrace report %s said %q, want one line saying %q", path, msg, want)
	}
	t.Logf("mtrace report's peak RSS on %s (%d KiB): %d MiB", filepath.Base(path), fileSize(t, path)>>10, peak()>>10)
	return peak()
}

// watchPeak reads a process's VmHWM every 10ms until it exits, and returns
// a function that returns the last value read, in KiB: since VmHWM only
// grows, it is the process's peak RSS but for what it grew in its last
// 10ms. (The Maxrss of a child started with vfork, as os/exec does, counts
// the RSS of the test process that started it too.)
func watchPeak(pid int) func() uint64 {
	var mu sync.Mutex
	var peak uint64
	go func() {
		for {
			kib, err := peakRSS(pid)
			if err != nil {
				return
			}
			mu.Lock()
			peak = kib
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() uint64 {
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestForkStorm: an unprivileged process in a traced cgroup forks 3000
// children that exit, then 3000 that stay alive until mtrace has written
// its report, each allocating five blocks from one of 64 stacks. Under a
// policy that keeps 100 exited and 100 running processes apart, the report
// has at most 200 processes of the storm apart, the rest folded into one
// entry for its executable, and says so (folded_processes, and a line of
// the text report); nothing is lost in folding: the entries add up to 6000
// processes and 30000 allocations. mtrace's peak RSS stays under 140 MiB
// (106 MiB measured, 92 MiB of it tracing one process) and the report under
// 6 MiB (4.4 MB measured); with every running process apart they were 165
// MiB and 64 MB.
func TestForkStorm(t *testing.T) {
	tracertest.RequireBPF(t)
	const n = 3000
	storm := tracertest.BuildC(t, "storm.c")
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-storm-%d", os.Getpid())))
	pol := writeFile(t, "policy.toml", "[limits]\nmax_targets = 100\nmax_exited_processes = 100\n")
	out := filepath.Join(t.TempDir(), "report.json")
	mtrace, stderr := startMtraceProcess(t, "record", "--cgroup", cg, "--policy", pol, "--format", "json", "--output", out)
	peak := watchPeak(mtrace.Process.Pid)

	if got := runAsNobody(t, cg, nil, storm, strconv.Itoa(n)); got != fmt.Sprintf("storm %d\n", n) {
		t.Fatalf("storm said %q", got)
	}
	hold := startAsNobody(t, cg, storm, strconv.Itoa(n), "live")
	waitFor(t, hold.out, fmt.Sprintf("forked %d", n), nil)
	// The children's events are in the ring buffer: what is left of it is
	// read before the report is written.
	mtrace.Process.Signal(syscall.SIGTERM)
	if err := mtrace.Wait(); err != nil {
		t.Fatalf("mtrace: %v: %s", err, stderr.String())
	}
	hold.release(t)

	r := readReport(t, out)
	size := fileSize(t, out)
	// An allocation whose stack the kernel could not walk (the mapping lock
	// was busy: a stack error) is counted without its callers.
	processes, apart, allocs, stackless, folded := 0, 0, uint64(0), uint64(0), 0
	for _, p := range r.Processes {
		if p.Exe != storm {
			continue
		}
		processes += max(p.FoldedProcesses, 1)
		if p.FoldedProcesses == 0 {
			apart++
		}
		folded += p.FoldedProcesses
		for _, s := range p.Stacks {
			switch {
			case len(s.Frames) > 1 && s.Frames[1].Function == "nest":
				allocs += s.Allocs
			case len(s.Frames) == 1 && s.Frames[0].Function != sink.OtherStacks:
				stackless += s.Allocs
			}
		}
	}
	t.Logf("%d storm processes, %d apart, %d folded; %d allocations in nest, %d without a stack (%d stack errors); report %d KiB, mtrace's peak RSS %d MiB",
		processes, apart, folded, allocs, stackless, r.Dropped.StackErrors, size>>10, peak()>>10)
	if processes != 2*n || allocs+stackless != 5*2*n || stackless > r.Dropped.StackErrors {
		t.Errorf("the report has %d processes of the storm with %d allocations in nest and %d without a stack (%d stack errors), want %d with %d",
			processes, allocs, stackless, r.Dropped.StackErrors, 2*n, 5*2*n)
	}
	if apart > 200 || r.FoldedProcesses < folded || folded < 2*n-200 {
		t.Errorf("%d storm processes apart, %d folded, report says %d folded: want at most 200 apart, the rest folded", apart, folded, r.FoldedProcesses)
	}
	text := runMtrace(context.Background(), nil, "report", "--format", "text", out)
	if want := fmt.Sprintf("folded: %d process(es)", r.FoldedProcesses); !strings.Contains(text.stdout, want) {
		t.Errorf("the text report does not say %q:\n%.2000s", want, text.stdout)
	}
	if peak() > 140<<10 {
		t.Errorf("mtrace's peak RSS %d MiB, want at most 140 MiB", peak()>>10)
	}
	if size > 6<<20 {
		t.Errorf("report of %d KiB, want at most 6 MiB", size>>10)
	}
}

// runAsNobody runs argv as nobody in cgroup and returns what it printed.
func runAsNobody(t *testing.T, cgroup string, stdin io.Reader, argv ...string) string {
	t.Helper()
	cmd := asNobody(t, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	inCgroup(t, cgroup, cmd)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", argv[0], err)
	}
	return string(out)
}

// held is a program waiting for a line on its stdin.
type held struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
}

// startAsNobody starts argv as nobody in cgroup, to be released later.
func startAsNobody(t *testing.T, cgroup string, argv ...string) *held {
	t.Helper()
	h := &held{cmd: asNobody(t, argv[0], argv[1:]...), out: new(syncBuffer)}
	h.cmd.Stdout = h.out
	inCgroup(t, cgroup, h.cmd)
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.stdin.Close(); h.cmd.Wait() })
	return h
}

// release lets the program go on and waits for it to end.
func (h *held) release(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("%s: %v", h.cmd.Path, err)
	}
}

// TestForkStormStacks: 600 processes in a traced cgroup, run as nobody,
// allocate from 128 distinct stacks (malloc and calloc, 64 depths each) and
// exit, under a policy of 64 stacks and 10 exited processes apart. The
// folded entry of the storm keeps at most 64 stacks with their frames and
// sums the others into "[other stacks]", which the report counts
// (folded_stacks, and the text report's folded line); every allocation is
// still counted.
func TestForkStormStacks(t *testing.T) {
	tracertest.RequireBPF(t)
	const n, maxStacks = 600, 64
	storm := tracertest.BuildC(t, "storm.c")
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-stacks-%d", os.Getpid())))
	pol := writeFile(t, "policy.toml", fmt.Sprintf("[limits]\nmax_stacks = %d\nmax_exited_processes = 10\n", maxStacks))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--cgroup", cg, "--policy", pol, "--format", "json", "--output", out)
	if got := runAsNobody(t, cg, nil, storm, strconv.Itoa(n)); got != fmt.Sprintf("storm %d\n", n) {
		t.Fatalf("storm said %q", got)
	}
	b.stop(t)
	r := readReport(t, out)
	var allocs, other uint64
	for _, p := range r.Processes {
		if p.Exe != storm {
			continue
		}
		named := 0
		for _, s := range p.Stacks {
			allocs += s.Allocs
			if s.Frames[0].Function == sink.OtherStacks {
				other += s.Allocs
			} else if len(s.Frames) > 1 {
				named++
			}
		}
		if p.FoldedProcesses > 0 && named > maxStacks {
			t.Errorf("the folded entry of %d processes has %d stacks with frames, want at most %d", p.FoldedProcesses, named, maxStacks)
		}
	}
	t.Logf("%d allocations, %d of them in %s; %d stacks folded", allocs, other, sink.OtherStacks, r.FoldedStacks)
	if allocs != 5*n {
		t.Errorf("%d allocations of the storm in the report, want %d", allocs, 5*n)
	}
	if r.FoldedStacks == 0 || other == 0 {
		t.Errorf("folded_stacks %d, %d allocations in %s: want the stacks past %d folded", r.FoldedStacks, other, sink.OtherStacks, maxStacks)
	}
	text := runMtrace(context.Background(), nil, "report", "--format", "text", out)
	if want := fmt.Sprintf("%d of their stacks into %s past max_stacks", r.FoldedStacks, sink.OtherStacks); !strings.Contains(text.stdout, want) {
		t.Errorf("the text report does not say %q:\n%.2000s", want, text.stdout)
	}
}

// TestForkStormTargets: a command run as nobody forks 200 children that
// stay alive together, under a policy of 50 targets. The kernel follows a
// command's children by pid, in a map of max_targets: the children it has
// no room for are not traced, and the report counts them
// (dropped.targets_full) — the allocations it has are those of the others.
func TestForkStormTargets(t *testing.T) {
	tracertest.RequireBPF(t)
	const n = 200
	storm := tracertest.BuildC(t, "storm.c")
	pol := writeFile(t, "policy.toml", "[limits]\nmax_targets = 50\n")
	r, _ := recordJSON(t, "--policy", pol, "--user", "nobody", "--", storm, strconv.Itoa(n), "live")
	var allocs uint64
	for _, p := range r.Processes {
		if p.Exe == storm {
			allocs += p.Totals.Allocs
		}
	}
	full := r.Dropped.TargetsFull
	t.Logf("%d children not traced, %d allocations", full, allocs)
	if full < n-50 || full > n || allocs != 5*(n-full) {
		t.Errorf("%d children not traced and %d allocations, want at least %d not traced and 5 allocations from each of the others", full, allocs, n-50)
	}
}
