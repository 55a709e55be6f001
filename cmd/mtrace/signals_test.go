package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// startMtraceProcess runs mtrace in a process of its own (this test binary
// as mtrace), for tests that send it signals.
func startMtraceProcess(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MTRACE_TEST_MAIN=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second // the traced command may hold stderr open after mtrace is gone
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, &stderr, "msg=attached", nil)
	return cmd, &stderr
}

// TestSignals: SIGHUP writes an intermediate report and tracing goes on;
// SIGTERM ends tracing, writes the final report and exits 0.
func TestSignals(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	out := filepath.Join(t.TempDir(), "report.json")
	before := mtracePrograms(t)
	cmd, stderr := startMtraceProcess(t, "record", "--duration", "60s", "--format", "json", "--output", out, "--", spin, "1000000000")
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, stderr, "final=false", nil)
	first := readReport(t, out)
	if len(first.Processes) == 0 || first.Processes[0].Totals.Allocs == 0 {
		t.Fatalf("intermediate report without allocations: %+v", first.Processes)
	}
	if cmd.ProcessState != nil {
		t.Fatal("mtrace stopped on SIGHUP")
	}
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtrace after SIGTERM: %v\n%s", err, stderr.String())
	}
	t.Logf("exited %v after SIGTERM", time.Since(sent))
	if !strings.Contains(stderr.String(), "final=true") {
		t.Fatalf("no final report: %s", stderr.String())
	}
	if n := waitProgramsGone(t, before); n > before {
		t.Errorf("%d of mtrace's programs remain after SIGTERM", n-before)
	}
	if final := readReport(t, out); final.Processes[0].Totals.Allocs < first.Processes[0].Totals.Allocs {
		t.Errorf("final report has fewer allocations (%d) than the intermediate one (%d)", final.Processes[0].Totals.Allocs, first.Processes[0].Totals.Allocs)
	}
}

// TestSecondSIGINTExitsAtOnce: the first SIGINT asks for the report, a
// second one kills mtrace without waiting.
func TestSecondSIGINTExitsAtOnce(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	cmd, _ := startMtraceProcess(t, "record", "--duration", "60s", "--output", filepath.Join(t.TempDir(), "r.json"), "--", spin, "1000000000")
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(20 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("after two SIGINTs: %v (%v), want killed by SIGINT", err, cmd.ProcessState)
	}
}

// mtracePrograms counts the loaded BPF programs that carry the names of
// mtrace's entry and return probes.
func mtracePrograms(t *testing.T) int {
	t.Helper()
	n := 0
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return n
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil && (info.Name == "alloc_enter" || info.Name == "alloc_exit" || info.Name == "alloc_session") {
			n++
		}
		p.Close()
	}
}

// TestCleanDetachAfterSIGKILL kills mtrace outright while it traces: the
// kernel drops every program and probe with it, and the target runs on.
func TestCleanDetachAfterSIGKILL(t *testing.T) {
	tracertest.RequireBPF(t)
	before := mtracePrograms(t)
	target := startWaiting(t, tracertest.BuildC(t, "allocs.c"), "--wait")
	cmd, _ := startMtraceProcess(t, "record", "--pid", target.pid(), "--duration", "60s")
	if mtracePrograms(t) <= before {
		t.Fatal("mtrace's programs are not loaded while it traces")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if n := waitProgramsGone(t, before); n > before {
		t.Errorf("%d of mtrace's programs remain after SIGKILL", n-before)
	}
	parseTallies(t, target.release(t)) // the target ran on and finished its work
}

// waitProgramsGone waits a while for the kernel to free mtrace's programs
// (it does so after a grace period) and returns how many are loaded.
func waitProgramsGone(t *testing.T, want int) int {
	t.Helper()
	n := mtracePrograms(t)
	for deadline := time.Now().Add(10 * time.Second); n > want && time.Now().Before(deadline); n = mtracePrograms(t) {
		time.Sleep(50 * time.Millisecond)
	}
	return n
}
