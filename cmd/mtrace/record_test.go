package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/mtrace/mtrace/internal/overhead"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

func TestRecordCommand(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	out := filepath.Join(t.TempDir(), "report.json")
	checkFDs(t)

	res := runMtrace(context.Background(), nil, "record", "--format", "json", "--output", out, "--", bin)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("report mode %v, want 0600", fi.Mode().Perm())
	}
	r := readReport(t, out)
	if len(r.Processes) != 1 {
		t.Fatalf("%d processes in report, want 1", len(r.Processes))
	}
	checkTallies(t, r, res.stdout, expect{bin: bin, callees: allocsProgram})
	for _, s := range r.Processes[0].Stacks {
		if s.Frames[0].Function == "mmap (anonymous)" {
			t.Errorf("mmap counted without --mmap: %+v", s)
		}
	}
	if strings.Contains(res.stderr, "\r") {
		t.Errorf("a progress line on a stderr that is not a terminal: %q", res.stderr)
	}
}

func TestRecordPid(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	out := filepath.Join(t.TempDir(), "report.json")
	target := startWaiting(t, bin, "--wait")
	checkFDs(t)
	b := startMtrace(t, "record", "--pid", target.pid(), "--format", "json", "--output", out)
	// A bystander allocating meanwhile does not even trap into the probes:
	// they are attached for the target alone. Were it to trap, its million
	// allocations would take seconds, across the tenth of a second in each
	// that the kernel's run-time statistics are sampled.
	if err := exec.Command(tracertest.BuildC(t, "spin.c"), "1000000").Run(); err != nil {
		t.Fatal(err)
	}
	targetOut := target.release(t)
	b.wait(t)
	checkTallies(t, readReport(t, out), targetOut, expect{bin: bin, callees: allocsProgram})
	// The target's few dozen allocations may fall outside every sampled
	// tenth, and then no allocation program is logged: that counts as none.
	runs := 0
	for _, m := range regexp.MustCompile(`program=alloc_\w+ sampled_runs=(\d+)`).FindAllStringSubmatch(b.stderr.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		runs += n
	}
	if runs > 1000 {
		t.Errorf("the allocation programs ran %d times for a target that allocates a few dozen times: other processes trap\n%s", runs, b.stderr.String())
	}
}

// TestRecordDuration stops tracing a process that keeps running when --duration ends.
func TestRecordDuration(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	target := startWaiting(t, bin, "--wait")

	start := time.Now()
	res := runMtrace(context.Background(), nil, "record", "--pid", target.pid(), "--duration", "300ms")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("record --duration 300ms took %v", d)
	}
	if !strings.Contains(res.stdout, "lost events: 0") {
		t.Errorf("text report lacks the lost-event count:\n%s", res.stdout)
	}
	// The target keeps running, unharmed, after mtrace detached.
	parseTallies(t, target.release(t))
}

func TestRecordErrors(t *testing.T) {
	tracertest.RequireBPF(t)
	noalloc := tracertest.BuildC(t, "noalloc.c", "-static", "-nostdlib")
	running := exec.Command(noalloc)
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { running.Process.Kill(); running.Wait() }()
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no target", []string{"record"}, exitUsage, "give --pid PID, --cgroup PATH, --unit NAME, --all or -- COMMAND"},
		{"unknown command", []string{"bogus"}, exitUsage, `no command "bogus"`},
		{"unknown flag", []string{"record", "--bogus"}, exitUsage, "flag provided but not defined"},
		{"bad format", []string{"record", "--format", "xml", "--", "true"}, exitUsage, `--format "xml"`},
		{"missing pid", []string{"record", "--pid", "999999999"}, exitRuntime, "no such process"},
		{"missing command", []string{"record", "--", "/nonexistent/program"}, exitRuntime, "start /nonexistent/program"},
		{"command without allocator", []string{"record", "--", noalloc}, exitRuntime, "no allocator (malloc and free) in a static executable"},
		{"pid without allocator", []string{"record", "--pid", strconv.Itoa(running.Process.Pid)}, exitRuntime, "trace pid " + strconv.Itoa(running.Process.Pid) + ": no allocator"},
		{"symlinked output", []string{"record", "--output", symlinkPath(t), "--", "true"}, exitRuntime, "is a symlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runMtrace(context.Background(), nil, tc.args...)
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", res.code, tc.code, res.stderr)
			}
			last := lastLine(res.stderr)
			if !strings.HasPrefix(last, "mtrace: ") || !strings.Contains(last, tc.msg) {
				t.Errorf("last stderr line %q, want an mtrace error containing %q", last, tc.msg)
			}
		})
	}
}

func symlinkPath(t *testing.T) string {
	dir := t.TempDir()
	link := filepath.Join(dir, "report.txt")
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	return link
}

// TestNoLossAtFullSpeed traces two copies of spin allocating flat out, one
// per core, at full fidelity (no rate or CPU limit) with the default ring
// buffer: no event may be lost, and every count is exact.
func TestNoLossAtFullSpeed(t *testing.T) {
	tracertest.RequireBPF(t)
	spin := tracertest.BuildC(t, "spin.c")
	pol := writeFile(t, "policy.toml", overhead.Policy)
	const n = "300000"
	r, out := recordJSON(t, "--policy", pol, "--", "sh", "-c", spin+" "+n+" & "+spin+" "+n+"; wait")
	if got := len(parseTallies(t, out)); got != 2 {
		t.Fatalf("%d processes tallied, want 2:\n%s", got, out)
	}
	checkTallies(t, r, out, expect{bin: spin, callees: map[string]string{"churn": "malloc"}})
	t.Logf("%d allocation events in %.2fs, %d lost", r.AllocationEvents, r.DurationSeconds, r.LostEvents)
}

// TestCommandRunsAsUser: root starts a command as another user, never with
// mtrace's privileges: the one --user names, else the one who ran mtrace
// through sudo (SUDO_UID), else nobody; only --user root runs it as root,
// with root's capabilities. The command is still traced from its first
// allocation. It reads its own /proc/self/status: a copy of grep that the
// file system would grant CAP_NET_RAW, which it must not get either.
func TestCommandRunsAsUser(t *testing.T) {
	tracertest.RequireBPF(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	daemon, err := user.Lookup("daemon")
	if err != nil {
		t.Skip("no user daemon")
	}
	grep := filepath.Join(tracertest.SharedDir(t), "capgrep")
	data, err := os.ReadFile("/bin/grep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(grep, data, 0o755); err != nil {
		t.Fatal(err)
	}
	setCaps := func(text string) {
		c, err := cap.FromText(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetFile(grep); err != nil {
			t.Fatal(err)
		}
	}
	setCaps("cap_net_raw=p")
	status := []string{"--", grep, "-E", "^(Uid|Gid|CapPrm|CapEff|CapBnd|NoNewPrivs):", "/proc/self/status"}
	unprivileged := func(u *user.User) *regexp.Regexp {
		return regexp.MustCompile(fmt.Sprintf(`(?m)^Uid:\s+%[1]s\s+%[1]s\s+%[1]s\s+%[1]s\nGid:\s+%[2]s\s+%[2]s\s+%[2]s\s+%[2]s\n`+
			`CapPrm:\s+0+\nCapEff:\s+0+\nCapBnd:\s+0+\nNoNewPrivs:\s+1$`, u.Uid, u.Gid))
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want *regexp.Regexp
	}{
		"default":             {want: unprivileged(nobody)},
		"sudo":                {env: map[string]string{"SUDO_UID": daemon.Uid, "SUDO_GID": daemon.Gid}, want: unprivileged(daemon)},
		"sudo from root":      {env: map[string]string{"SUDO_UID": "0", "SUDO_GID": "0"}, want: unprivileged(nobody)},
		"sudo, foreign group": {env: map[string]string{"SUDO_UID": daemon.Uid, "SUDO_GID": "0"}, want: unprivileged(daemon)},
		"--user":              {env: map[string]string{"SUDO_UID": daemon.Uid}, args: []string{"--user", "nobody"}, want: unprivileged(nobody)},
		"--user root": {args: []string{"--user", "root"},
			want: regexp.MustCompile(`(?m)^Uid:\s+0\s.*\nGid:\s+0\s.*\nCapPrm:\s+0*[1-9a-f][0-9a-f]*\nCapEff:\s+0*[1-9a-f][0-9a-f]*\nCapBnd:\s+0*[1-9a-f][0-9a-f]*\nNoNewPrivs:\s+0$`)},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r, out := recordJSON(t, append(tc.args, status...)...)
			if !tc.want.MatchString(out) {
				t.Errorf("the command ran with:\n%s\nwant %s", out, tc.want)
			}
			if len(r.Processes) == 0 || r.AllocationEvents == 0 {
				t.Errorf("the command was not traced: %d processes, %d allocation events", len(r.Processes), r.AllocationEvents)
			}
		})
	}
	for _, id := range []string{"x1", "-1", "4294967296", "4000000000"} {
		t.Setenv("SUDO_UID", id)
		if res := runMtrace(t.Context(), nil, "record", "--", "true"); res.code != exitRuntime || !strings.Contains(lastLine(res.stderr), "SUDO_UID") {
			t.Errorf("SUDO_UID=%s: exit %d, %s", id, res.code, lastLine(res.stderr))
		}
	}
	os.Unsetenv("SUDO_UID")
	// Made effective at exec (+ep, like ping), such a program is refused,
	// with a hint.
	setCaps("cap_net_raw=ep")
	if res := runMtrace(t.Context(), nil, "record", "--", grep, "x", "/dev/null"); res.code != exitRuntime || !strings.Contains(res.stderr, "--user root runs it with root's privileges") {
		t.Errorf("a program with effective file capabilities: exit %d, %s", res.code, lastLine(res.stderr))
	}
	// A program nobody may execute is refused in one line that says who it runs as.
	private := tracertest.BuildC(t, "allocs.c")
	if err := os.Chmod(filepath.Dir(private), 0o700); err != nil {
		t.Fatal(err)
	}
	res := runMtrace(t.Context(), nil, "record", "--", private)
	if want := "permission denied (it runs as uid " + nobody.Uid + ", who may not execute it; --user USER runs it as another user)"; res.code != exitRuntime || !strings.HasSuffix(strings.TrimSpace(res.stderr), want) {
		t.Errorf("a program nobody may execute: exit %d, %s; want it to end in %q", res.code, lastLine(res.stderr), want)
	}
	if res := runMtrace(t.Context(), nil, "record", "--user", "nobody", "--pid", "1"); res.code != exitUsage {
		t.Errorf("--user without a command: exit %d, want %d", res.code, exitUsage)
	}
}
