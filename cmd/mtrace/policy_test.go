package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// copyAs copies a built program under another name.
func copyAs(t *testing.T, bin, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("cp", bin, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPolicyRefusesTargets: a secret holder under the default policy, as a
// command and as a running pid, and a target outside a policy's scope, are
// refused with one line naming the rule.
func TestPolicyRefusesTargets(t *testing.T) {
	tracertest.RequireBPF(t)
	agent := copyAs(t, tracertest.BuildC(t, "allocs.c"), "ssh-agent")
	running := startWaiting(t, agent, "--wait")
	scoped := writeFile(t, "policy.toml", "[scope]\nallow_executables = [\"/opt/*\"]\n")
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"command", []string{"record", "--", agent}, `refuse to start ` + agent + `: denied by policy: ` + agent + ` matches the built-in deny list "ssh-agent"`},
		{"pid", []string{"record", "--pid", running.pid()}, `matches the built-in deny list "ssh-agent"`},
		{"scope", []string{"record", "--policy", scoped, "--", "true"}, "is not in scope.allow_executables"},
		{"malformed", []string{"record", "--policy", writeFile(t, "bad.toml", "[scope]\nallow = 1\n"), "--", "true"}, "line 2: unknown field scope.allow"},
		{"duration", []string{"record", "--policy", writeFile(t, "short.toml", "[limits]\nmax_duration = \"1s\"\n"), "--duration", "1m", "--", "true"}, "longer than the policy allows"},
		{"directory", []string{"record", "--policy", writeFile(t, "dir.toml", "[output]\ndirectory = \"/var/lib/mtrace-test\"\n"), "--output", "/tmp/x.json", "--", "true"}, "the policy allows outputs in /var/lib/mtrace-test only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runMtrace(t.Context(), nil, tc.args...)
			if res.code == 0 || !strings.Contains(lastLine(res.stderr), tc.msg) {
				t.Errorf("exit %d, stderr %q; want a refusal containing %q", res.code, res.stderr, tc.msg)
			}
		})
	}
	parseTallies(t, running.release(t)) // the refused process ran on, untouched
}

// TestAllSkipsDeniedProcesses traces the host under a policy that denies one
// executable: it is silently skipped and counted, the others are traced.
func TestAllSkipsDeniedProcesses(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	denied := copyAs(t, bin, "denied-allocs")
	pol := writeFile(t, "policy.toml", "[scope]\ndeny_executables = [\"denied-*\"]\n")
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--all", "--policy", pol, "--format", "json", "--output", out)
	allowedOut := runTarget(t, bin)
	deniedOut := runTarget(t, denied)
	b.stop(t)
	r := readReport(t, out)
	checkTallies(t, r, allowedOut, expect{bin: bin, callees: allocsProgram})
	for pid := range parseTallies(t, deniedOut) {
		for _, p := range r.Processes {
			if p.Pid == pid || p.Exe == denied {
				t.Errorf("denied process in the report: %+v", p.Exe)
			}
		}
	}
	if r.SkippedProcesses < 1 {
		t.Errorf("skipped_processes %d, want at least 1", r.SkippedProcesses)
	}
}

// TestEncryptedReportRoundTrips encrypts a report to an age recipient: the
// file holds no plain text, mtrace report reads it back with the identity
// and refuses without it.
func TestEncryptedReportRoundTrips(t *testing.T) {
	tracertest.RequireBPF(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := writeFile(t, "key.txt", id.String()+"\n")
	bin := tracertest.BuildC(t, "allocs.c")
	out := filepath.Join(t.TempDir(), "report.json.age")
	res := runMtrace(t.Context(), nil, "record", "--encrypt-to", id.Recipient().String(), "--format", "json", "--output", out, "--", bin)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("age-encryption.org/v1")) || bytes.Contains(data, []byte("make_small")) || bytes.Contains(data, []byte(bin)) {
		t.Fatalf("the report is not encrypted:\n%.200s", data)
	}
	plain := runMtrace(t.Context(), nil, "report", "--identity", key, "--format", "json", out)
	if plain.code != 0 {
		t.Fatalf("report: exit %d: %s", plain.code, plain.stderr)
	}
	r := readReport(t, writeFile(t, "plain.json", plain.stdout))
	checkTallies(t, r, res.stdout, expect{bin: bin, callees: allocsProgram})
	if locked := runMtrace(t.Context(), nil, "report", out); locked.code != exitUsage || !strings.Contains(locked.stderr, "is encrypted: give --identity FILE") {
		t.Errorf("report without identity: exit %d, %s", locked.code, locked.stderr)
	}
	other, _ := age.GenerateX25519Identity()
	wrong := writeFile(t, "other.txt", other.String()+"\n")
	if res := runMtrace(t.Context(), nil, "report", "--identity", wrong, out); res.code != exitRuntime || !strings.Contains(res.stderr, "decrypt report") {
		t.Errorf("report with a wrong identity: exit %d, %s", res.code, res.stderr)
	}
}

func TestPolicyCheckPrintsWhatItAllows(t *testing.T) {
	good := writeFile(t, "policy.toml", "[scope]\nallow_users = [\"www-data\"]\n[limits]\nmax_duration = \"2h\"\n[output]\nretention = 3\n")
	res := runMtrace(t.Context(), nil, "policy", "check", good)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{"is valid", "users (real, effective, saved and filesystem uid): allow www-data", "run time 2h0m0s", "keep 3", "built-in deny list on"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("policy check output lacks %q:\n%s", want, res.stdout)
		}
	}
	bad := runMtrace(t.Context(), nil, "policy", "check", writeFile(t, "bad.toml", "[limits]\n\nmax_live = 0\n"))
	if bad.code != exitRuntime || !strings.Contains(bad.stderr, "line 3: limits.max_live") {
		t.Errorf("bad policy: exit %d, %s", bad.code, bad.stderr)
	}
}

// copyForNobody copies a built program under another name into a directory
// any user may enter, with mode bits mode.
func copyForNobody(t *testing.T, bin, name string, mode os.FileMode) string {
	t.Helper()
	dst := copyAs(t, bin, name)
	for _, dir := range []string{filepath.Dir(dst), filepath.Dir(filepath.Dir(dst))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestExcludesChildrenOfDenied: under --cgroup and --all, a deny-listed
// program run by nobody forks children and grandchildren that allocate from
// its own code. The kernel excludes each at its fork, before it runs; none
// appears in the report, nor does the denied binary anywhere in it, and each
// is counted as skipped. A child that execs an allowed program is traced
// again once the policy has judged the new image. Under --all other
// engineers' processes may fill the ring buffer: where events were lost,
// only what cannot depend on them is checked.
func TestExcludesChildrenOfDenied(t *testing.T) {
	tracertest.RequireBPF(t)
	const children = 3
	denied := copyForNobody(t, tracertest.BuildC(t, "forks.c"), "forks-denied", 0o755)
	allowed := copyForNobody(t, tracertest.BuildC(t, "allocs.c"), "allocs-allowed", 0o755)
	pol := writeFile(t, "policy.toml", fmt.Sprintf("[scope]\ndeny_executables = [%q]\n", denied))
	attacker := strings.Join(append([]string{"exec", "setpriv"}, nobodyArgs(t, denied, strconv.Itoa(children), allowed, "--wait")...), " ")
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-forks-%d", os.Getpid())))
	for _, tc := range []struct {
		mode   string
		target []string
		join   string // shell that puts the attacker where the target is
	}{
		{"cgroup", []string{"--cgroup", cg}, "echo $$ > " + filepath.Join(cg, "cgroup.procs") + " && "},
		{"all", []string{"--all"}, ""},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			b := startMtrace(t, append([]string{"record", "--log-level", "debug", "--policy", pol, "--format", "json", "--output", out}, tc.target...)...)
			w := startWaiting(t, "sh", "-c", tc.join+attacker)
			t.Cleanup(func() { w.stdin.Close() }) // a child still waiting reads the end and exits
			// The parent is judged at its exec; its children are forked after.
			waitFor(t, &b.stderr, fmt.Sprintf(`msg="skip process" pid=%s `, w.pid()), b.done)
			w.stdin.Write([]byte("go\n"))
			execPid := waitForLine(t, &w.out, "exec pid=")
			waitFor(t, &b.stderr, fmt.Sprintf("msg=\"trace process again\" pid=%s\n", execPid), b.done)
			programOut := w.release(t)
			b.stop(t)

			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(denied)) || bytes.Contains(data, []byte("forks-denied")) {
				t.Errorf("the report names the denied binary:\n%.2000s", data)
			}
			r := readReport(t, out)
			var allowedOut strings.Builder
			forked := map[int]bool{}
			for _, line := range strings.SplitAfter(programOut, "\n") {
				var pid int
				var fn string
				if _, err := fmt.Sscanf(line, "tally pid=%d %s", &pid, &fn); err != nil {
					continue
				}
				switch fn {
				case "child_work":
					forked[pid] = true
				case "parent_work":
				default:
					allowedOut.WriteString(line)
				}
			}
			if len(forked) != 2*children {
				t.Fatalf("%d children tallied, want %d:\n%s", len(forked), 2*children, programOut)
			}
			for _, p := range r.Processes {
				// The parent's pid ran sh and setpriv first, images of their own.
				if forked[p.Pid] || p.Exe == denied {
					t.Errorf("pid %d (%s), of the denied program, is in the report", p.Pid, p.Exe)
				}
			}
			for pid := range forked {
				if strings.Contains(b.stderr.String(), fmt.Sprintf("msg=\"exclude process in the kernel\" pid=%d\n", pid)) {
					t.Errorf("pid %d was not excluded by the kernel at its fork", pid)
				}
			}
			if tc.mode == "all" && r.LostEvents > 0 {
				t.Logf("%d events lost host-wide: skipped processes and tallies not checked", r.LostEvents)
				return
			}
			// The parent, its children and grandchildren, and the child that exec'd.
			if want := 2*children + 2; r.SkippedProcesses < want {
				t.Errorf("skipped_processes %d, want at least %d", r.SkippedProcesses, want)
			}
			checkTallies(t, r, allowedOut.String(), expect{bin: allowed, callees: allocsProgram})
		})
	}
}

// TestExclusionLiftedFromGrandchild: a deny-listed shell run by nobody
// forks a child that execs an allowed program, which forks at once, before
// user space (held up here, as on a busy host, by holding its log) has
// judged the new image: the kernel passes the child's exclusion on to the
// grandchild. Once the allowed image is judged, the grandchild is traced
// again and every one of its allocations is counted; the shell and its
// child's image before exec are the only processes skipped.
func TestExclusionLiftedFromGrandchild(t *testing.T) {
	tracertest.RequireBPF(t)
	denied := copyForNobody(t, "/bin/sh", "denyme", 0o755)
	ff := copyForNobody(t, tracertest.BuildC(t, "forkfirst.c"), "forkfirst", 0o755)
	pol := writeFile(t, "policy.toml", "[scope]\ndeny_executables = [\"denyme\"]\n[limits]\nmax_events_per_second = 100000000\n")
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-lift-%d", os.Getpid())))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--log-level", "debug", "--policy", pol, "--format", "json", "--output", out, "--cgroup", cg)
	script := fmt.Sprintf("echo ready; read x; %s; true", ff)
	attacker := "echo $$ > " + filepath.Join(cg, "cgroup.procs") + " && exec setpriv " + strings.Join(nobodyArgs(t, denied, "-c", fmt.Sprintf("%q", script)), " ")
	w := startWaiting(t, "sh", "-c", attacker)
	t.Cleanup(func() { w.stdin.Close() })
	waitFor(t, &b.stderr, fmt.Sprintf(`msg="skip process" pid=%s `, w.pid()), b.done)
	grandchild := func() string {
		// mtrace stops at its next log line, the skip of the shell's child,
		// until the grandchild has been forked.
		b.stderr.mu.Lock()
		defer b.stderr.mu.Unlock()
		w.stdin.Write([]byte("go\n"))
		return waitForLine(t, &w.out, "fork pid=")
	}()
	waitFor(t, &b.stderr, fmt.Sprintf("msg=\"trace process again\" pid=%s\n", grandchild), b.done)
	programOut := w.release(t)
	b.stop(t)

	r := readReport(t, out)
	checkTallies(t, r, programOut, expect{bin: ff, callees: map[string]string{"child_work": "malloc"}})
	if !strings.Contains(programOut, "tally pid="+grandchild+" ") {
		t.Fatalf("the grandchild %s printed no tally:\n%s", grandchild, programOut)
	}
	for _, p := range r.Processes {
		if p.Exe == denied {
			t.Errorf("pid %d of the denied shell is in the report", p.Pid)
		}
	}
	// The shell, and its child until it exec'd the allowed program.
	if r.SkippedProcesses != 2 {
		t.Errorf("skipped_processes %d, want 2", r.SkippedProcesses)
	}
}

// waitForLine waits until buf holds a line starting with prefix and returns the rest of it.
func waitForLine(t *testing.T, buf *syncBuffer, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range strings.Split(buf.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, prefix); ok && strings.HasSuffix(buf.String(), "\n") {
				return rest
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q in:\n%s", prefix, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLostExecEventExcludes: in a traced cgroup, a process run by nobody
// floods mtrace's smallest ring buffer while a shell of nobody's execs a
// deny-listed program again and again, so that exec (and fork) events are
// lost. The kernel excludes each process it could not tell mtrace of: none
// of the denied program's allocations (1 GiB each, which nothing else in
// the cgroup adds up to) is credited to the image before its exec, and the
// report shows both the lost events and the processes excluded for them.
func TestLostExecEventExcludes(t *testing.T) {
	tracertest.RequireBPF(t)
	denied := copyForNobody(t, tracertest.BuildC(t, "bigblocks.c"), "bigblocks-denied", 0o755)
	spin := copyForNobody(t, tracertest.BuildC(t, "spin.c"), "spin", 0o755)
	pol := writeFile(t, "policy.toml", "[scope]\ndeny_executables = [\"bigblocks-denied\"]\n"+
		"[limits]\nring_buffer_bytes = 4096\nmax_events_per_second = 1000000000\nmax_cpu_percent = 1000\n")
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-lost-%d", os.Getpid())))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--policy", pol, "--format", "json", "--output", out, "--cgroup", cg)
	flood := inCgroup(t, cg, asNobody(t, spin, "1000000000000"))
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flood.Process.Kill(); flood.Wait() })
	script := fmt.Sprintf("for i in $(seq 400); do %s 4 || exit 1; done", denied)
	if out, err := inCgroup(t, cg, asNobody(t, "/bin/sh", "-c", script)).CombinedOutput(); err != nil {
		t.Fatalf("attacker: %v: %s", err, out)
	}
	flood.Process.Kill()
	flood.Wait()
	b.stop(t)

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("bigblocks-denied")) || bytes.Contains(data, []byte("big_work")) {
		t.Errorf("the report names the denied program:\n%.2000s", data)
	}
	r := readReport(t, out)
	for _, p := range r.Processes {
		if p.Pid != flood.Process.Pid && p.Totals.AllocBytes >= 1<<30 {
			t.Errorf("pid %d (%s) holds %d bytes of the denied program's allocations", p.Pid, p.Exe, p.Totals.AllocBytes)
		}
	}
	t.Logf("%d events lost, %d processes excluded unheard", r.LostEvents, r.Dropped.Unheard)
	if r.LostEvents == 0 || r.Dropped.Unheard == 0 {
		t.Errorf("lost events %d, processes excluded for them %d: the flood lost no fork or exec event", r.LostEvents, r.Dropped.Unheard)
	}
}

// TestPidOfSetuidProgramJudgedByEveryUID: nobody runs set-user-ID root
// programs: one runs as root (effective uid 0), one sets its effective uid
// back to nobody's and keeps root as its saved uid. Either may hold root's
// secrets: a policy denying root, or allowing only nobody, refuses --pid of
// it in one line naming the uid and the rule.
func TestPidOfSetuidProgramJudgedByEveryUID(t *testing.T) {
	tracertest.RequireBPF(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a set-user-ID root program")
	}
	for _, prog := range []struct {
		src, name, ready string
		args             []string
		uid              string // which of its uids is root's first
	}{
		{"allocs.c", "allocs-setuid", "ready", []string{"--wait"}, "effective"},
		{"dropeuid.c", "dropeuid", "ready euid=65534 suid=0\n", nil, "saved"},
	} {
		t.Run(prog.name, func(t *testing.T) {
			setuid := copyForNobody(t, tracertest.BuildC(t, prog.src), prog.name, 0o755|os.ModeSetuid)
			running := startCommand(t, asNobody(t, setuid, prog.args...), prog.ready)
			for _, tc := range []struct{ scope, msg string }{
				{`deny_users = ["root"]`, fmt.Sprintf(`refuse to trace: denied by policy: pid %s (%s) has %s uid 0, which matches scope.deny_users "root"`, running.pid(), setuid, prog.uid)},
				{`allow_users = ["nobody"]`, fmt.Sprintf(`refuse to trace: denied by policy: pid %s (%s) has %s uid 0, which is not in scope.allow_users`, running.pid(), setuid, prog.uid)},
			} {
				pol := writeFile(t, "policy.toml", "[scope]\n"+tc.scope+"\n")
				// Should it not be refused, it ends on its own.
				res := runMtrace(t.Context(), nil, "record", "--policy", pol, "--duration", "5s", "--pid", running.pid())
				if res.code != exitRuntime || strings.Count(res.stderr, "mtrace: ") != 1 || lastLine(res.stderr) != "mtrace: "+tc.msg {
					t.Errorf("%s: exit %d, stderr %q; want exit %d and one line %q", tc.scope, res.code, res.stderr, exitRuntime, "mtrace: "+tc.msg)
				}
			}
			running.release(t) // the refused process ran on, untouched
		})
	}
}

// TestUnidentifiableProcessSkipped: a process in a traced cgroup hides what
// it runs (its main thread exits, so its executable can no longer be read)
// and allocates from a thread. Under the built-in deny list, a deny rule mtrace
// cannot show does not match it, so it is skipped and counted, while an
// allowed neighbour in the cgroup is traced.
func TestUnidentifiableProcessSkipped(t *testing.T) {
	tracertest.RequireBPF(t)
	hidden := copyForNobody(t, tracertest.BuildC(t, "leaderless.c", "-pthread"), "leaderless", 0o755)
	bin := copyForNobody(t, tracertest.BuildC(t, "allocs.c"), "allocs", 0o755)
	cg := makeCgroup(t, filepath.Join(cgroup2Mount(t), "mtrace-test.slice", fmt.Sprintf("mtrace-hidden-%d", os.Getpid())))
	join := "echo $$ > " + filepath.Join(cg, "cgroup.procs") + " && exec setpriv "
	hider := startWaiting(t, "sh", "-c", join+strings.Join(nobodyArgs(t, hidden), " "))
	neighbour := startWaiting(t, "sh", "-c", join+strings.Join(nobodyArgs(t, bin, "--wait"), " "))
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--cgroup", cg, "--log-level", "debug", "--format", "json", "--output", out)
	hiderOut, neighbourOut := hider.release(t), neighbour.release(t)
	b.stop(t)
	r := readReport(t, out)
	checkTallies(t, r, neighbourOut, expect{bin: bin, callees: allocsProgram})
	for pid := range parseTallies(t, hiderOut) {
		for _, p := range r.Processes {
			if p.Pid == pid {
				t.Errorf("pid %d, which hides its executable, is in the report as %q", pid, p.Exe)
			}
		}
		if !strings.Contains(b.stderr.String(), fmt.Sprintf(`msg="skip process" pid=%d exe="" reason="denied by policy: pid %d (): its executable cannot be read`, pid, pid)) {
			t.Errorf("pid %d not skipped as unidentifiable", pid)
		}
	}
	if r.SkippedProcesses < 1 {
		t.Errorf("skipped_processes %d, want at least 1", r.SkippedProcesses)
	}
}
