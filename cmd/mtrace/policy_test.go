package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	for _, want := range []string{"is valid", "users: allow www-data", "run time 2h0m0s", "keep 3", "built-in deny list on"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("policy check output lacks %q:\n%s", want, res.stdout)
		}
	}
	bad := runMtrace(t.Context(), nil, "policy", "check", writeFile(t, "bad.toml", "[limits]\n\nmax_live = 0\n"))
	if bad.code != exitRuntime || !strings.Contains(bad.stderr, "line 3: limits.max_live") {
		t.Errorf("bad policy: exit %d, %s", bad.code, bad.stderr)
	}
}
