package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestRewrittenTitleKeepsArgv0Only traces, by pid, a program running as
// nobody that rewrote its title over its arguments and environment with no
// NUL left between them, so that /proc/PID/cmdline reads them all as one
// string. Its argv[0] is reported, and no output, in any format, holds its
// arguments or its environment.
func TestRewrittenTitleKeepsArgv0Only(t *testing.T) {
	tracertest.RequireBPF(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the target as nobody")
	}
	bin := tracertest.BuildC(t, "proctitle.c")
	// BuildC's directories are 0700: let nobody run the program.
	for _, dir := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	argSecret, argForms := secret(t)
	envSecret, envForms := secret(t)
	for _, format := range []string{"json", "text", "pprof"} {
		t.Run(format, func(t *testing.T) {
			target := startWaiting(t, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
				"env", "-i", "FAKE_SECRET="+envSecret, bin, "--token="+argSecret)
			cmdline, err := os.ReadFile("/proc/" + target.pid() + "/cmdline")
			if err != nil || !strings.Contains(string(cmdline), envSecret) {
				t.Fatalf("the title was not rewritten over the environment: %q, %v", cmdline, err)
			}
			out := filepath.Join(t.TempDir(), "report")
			b := startMtrace(t, "record", "--log-level", "debug", "--pid", target.pid(), "--format", format, "--output", out)
			target.release(t)
			b.wait(t)
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			switch format {
			case "json":
				r := readReport(t, out)
				if len(r.Processes) != 1 || r.Processes[0].Argv0 != bin {
					t.Errorf("want one process with argv0 %s:%s", bin, describe(r, target.cmd.Process.Pid))
				}
			case "pprof":
				data = gunzip(t, data)
			}
			for name, text := range map[string]string{"report": string(data), "stderr": b.stderr.String()} {
				for _, form := range append(argForms, envForms...) {
					if strings.Contains(text, form) {
						t.Errorf("%s holds a secret of the title (%q)", name, form)
					}
				}
			}
		})
	}
}
