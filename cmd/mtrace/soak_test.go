package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestChurn runs many short-lived processes while mtrace traces the whole
// host (MTRACE_SOAK_SECONDS long, 8 s by default): every one of them must
// be in the report and exactly counted, with every stack known (the
// kernel's stack map must not fill up with the stacks of processes that
// are gone), and mtrace's file descriptors and heap come back to where they
// were. mtrace runs in the test's process here, so its CPU budget is lifted:
// the test's own work of starting processes would count against it.
func TestChurn(t *testing.T) {
	tracertest.RequireBPF(t)
	seconds := 8
	if v, err := strconv.Atoi(os.Getenv("MTRACE_SOAK_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	bin := tracertest.BuildC(t, "allocs.c")
	out := filepath.Join(t.TempDir(), "report.json")
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	checkFDs(t)

	// Every process is checked by its pid here, so none is folded (folding has its own test).
	// No rate limit: the exact counts must not depend on what else the host runs meanwhile.
	// A long soak (MTRACE_SOAK_SECONDS) writes a report of some 11 KB per process.
	pol := writeFile(t, "policy.toml", "[limits]\nmax_cpu_percent = 1000\nmax_events_per_second = 1000000000\nmax_exited_processes = 1000000\nmax_output_bytes = 4294967296\n")
	b := startMtrace(t, "record", "--all", "--policy", pol, "--format", "json", "--output", out)
	var outputs strings.Builder
	processes := 0
	var peak uint64
	for end := time.Now().Add(time.Duration(seconds) * time.Second); time.Now().Before(end); {
		outputs.WriteString(runTarget(t, bin, "--fork-exec")) // three processes each
		processes += 3
		if processes%300 == 0 {
			var now runtime.MemStats
			runtime.ReadMemStats(&now)
			peak = max(peak, now.HeapInuse)
		}
	}
	b.stop(t)
	runtime.GC() // twice: what finalizers keep is freed by the second
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	r := readReport(t, out)
	tallies := parseTallies(t, outputs.String())
	missing := 0
	for pid := range tallies {
		found := false
		for _, p := range r.Processes {
			found = found || p.Pid == pid
		}
		if !found {
			missing++
		}
	}
	for _, p := range r.Processes {
		if p.Exe == bin && p.Argv0 != "" && p.Argv0 != bin {
			t.Errorf("pid %d: argv0 %q, want %q or unknown", p.Pid, p.Argv0, bin)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d processes missing from the report", missing, len(tallies))
	}
	if r.LostEvents > 0 || r.SampledOut > 0 || r.Dropped.StackMapFull > 0 {
		t.Errorf("%d events lost, %d sampled out, %d stacks not stored", r.LostEvents, r.SampledOut, r.Dropped.StackMapFull)
	}
	checkTallies(t, r, outputs.String(), expect{bin: bin, callees: allocsProgram})
	t.Logf("%d s: %d processes traced, %d allocation events, %d lost, %d sampled out; heap in use %d MiB before, %d MiB at most while tracing, %d MiB after",
		seconds, processes, r.AllocationEvents, r.LostEvents, r.SampledOut, before.HeapInuse>>20, peak>>20, after.HeapInuse>>20)
	if after.HeapInuse > before.HeapInuse+64<<20 {
		t.Errorf("heap in use grew from %d to %d bytes", before.HeapInuse, after.HeapInuse)
	}
}
