package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

func TestCheckPassesHere(t *testing.T) {
	tracertest.RequireBPF(t)
	target := startWaiting(t, tracertest.BuildC(t, "allocs.c"), "--wait")
	res := runMtrace(t.Context(), nil, "check", "--pid", target.pid())
	if res.code != 0 {
		t.Fatalf("exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, name := range []string{"kernel", "btf", "uprobes", "ringbuf", "uprobe_multi", "uprobe_session", "cap_bpf", "cap_perfmon", "cap_sys_ptrace", "lockdown", "programs"} {
		if !regexp.MustCompile(`(?m)^ok +` + name + ` `).MatchString(res.stdout) {
			t.Errorf("no passing %s check:\n%s", name, res.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^ok +pid ` + target.pid() + ` +would probe .*libc\.so\.6 \(probe sites: .*free\+\d+.*; \d+ at the symbol; calls left out by sampling skip the return probe \(with uprobe sessions\): malloc calloc\)`).MatchString(res.stdout) {
		t.Errorf("no allocator listed for the target, or free not probed past its symbol:\n%s", res.stdout)
	}
	target.release(t)
}

// TestMissingFeatures pretends features are absent: check fails naming the
// fix, record refuses in one line, and without uprobe_multi record degrades
// to a link per function and stays exact.
func TestMissingFeatures(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	t.Setenv(kernel.PretendMissingEnv, "btf,uprobes")
	res := runMtrace(t.Context(), nil, "check")
	if res.code != exitRuntime || !strings.Contains(res.stdout, "FAIL btf") || !strings.Contains(res.stdout, "fix: a kernel built with CONFIG_UPROBE_EVENTS=y") {
		t.Errorf("check with btf and uprobes missing: exit %d\n%s", res.code, res.stdout)
	}
	rec := runMtrace(t.Context(), nil, "record", "--", bin)
	if rec.code != exitRuntime || !strings.Contains(lastLine(rec.stderr), "unsupported kernel: btf") {
		t.Errorf("record with btf missing: exit %d, %q", rec.code, rec.stderr)
	}

	t.Setenv(kernel.PretendMissingEnv, "uprobe_multi")
	r, out := recordJSON(t, "--log-level", "debug", "--", bin)
	checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
}

// TestCheckOverhead runs the overhead calibration briefly, with the built-in
// workload and with testdata/bench.c, and reads its table back: every row
// is there with a time per op, and the floor row is the unit of the ratios.
// The times themselves are measured by make bench, not asserted here.
func TestCheckOverhead(t *testing.T) {
	tracertest.RequireBPF(t)
	bench := tracertest.BuildC(t, "bench.c")
	for name, workload := range map[string][]string{"built-in": nil, "bench.c": {"--", bench}} {
		t.Run(name, func(t *testing.T) {
			res := runMtrace(t.Context(), nil, append([]string{"check", "--overhead", "--ops", "2000", "--rounds", "1"}, workload...)...)
			if res.code != exitOK {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			row := regexp.MustCompile(`(?m)^(\S.*?) +(\d+) +(\d+\.\d\d)$`)
			rows := map[string][2]float64{}
			for _, m := range row.FindAllStringSubmatch(res.stdout, -1) {
				ns, _ := strconv.ParseFloat(m[2], 64)
				ratio, _ := strconv.ParseFloat(m[3], 64)
				rows[m[1]] = [2]float64{ns, ratio}
			}
			for _, want := range []string{"untraced", "empty probes at the symbols", "empty probes at the planned sites (the floor)",
				"mtrace record (every allocation, with stacks)", "mtrace record --sample-bytes 524288"} {
				r, ok := rows[want]
				if !ok || r[0] <= 0 {
					t.Errorf("no row %q with a time per op in:\n%s", want, res.stdout)
				}
			}
			if r := rows["empty probes at the planned sites (the floor)"]; r[1] != 1 {
				t.Errorf("the floor's ratio is %v, want 1:\n%s", r[1], res.stdout)
			}
		})
	}
}

// TestCheckSaysHowStacksWalk: check --pid names, per file the target maps,
// its unwind tables and how many of its functions keep a frame pointer,
// told apart for the same program built with and without them.
func TestCheckSaysHowStacksWalk(t *testing.T) {
	tracertest.RequireBPF(t)
	line := regexp.MustCompile(`allocs: unwind tables \(\.eh_frame, (\d+) rows, \d+ KiB\), frame pointers in (\d+) of (\d+) functions read`)
	for _, tc := range []struct {
		flags []string
		fp    bool
	}{{nil, true}, {[]string{"-fomit-frame-pointer", "-fasynchronous-unwind-tables"}, false}} {
		target := startWaiting(t, tracertest.BuildC(t, "allocs.c", tc.flags...), "--wait")
		res := runMtrace(t.Context(), nil, "check", "--pid", target.pid())
		target.release(t)
		m := line.FindStringSubmatch(res.stdout)
		if m == nil || !strings.Contains(res.stdout, "libc.so.6: unwind tables (.eh_frame") {
			t.Fatalf("flags %q: no unwind tables said for allocs and libc:\n%s", tc.flags, res.stdout)
		}
		rows, _ := strconv.Atoi(m[1])
		with, _ := strconv.Atoi(m[2])
		read, _ := strconv.Atoi(m[3])
		if rows == 0 || read == 0 || (with*2 > read) != tc.fp {
			t.Errorf("flags %q: %d rows, frame pointers in %d of %d functions; want frame pointers in most: %v", tc.flags, rows, with, read, tc.fp)
		}
	}
}
