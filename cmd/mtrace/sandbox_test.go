package main

import (
	"os"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/internal/sandbox"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestSandboxedProcesses traces testdata/sandboxed.c, which puts itself
// under a seccomp filter that kills it at the uretprobe system call. This
// kernel lets return probes past such filters (mtrace check says so): the
// process lives and is traced exactly. Where a return probe would kill it
// (pretended), mtrace leaves processes under seccomp alone: a command that
// sandboxes itself lives, what it allocated before is counted exactly and
// nothing it allocates under the filter is seen, a --pid under seccomp is
// refused, and without uprobe sessions nothing is traced.
func TestSandboxedProcesses(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "sandboxed.c")
	record := func(t *testing.T) (*sink.Report, mtraceRun) {
		t.Helper()
		return recordRun(t, goStdin(t), "--", bin, "100")
	}

	t.Run("safe here", func(t *testing.T) {
		if res := runMtrace(t.Context(), nil, "check"); !strings.Contains(res.stdout, "ok   sandboxes") {
			t.Errorf("check:\n%s", res.stdout)
		}
		r, res := record(t)
		checkTallies(t, r, res.stdout, expect{bin: bin, callees: map[string]string{"before_sandbox": "malloc", "sandboxed_alloc": "malloc"}})
	})

	t.Run("at risk", func(t *testing.T) {
		t.Setenv(kernel.PretendMissingEnv, sandbox.CheckName)
		if res := runMtrace(t.Context(), nil, "check"); !strings.Contains(res.stdout, "warn sandboxes") {
			t.Errorf("check:\n%s", res.stdout)
		}
		r, res := record(t)
		if !strings.Contains(res.stderr, `msg="processes under seccomp are not traced"`) {
			t.Errorf("no warning:\n%s", res.stderr)
		}
		// What it did before its filter is traced exactly; nothing after.
		checkTallies(t, r, res.stdout, expect{bin: bin, callees: map[string]string{"before_sandbox": "malloc"}})
		for _, p := range r.Processes {
			for _, s := range p.Stacks {
				if len(s.Frames) > 1 && s.Frames[1].Function == "sandboxed_alloc" {
					t.Errorf("allocation under seccomp traced: %+v", s)
				}
			}
		}

		w := startWaiting(t, bin, "100")
		refused := runMtrace(t.Context(), nil, "record", "--pid", w.pid(), "--duration", "1s")
		if refused.code != exitRuntime || !strings.Contains(lastLine(refused.stderr), "runs under seccomp") {
			t.Errorf("--pid under seccomp: exit %d, %q", refused.code, refused.stderr)
		}
		w.release(t)

		t.Setenv(kernel.PretendMissingEnv, sandbox.CheckName+",uprobe_session")
		if res := runMtrace(t.Context(), nil, "record", "--", "true"); res.code != exitRuntime || !strings.Contains(lastLine(res.stderr), "without uprobe sessions") {
			t.Errorf("without sessions: exit %d, %q", res.code, res.stderr)
		}
	})
}

// goStdin returns a file that reads "go", for a target that waits for it.
func goStdin(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("go\n")
	w.Close()
	t.Cleanup(func() { r.Close() })
	return r
}
