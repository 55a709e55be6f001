package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// chromium runs headless Chromium with the flags a test needs.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := requireFile(t, "/usr/bin/chromium")
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--user-data-dir=" + t.TempDir()}
	out, err := exec.Command(bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return out
}

// TestHTMLReport renders the HTML report in headless Chromium and checks
// the DOM: the stacks table, the timeline, the flame graph, the leak list.
// The page can make no network request: its policy forbids all, and it
// names no other resource. A screenshot is kept in $MTRACE_ARTIFACTS.
func TestHTMLReport(t *testing.T) {
	tracertest.RequireBPF(t)
	_, page, res := recordAllocsTo(t, "report.html", "--leaks", "--min-age", "0s")
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "://") || !strings.Contains(string(raw), "default-src 'none'") {
		t.Error("the page names another resource or allows loading one")
	}
	dom := string(chromium(t, "--dump-dom", "file://"+page))

	rows := regexp.MustCompile(`<tr><td class="name">([^<]*)</td><td class="name">([^<]*)</td><td class="name">[^<]*</td><td data-v="(\d+)">\d+</td><td data-v="(\d+)">`).FindAllStringSubmatch(dom, -1)
	if len(rows) == 0 {
		t.Fatalf("no stack rows in the rendered page")
	}
	bytesBy := map[string]uint64{}
	for _, r := range rows {
		n, _ := strconv.ParseUint(r[4], 10, 64)
		bytesBy[r[1]] += n
	}
	for _, tallies := range parseTallies(t, res.stdout) {
		for fn, w := range tallies {
			if bytesBy[fn] != w.AllocBytes {
				t.Errorf("the page shows %d bytes for %s, the program allocated %d", bytesBy[fn], fn, w.AllocBytes)
			}
		}
	}
	if n := strings.Count(dom, `class="pt"`); n < 1 {
		t.Error("the timeline has no points")
	}
	for _, fn := range []string{"make_small", "make_zeroed", "grow", "main"} {
		if !regexp.MustCompile(`<g class="f"[^>]*><title>` + fn + `: `).MatchString(dom) {
			t.Errorf("the flame graph has no frame %s", fn)
		}
	}
	if !strings.Contains(dom, `<table class="leaks">`) || !strings.Contains(dom, "make_small") {
		t.Error("no leak list")
	}

	dir := os.Getenv("MTRACE_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "html-report.png")
	chromium(t, "--window-size=1200,2000", "--screenshot="+shot, "file://"+page)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}
	t.Logf("screenshot of the report: %s", shot)
}
