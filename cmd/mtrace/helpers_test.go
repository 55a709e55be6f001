package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer"
)

// requireBPF skips a test that needs root and a BPF-capable kernel, except in
// CI (MTRACE_REQUIRE_BPF=1), where it fails instead: such tests must run there.
func requireBPF(t *testing.T) {
	t.Helper()
	err := tracer.Preflight()
	if err == nil {
		return
	}
	if os.Getenv("MTRACE_REQUIRE_BPF") == "1" {
		t.Fatalf("BPF tests must run here (MTRACE_REQUIRE_BPF=1): %v", err)
	}
	t.Skipf("needs root and BPF: %v", err)
}

// buildC compiles a testdata C program the way the tests expect targets to be
// built: -O2, frame pointers on, debug info, and any extra flags.
func buildC(t *testing.T, name string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".c"))
	args := append([]string{"-O2", "-g", "-fno-omit-frame-pointer", "-Wall", "-o", bin}, flags...)
	out, err := exec.Command("gcc", append(args, filepath.Join("..", "..", "testdata", name))...).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

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
	code := run(ctx, append([]string{"mtrace"}, args...), stdin, &stdout, &stderr)
	return mtraceRun{code, stdout.String(), stderr.String()}
}

// tally is what a testdata program says it did in one function.
type tally struct {
	Allocs, AllocBytes, Frees, FreeBytes uint64
}

// parseTallies reads the program's "tally FUNCTION allocs=N ..." lines.
func parseTallies(t *testing.T, out string) map[string]tally {
	t.Helper()
	tallies := make(map[string]tally)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var fn string
		var tl tally
		if _, err := fmt.Sscanf(sc.Text(), "tally %s allocs=%d alloc_bytes=%d frees=%d free_bytes=%d",
			&fn, &tl.Allocs, &tl.AllocBytes, &tl.Frees, &tl.FreeBytes); err == nil {
			tallies[fn] = tl
		}
	}
	if len(tallies) == 0 {
		t.Fatalf("no tally lines in the program's output:\n%s", out)
	}
	return tallies
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
