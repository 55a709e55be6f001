package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTopSnapshots runs mtrace top off a terminal: it prints plain-text
// snapshots, each with the busy executable and its stack.
func TestTopSnapshots(t *testing.T) {
	requireBPF(t)
	spin := buildC(t, "spin.c")
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
	requireBPF(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("needs tmux")
	}
	spin := buildC(t, "spin.c")
	session := fmt.Sprintf("mtrace-top-%d", os.Getpid())
	cmd := fmt.Sprintf("MTRACE_TEST_MAIN=1 %s top --interval 500ms --duration 60s -- %s 1000000000; echo top-exited-$?; sleep 30", os.Args[0], spin)
	if err := exec.Command("tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "30", cmd).Run(); err != nil {
		t.Fatalf("tmux: %v", err)
	}
	defer exec.Command("tmux", "kill-session", "-t", session).Run()
	screen := func() []byte {
		out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", session).Output()
		return out
	}
	waitScreen := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if bytes.Contains(screen(), []byte(want)) {
				return
			}
		}
		t.Fatalf("the screen never showed %q:\n%s", want, screen())
	}
	waitScreen("malloc < churn")
	if !bytes.Contains(screen(), []byte("(q to quit)")) {
		t.Errorf("no quit hint on the terminal:\n%s", screen())
	}
	if err := exec.Command("tmux", "send-keys", "-t", session, "q").Run(); err != nil {
		t.Fatal(err)
	}
	waitScreen("top-exited-0")
}
