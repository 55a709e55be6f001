package main

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// secret returns a fresh random secret and the forms it must never appear in.
func secret(t *testing.T) (string, []string) {
	t.Helper()
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	s := "canary-" + hex.EncodeToString(raw)
	return s, []string{s, hex.EncodeToString([]byte(s)), base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s))}
}

// TestNoPayloadInOutputs traces a program that writes a secret into every
// allocation and carries secrets in its environment and its arguments after
// argv[0]. Nothing mtrace prints, logs (at debug level) or writes, in any
// format, may hold them, nor any address inside the program's heap.
func TestNoPayloadInOutputs(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "canary.c")
	argSecret, argForms := secret(t)
	envSecret, envForms := secret(t)
	t.Setenv("CANARY_SECRET", envSecret)
	for _, format := range []string{"text", "json", "pprof", "folded"} {
		t.Run(format, func(t *testing.T) {
			heap, report := filepath.Join(commandDir(t), "heap"), filepath.Join(t.TempDir(), "report")
			res := runMtrace(t.Context(), nil, "record", "--log-level", "debug", "--format", format, "--output", report, "--", bin, heap, argSecret)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			data, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			if format == "pprof" {
				data = gunzip(t, data)
			}
			outputs := map[string]string{"stdout": res.stdout, "stderr": res.stderr, "report": string(data)}
			if !strings.Contains(outputs["report"], "fill_secrets") {
				t.Fatalf("the report does not show the secret-writing function:\n%s", data)
			}
			for name, out := range outputs {
				for _, form := range append(argForms, envForms...) {
					if strings.Contains(out, form) {
						t.Errorf("%s holds a secret (%q)", name, form)
					}
				}
				checkNoHeapAddress(t, name, out, heap)
			}
		})
	}
}

// checkNoHeapAddress fails if out holds a number, decimal or hex, that lies
// in the heap range the canary program wrote to heapFile.
func checkNoHeapAddress(t *testing.T, name, out, heapFile string) {
	t.Helper()
	data, err := os.ReadFile(heapFile)
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi uint64
	if _, err := fmt.Sscanf(string(data), "%x-%x", &lo, &hi); err != nil || lo >= hi {
		t.Fatalf("heap range %q: %v", data, err)
	}
	numbers := regexp.MustCompile(`0x[0-9a-fA-F]+|[0-9a-fA-F]{6,}|[0-9]{6,}`)
	for _, n := range numbers.FindAllString(out, -1) {
		for _, base := range []int{10, 16} {
			v, err := strconv.ParseUint(strings.TrimPrefix(n, "0x"), base, 64)
			if err == nil && v >= lo && v < hi {
				t.Errorf("%s holds %s, an address in the heap %x-%x", name, n, lo, hi)
			}
		}
	}
}

// TestNoCoreDumps checks that a run leaves mtrace undumpable: its memory
// holds what it saw of its targets.
func TestNoCoreDumps(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	runMtrace(t.Context(), nil, "version")
	dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if dumpable != 0 {
		t.Fatalf("dumpable = %d after a run, want 0", dumpable)
	}
}

// TestNoDebugHandlers checks that the binary links no pprof handlers, which
// would expose its memory. (expvar comes with the Prometheus client, but
// only on http.DefaultServeMux, which mtrace never serves: the metrics test
// checks its endpoint answers nothing else.)
func TestNoDebugHandlers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range []string{"net/http/pprof"} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == pkg {
				t.Errorf("mtrace links %s", pkg)
			}
		}
	}
}

// TestEventRateLimitSamples traces a program allocating at full speed under
// a small event-rate limit: mtrace receives about the limit, says it
// sampled, and its weighted counts estimate the true ones.
func TestEventRateLimitSamples(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "spin.c")
	const n, limit = 400000, 20000
	r, out := recordJSON(t, "--max-events-per-second", strconv.Itoa(limit), "--", bin, strconv.Itoa(n))
	if r.SampledOut == 0 {
		t.Fatalf("no sampling reported at %d events/s over a limit of %d", n, limit)
	}
	// Each CPU sends at most about twice its share of the limit per second.
	if max := uint64(2*limit) * uint64(r.DurationSeconds+1); r.AllocationEvents > max {
		t.Errorf("received %d allocation events in %.1fs, more than %d", r.AllocationEvents, r.DurationSeconds, max)
	}
	if r.AllocationEvents+r.SampledOut < n {
		t.Errorf("events %d + sampled out %d < %d allocations", r.AllocationEvents, r.SampledOut, n)
	}
	var churn sink.Counts
	for _, p := range r.Processes {
		for _, s := range p.Stacks {
			if len(s.Frames) > 1 && s.Frames[1].Function == "churn" {
				churn.Add(s.Counts)
			}
		}
	}
	t.Logf("estimated %d allocations in churn from %d events, made %d", churn.Allocs, r.AllocationEvents, n)
	if est := float64(churn.Allocs); est < 0.95*n || est > 1.05*n {
		t.Errorf("estimated %d allocations in churn, made %d", churn.Allocs, n)
	}
	if !strings.Contains(out, "tally") {
		t.Errorf("the target did not finish: %s", out)
	}
}

// TestCPUBudgetStopsTracing holds mtrace to a tiny CPU budget against a
// program allocating at full speed: it samples more, then stops with one
// line saying why, and still writes the report of what it saw.
func TestCPUBudgetStopsTracing(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "spin.c")
	out := filepath.Join(t.TempDir(), "report.json")
	res := runMtrace(t.Context(), nil, "record", "--max-cpu-percent", "0.5", "--duration", "60s", "--format", "json", "--output", out, "--", bin, "1000000000")
	if res.code != exitRuntime || !strings.Contains(lastLine(res.stderr), "CPU budget exceeded") {
		t.Fatalf("exit %d, stderr %q; want a stop over the CPU budget", res.code, res.stderr)
	}
	if !strings.Contains(res.stderr, "over the CPU budget: sampling more") {
		t.Errorf("no sampling step before stopping: %s", res.stderr)
	}
	r := readReport(t, out)
	if r.AllocationEvents == 0 || r.SampledOut == 0 {
		t.Errorf("report of the stopped run: %d events, %d sampled out", r.AllocationEvents, r.SampledOut)
	}
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// TestCapabilitiesDroppedAfterAttach runs mtrace as a process of its own:
// once attached, every one of its threads holds only the capabilities it
// still needs (effective and permitted sets, none inheritable) with
// no_new_privs set, and tracing goes on with them: the target's counts are
// exact.
func TestCapabilitiesDroppedAfterAttach(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	target := startWaiting(t, bin, "--wait")
	out := filepath.Join(t.TempDir(), "report.json")
	cmd, stderr := startMtraceProcess(t, "record", "--pid", target.pid(), "--format", "json", "--output", out)
	var want uint64
	for _, v := range keptCapabilities {
		want |= 1 << uint(v)
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of mtrace: %v", err)
	}
	for _, status := range tasks {
		data, err := os.ReadFile(status)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimSpace(value)
			switch name {
			case "CapEff", "CapPrm":
				if got, _ := strconv.ParseUint(value, 16, 64); got != want {
					t.Errorf("%s: %s %#x, want %#x", status, name, got, want)
				}
			case "CapInh":
				if got, _ := strconv.ParseUint(value, 16, 64); got != 0 {
					t.Errorf("%s: %s %#x, want none", status, name, got)
				}
			case "NoNewPrivs":
				if value != "1" {
					t.Errorf("%s: NoNewPrivs %s, want 1", status, value)
				}
			}
		}
	}
	targetOut := target.release(t)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtrace: %v: %s", err, stderr.String())
	}
	checkTallies(t, readReport(t, out), targetOut, expect{bin: bin, callees: allocsProgram})
}
