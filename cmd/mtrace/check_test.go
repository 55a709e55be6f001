package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer"
)

func TestCheckPassesHere(t *testing.T) {
	requireBPF(t)
	target := startWaiting(t, buildC(t, "allocs.c"), "--wait")
	res := runMtrace(t.Context(), nil, "check", "--pid", target.pid())
	if res.code != 0 {
		t.Fatalf("exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, name := range []string{"kernel", "btf", "uprobes", "ringbuf", "cap_bpf", "cap_perfmon", "cap_sys_ptrace", "lockdown", "programs"} {
		if !regexp.MustCompile(`(?m)^ok +` + name + ` `).MatchString(res.stdout) {
			t.Errorf("no passing %s check:\n%s", name, res.stdout)
		}
	}
	if !regexp.MustCompile(`(?m)^ok +pid ` + target.pid() + ` +would probe .*libc\.so\.6 \(probe sites: .*free\+\d+.*; \d+ at the symbol\)`).MatchString(res.stdout) {
		t.Errorf("no allocator listed for the target, or free not probed past its symbol:\n%s", res.stdout)
	}
	target.release(t)
}

// TestMissingFeatures pretends features are absent: check fails naming the
// fix, record refuses in one line, and without uprobe_multi record degrades
// to a link per function and stays exact.
func TestMissingFeatures(t *testing.T) {
	requireBPF(t)
	bin := buildC(t, "allocs.c")
	t.Setenv(tracer.PretendMissingEnv, "btf,uprobes")
	res := runMtrace(t.Context(), nil, "check")
	if res.code != exitRuntime || !strings.Contains(res.stdout, "FAIL btf") || !strings.Contains(res.stdout, "fix: a kernel built with CONFIG_UPROBE_EVENTS=y") {
		t.Errorf("check with btf and uprobes missing: exit %d\n%s", res.code, res.stdout)
	}
	rec := runMtrace(t.Context(), nil, "record", "--", bin)
	if rec.code != exitRuntime || !strings.Contains(lastLine(rec.stderr), "unsupported kernel: btf") {
		t.Errorf("record with btf missing: exit %d, %q", rec.code, rec.stderr)
	}

	t.Setenv(tracer.PretendMissingEnv, "uprobe_multi")
	r, out := recordJSON(t, "--log-level", "debug", "--", bin)
	checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
}
