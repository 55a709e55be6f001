package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// forged starts each line a target's names try to add to mtrace's outputs.
const forged = "FORGED"

// oddName is a name as a hostile target gives it: escape sequences (a
// colour, a window title), BEL, CR and LF, then what would be a line of
// its own, ";", invalid UTF-8, a C1 control (CSI) and DEL.
func oddName(what string) string {
	return "odd\x1b[31m\x1b]0;title\x07\r\n" + forged + " 999;" + what + "\xff\xc2\x9b\x7f"
}

// TestTargetNamesEscaped traces, under --cgroup, a program an unprivileged
// user built in a directory named with control characters, from a source
// file named so too, with an allocating function so named (its symbol),
// that runs as nobody in a cgroup so named with such an argv[0]. No output
// of mtrace (text report, folded stacks, top's snapshots off a terminal,
// metrics, the logs of every run) may hold a raw control character, DEL or
// invalid UTF-8, but its own line ends and tabs, nor a line the names
// forged; each name is there, escaped; and every folded line has one field
// per frame.
func TestTargetNamesEscaped(t *testing.T) {
	tracertest.RequireBPF(t)
	dir := filepath.Join(tracertest.SharedDir(t), oddName("dir"))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, oddName("src")+".c")
	code, err := os.ReadFile(filepath.Join("..", "..", "testdata", "oddnames.c"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, code, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, oddName("bin"))
	function := oddName("fn")
	for _, args := range [][]string{
		{"gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-Wall", "-o", bin, src},
		{"objcopy", "--redefine-sym", "odd_sym=" + function, bin},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, out)
		}
	}
	// cgroup v2 refuses a line feed in a name, nothing else.
	cgName := fmt.Sprintf("mtrace-odd-%d\x1b[1m\x07\r%s;cg\xff\xc2\x9b", os.Getpid(), forged)
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", cgName))
	work := t.TempDir()
	report, textReport, prom := filepath.Join(work, "report.json"), filepath.Join(work, "report.txt"), filepath.Join(work, "mtrace.prom")

	// Two runs at once: the text report as record writes it (JSON would
	// turn invalid UTF-8 into U+FFFD), and JSON, re-rendered below.
	rec := startMtrace(t, "record", "--cgroup", cg, "--format", "text", "--output", textReport, "--metrics-textfile", prom)
	recJSON := startMtrace(t, "record", "--cgroup", cg, "--format", "json", "--output", report)
	cgDir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer cgDir.Close()
	target := asNobody(t, bin, oddName("argv0"), "8")
	target.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgDir.Fd())}
	var targetOut syncBuffer
	target.Stdout, target.Stderr = &targetOut, &targetOut
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Process.Kill(); target.Wait() })
	top := runMtrace(t.Context(), nil, "top", "--cgroup", cg, "--interval", "500ms", "--duration", "5s")
	if err := target.Wait(); err != nil || !strings.Contains(targetOut.String(), "done") {
		t.Fatalf("target: %v: %s", err, targetOut.String())
	}
	rec.stop(t)
	recJSON.stop(t)
	if top.code != 0 {
		t.Fatalf("top: exit %d: %s", top.code, top.stderr)
	}
	r := readReport(t, report)
	rerendered := runMtrace(context.Background(), nil, "report", "--format", "text", report)
	folded := runMtrace(context.Background(), nil, "report", "--format", "folded", report)
	if rerendered.code != 0 || folded.code != 0 {
		t.Fatalf("report: exit %d, %d: %s%s", rerendered.code, folded.code, rerendered.stderr, folded.stderr)
	}
	text, err := os.ReadFile(textReport)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := os.ReadFile(prom)
	if err != nil {
		t.Errorf("no metrics written: %v", err) // a label that is not UTF-8 fails them all
	}
	outputs := map[string]string{
		"text report": string(text), "re-rendered text report": rerendered.stdout, "folded stacks": folded.stdout,
		"top": top.stdout, "metrics": string(metrics),
		"record's log": rec.stderr.String() + recJSON.stderr.String(), "top's log": top.stderr, "report's log": rerendered.stderr + folded.stderr,
	}
	for name, out := range outputs {
		checkNoControls(t, name, out)
	}
	for name, want := range map[string]string{
		"executable": bin, "argv[0]": oddName("argv0"), "function": function, "source file": src, "cgroup": cgName,
	} {
		if !strings.Contains(string(text), sink.Escape(want)) {
			t.Errorf("the text report does not name the %s %q:\n%s", name, sink.Escape(want), text)
		}
	}
	if !strings.Contains(top.stdout, sink.Escape(bin)) || !strings.Contains(top.stdout, sink.Escape(function)) {
		t.Errorf("top does not show the executable and the function, escaped:\n%s", top.stdout)
	}
	if v, ok := metricValue(parseMetrics(t, strings.NewReader(string(metrics))), "mtrace_allocations_total", sink.Escape(bin)); !ok || v == 0 {
		t.Errorf("no allocations of the executable, escaped, in the metrics:\n%s", metrics)
	}
	// Frames per stack, as the JSON report has them, and as the folded lines split.
	var want, got []int
	for _, p := range r.Processes {
		for _, s := range p.Stacks {
			want = append(want, 1+len(s.Frames))
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(folded.stdout, "\n"), "\n") {
		got = append(got, len(strings.Split(line[:strings.LastIndexByte(line, ' ')], ";")))
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("folded lines have %v fields, the report's stacks %v frames (and the executable):\n%s", got, want, folded.stdout)
	}
	if !strings.Contains(folded.stdout, `\x3b`) {
		t.Errorf("no escaped \";\" in the folded stacks:\n%s", folded.stdout)
	}
}

// checkNoControls fails the test if out holds invalid UTF-8, a control
// character other than a line feed or a tab, or a line that starts as the
// line a target's name forges.
func checkNoControls(t *testing.T, name, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s is not valid UTF-8: %q", name, out)
	}
	for _, r := range out {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Errorf("%s holds the control character %U: %q", name, r, out)
			break
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " \t;"), forged) {
			t.Errorf("%s holds a forged line %q", name, line)
		}
	}
}
