package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestMain lets a test run this test binary as the mtrace command itself
// (MTRACE_TEST_MAIN=1), for runs that need a process of their own; the
// test framework's own runs of it (fuzzing workers) take -test. flags.
func TestMain(m *testing.M) {
	if os.Getenv("MTRACE_TEST_MAIN") == "1" && (len(os.Args) < 2 || !strings.HasPrefix(os.Args[1], "-test.")) {
		os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr, true))
	}
	// Commands run as nobody, as they do when root runs mtrace directly,
	// not as whoever ran the tests through sudo; the tests that mean it set it.
	os.Unsetenv("SUDO_UID")
	os.Unsetenv("SUDO_GID")
	// mtrace runs itself (its built-in workload): this binary then runs mtrace.
	os.Setenv("MTRACE_TEST_MAIN", "1")
	os.Exit(m.Run())
}

// TestRecordWithoutCapabilities runs mtrace as root stripped of every
// capability: it must say which capabilities are missing, in one line, exit 1.
func TestRecordWithoutCapabilities(t *testing.T) {
	tracertest.RequireBPF(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	cmd := exec.Command("setpriv", "--bounding-set=-all", "--inh-caps=-all", os.Args[0], "record", "--", "true")
	cmd.Env = append(os.Environ(), "MTRACE_TEST_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != exitRuntime {
		t.Fatalf("exit %d (%v), want %d; stderr: %s", code, err, exitRuntime, stderr.String())
	}
	got := strings.TrimSpace(stderr.String())
	if strings.Count(got, "\n") != 0 || !strings.Contains(got, "not permitted") || !strings.Contains(got, "CAP_BPF") {
		t.Errorf("stderr %q, want one line naming the missing capabilities", got)
	}
}

// TestProgressLineOnTerminal runs mtrace in tmux, on a terminal: while it
// traces, stderr shows a one-line status.
func TestProgressLineOnTerminal(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	out := filepath.Join(t.TempDir(), "r.json")
	term := startTerminal(t, fmt.Sprintf("MTRACE_TEST_MAIN=1 %s record --duration 4s --output %s -- %s 1000000000; sleep 30", os.Args[0], out, spin), 20)
	screen := term.waitFor("events/s")
	if !regexp.MustCompile(`mtrace: \d+s, \d+ events/s, \d+ processes, \d+ lost events`).Match(screen) {
		t.Fatalf("no progress line on the terminal:\n%s", screen)
	}
}
