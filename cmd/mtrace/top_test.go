package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestTopSnapshots runs mtrace top off a terminal: it prints plain-text
// snapshots, each with the busy executable and its stack.
func TestTopSnapshots(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	res := runMtrace(t.Context(), nil, "top", "--interval", "500ms", "--duration", "3s", "--", spin, "1000000000")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if n := strings.Count(res.stdout, "---\nmtrace top:"); n < 2 {
		t.Errorf("%d snapshots, want several:\n%s", n, res.stdout)
	}
	for _, want := range []string{spin, "malloc < churn < main", "TOP STACKS"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("top output lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "\033[") {
		t.Error("terminal escapes off a terminal")
	}
}

// TestTopInTmux drives mtrace top on a terminal: the view is drawn, and q quits.
func TestTopInTmux(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	term := startTerminal(t, fmt.Sprintf("MTRACE_TEST_MAIN=1 %s top --interval 500ms --duration 60s -- %s 1000000000; echo top-exited-$?; sleep 30", os.Args[0], spin), 30)
	if screen := term.waitFor("malloc < churn"); !bytes.Contains(screen, []byte("(q to quit)")) {
		t.Errorf("no quit hint on the terminal:\n%s", screen)
	}
	term.keys("q")
	term.waitFor("top-exited-0")
}
