package main

import (
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// attackerDir returns a directory owned by nobody that nobody can reach,
// for tests where an unprivileged traced command attacks mtrace's outputs,
// and nobody's uid.
func attackerDir(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make directories of another user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	base := t.TempDir()
	// t.TempDir makes its directories 0700: let nobody through them.
	for _, dir := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	return home, uid
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestOutputDirectorySwappedDuringRun: the traced command, running as
// nobody, renames the report's directory (root's, in nobody's home) and
// puts a symlink to another root directory, standing for /etc/cron.d, in
// its place. mtrace writes the report, and prunes old ones, in the
// directory it opened before tracing; the other one stays untouched.
func TestOutputDirectorySwappedDuringRun(t *testing.T) {
	tracertest.RequireBPF(t)
	home, _ := attackerDir(t)
	victim := filepath.Join(filepath.Dir(home), "cron.d")
	if err := os.Mkdir(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	planted := "mtrace-20000101T000000.000000000Z.text" // root's, named as mtrace names reports
	if err := os.WriteFile(filepath.Join(victim, planted), []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	reports, moved := filepath.Join(home, "reports"), filepath.Join(home, "moved")
	swap := "mv " + reports + " " + moved + " && ln -s " + victim + " " + reports
	for name, args := range map[string][]string{
		"--output":     {"--output", filepath.Join(reports, "report.txt")},
		"--output-dir": {"--output-dir", reports, "--keep", "1", "--format", "text"},
	} {
		t.Run(name, func(t *testing.T) {
			os.Remove(reports)
			os.RemoveAll(moved)
			if err := os.Mkdir(reports, 0o700); err != nil {
				t.Fatal(err)
			}
			res := runMtrace(t.Context(), nil, append(append([]string{"record", "--user", "nobody"}, args...), "--", "sh", "-c", swap)...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if fi, err := os.Lstat(reports); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("the command did not swap the directory: %v", err)
			}
			if got := listDir(t, victim); len(got) != 1 || got[0] != planted {
				t.Errorf("the symlink's target holds %v, want only %s", got, planted)
			}
			got := listDir(t, moved)
			if len(got) != 1 || (name == "--output" && got[0] != "report.txt") || (name == "--output-dir" && !strings.HasPrefix(got[0], "mtrace-")) {
				t.Fatalf("the opened directory holds %v, want the report", got)
			}
			if data, _ := os.ReadFile(filepath.Join(moved, got[0])); !strings.Contains(string(data), "sh") {
				t.Errorf("the report in the opened directory is not the run's:\n%s", data)
			}
		})
	}
}

// TestOutputRefusals: outputs mtrace refuses before it traces anything, one
// line each, and directories it never creates.
func TestOutputRefusals(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing", "dir")
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"missing directory", []string{"--output", filepath.Join(missing, "x.txt")}, "no such directory"},
		{"missing output-dir", []string{"--output-dir", missing}, "no such directory"},
		{"missing textfile directory", []string{"--metrics-textfile", filepath.Join(missing, "m.prom")}, "no such directory"},
		{"symlinked directory", []string{"--output", filepath.Join(dir, "link", "x.txt")}, "goes through a symlink"},
		{"writable directory", []string{"--output", filepath.Join(open, "x.txt")}, "writable by group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runMtrace(t.Context(), nil, append(append([]string{"record"}, tc.args...), "--", "true")...)
			if last := lastLine(res.stderr); res.code != exitRuntime || !strings.Contains(last, tc.msg) {
				t.Errorf("exit %d, %q; want exit %d and %q", res.code, last, exitRuntime, tc.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Error("a missing directory was created")
	}
}

// TestMetricsTextfileObeysPolicy: the textfile follows the policy's output
// rules as the report does: only in its directory, and not at all when the
// policy encrypts outputs, since node_exporter could not read it.
func TestMetricsTextfileObeysPolicy(t *testing.T) {
	tracertest.RequireBPF(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	confined := writeFile(t, "policy.toml", "[output]\ndirectory = \""+dir+"\"\n")
	encrypted := writeFile(t, "encrypted.toml", "[output]\nencrypt_to = [\""+id.Recipient().String()+"\"]\n")
	elsewhere := filepath.Join(t.TempDir(), "mtrace.prom")
	for _, tc := range []struct {
		name   string
		policy string
		file   string
		extra  []string
		code   int
		msg    string
	}{
		{"outside the policy's directory", confined, elsewhere, nil, exitRuntime, "the policy allows outputs in " + dir + " only"},
		{"encrypting policy", encrypted, elsewhere, []string{"--output", filepath.Join(t.TempDir(), "report.json.age")}, exitUsage, "node_exporter cannot read an encrypted file"},
		{"in the policy's directory", confined, filepath.Join(dir, "mtrace.prom"), nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"record", "--policy", tc.policy, "--metrics-textfile", tc.file}, tc.extra...)
			res := runMtrace(t.Context(), nil, append(args, "--", "true")...)
			if last := lastLine(res.stderr); res.code != tc.code || !strings.Contains(last, tc.msg) {
				t.Fatalf("exit %d, %q; want exit %d and %q", res.code, last, tc.code, tc.msg)
			}
			_, err := os.Stat(tc.file)
			if (err == nil) != (tc.code == 0) {
				t.Errorf("textfile written: %v, want %v", err == nil, tc.code == 0)
			}
		})
	}
	if _, err := os.Stat(elsewhere); err == nil {
		t.Error("a textfile was written outside the policy's directory")
	}
}

// TestRetentionRemovesOnlyItsOwnReports: in a directory of the sudo user,
// where mtrace writes as that user, the traced command, running as them,
// plants files retention must leave alone: one whose name only starts as
// mtrace's do, and a symlink with a report's name pointing at root's file;
// and root has a file there named to sort after the fresh report. --keep 1
// removes the user's old report only.
func TestRetentionRemovesOnlyItsOwnReports(t *testing.T) {
	tracertest.RequireBPF(t)
	home, uid := attackerDir(t)
	t.Setenv("SUDO_UID", strconv.Itoa(uid))
	reports := filepath.Join(home, "reports")
	if err := os.Mkdir(reports, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(reports, uid, -1); err != nil {
		t.Fatal(err)
	}
	old := "mtrace-20000101T000000.000000000Z.text"
	if err := os.WriteFile(filepath.Join(reports, old), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(reports, old), uid, -1); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(filepath.Dir(home), "root-file")
	if err := os.WriteFile(rootFile, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	planted := []string{"mtrace-99991231T235959.999999999Z.text", "mtrace-notes.text", "mtrace-20000102T000000.000000000Z.text"}
	if err := os.WriteFile(filepath.Join(reports, planted[0]), []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	plant := "cd " + reports + " && touch " + planted[1] + " && ln -s " + rootFile + " " + planted[2]
	res := runMtrace(t.Context(), nil, "record", "--user", "nobody", "--output-dir", reports, "--keep", "1", "--format", "text", "--", "sh", "-c", plant)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	names := listDir(t, reports)
	for _, name := range planted {
		if !slices.Contains(names, name) {
			t.Errorf("retention removed %s, which mtrace did not write", name)
		}
	}
	if slices.Contains(names, old) {
		t.Errorf("retention kept the old report %s", old)
	}
	if len(names) != len(planted)+1 {
		t.Errorf("the directory holds %v, want the planted files and the fresh report", names)
	}
	if data, err := os.ReadFile(rootFile); err != nil || string(data) != "root's" {
		t.Errorf("root's file: %q, %v", data, err)
	}
}

// TestReportInSudoUsersDirectory: run through sudo, mtrace writes into the
// sudo user's own 0755 directory, which root may not once it has dropped
// CAP_DAC_OVERRIDE after attaching, as that user: the report is theirs,
// 0600, and retention removes their old report.
func TestReportInSudoUsersDirectory(t *testing.T) {
	tracertest.RequireBPF(t)
	home, uid := attackerDir(t)
	nobody, _ := user.LookupId(strconv.Itoa(uid))
	gid, _ := strconv.Atoi(nobody.Gid)
	t.Setenv("SUDO_UID", strconv.Itoa(uid))
	t.Setenv("SUDO_GID", nobody.Gid)
	old := "mtrace-20000101T000000.000000000Z.json" // of an earlier run, the user's
	for name, args := range map[string][]string{
		"--output":     {"--output", filepath.Join(home, "report.json")},
		"--output-dir": {"--output-dir", home, "--keep", "1", "--format", "json"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, name := range listDir(t, home) {
				os.Remove(filepath.Join(home, name))
			}
			if err := os.WriteFile(filepath.Join(home, old), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(filepath.Join(home, old), uid, gid); err != nil {
				t.Fatal(err)
			}
			res := runMtraceProcess(t, append(append([]string{"record"}, args...), "--", "sh", "-c", "true")...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, lastLine(res.stderr))
			}
			names, report := listDir(t, home), "report.json"
			if name == "--output-dir" {
				if len(names) != 1 || names[0] == old {
					t.Fatalf("the directory holds %v, want the fresh report only", names)
				}
				report = names[0]
			} else if !slices.Equal(names, []string{old, report}) {
				t.Fatalf("the directory holds %v, want %s and %s", names, old, report)
			}
			path := filepath.Join(home, report)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != 0o600 {
				t.Errorf("the report is uid %d gid %d mode %v, want %d %d 0600", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
			}
			if r := readReport(t, path); len(r.Processes) == 0 {
				t.Errorf("the report holds no process")
			}
		})
	}
}

// TestOutputNameTakenInStickyDirectory: in a sticky directory open to all,
// as /tmp is, the traced command, running as nobody, takes the report's
// name after mtrace checked it. mtrace may not replace nobody's file, and
// keeps the report under a new name instead, says where in one line and
// exits 1; nobody's file stays as it was.
func TestOutputNameTakenInStickyDirectory(t *testing.T) {
	tracertest.RequireBPF(t)
	home, uid := attackerDir(t)
	tmp := filepath.Join(filepath.Dir(home), "tmp")
	if err := os.Mkdir(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "report.json")
	res := runMtraceProcess(t, "record", "--user", "nobody", "--output", out, "--", "sh", "-c", "echo theirs > "+out)
	kept, _ := filepath.Glob(out + ".mtrace-*")
	if len(kept) != 1 {
		t.Fatalf("exit %d, %q; the directory holds %v, want the report under a new name", res.code, lastLine(res.stderr), listDir(t, tmp))
	}
	if last := lastLine(res.stderr); res.code != exitRuntime || !strings.Contains(last, "owned by uid "+strconv.Itoa(uid)) || !strings.Contains(last, kept[0]) {
		t.Errorf("exit %d, %q; want exit %d and a line naming %s", res.code, last, exitRuntime, kept[0])
	}
	fi, err := os.Stat(kept[0])
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("the kept report is uid %d mode %v, want root's, 0600", st.Uid, fi.Mode().Perm())
	}
	if r := readReport(t, kept[0]); !slices.ContainsFunc(r.Processes, func(p sink.Process) bool { return strings.HasSuffix(p.Exe, "sh") }) {
		t.Errorf("the kept report does not hold the run's command")
	}
	fi, err = os.Stat(out)
	if data, _ := os.ReadFile(out); err != nil || string(data) != "theirs\n" || int(fi.Sys().(*syscall.Stat_t).Uid) != uid {
		t.Errorf("nobody's file: %q, %v", data, err)
	}
}
