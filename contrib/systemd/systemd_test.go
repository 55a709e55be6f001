package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitsVerify runs systemd-analyze verify on an instance of the service
// and the timer, with ExecStart pointing at an executable that exists here.
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze")
	}
	dir := t.TempDir()
	for _, name := range []string{"mtrace-record@.service", "mtrace-record@.timer"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "/usr/local/bin/mtrace", os.Args[0])
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no",
		filepath.Join(dir, "mtrace-record@nginx.service.service"), filepath.Join(dir, "mtrace-record@nginx.service.timer"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitWritesIntoItsStateDirectory: mtrace never creates its output
// directory, and refuses one reached through a symlink. The service's
// --output-dir must be one that systemd makes (StateDirectory=), and
// without DynamicUser=, which would make /var/lib/mtrace a symlink.
func TestUnitWritesIntoItsStateDirectory(t *testing.T) {
	data, err := os.ReadFile("mtrace-record@.service")
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	var states []string
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(line, "=")
		switch key {
		case "ExecStart":
			if _, after, ok := strings.Cut(value, " --output-dir "); ok {
				dir, _, _ = strings.Cut(after, " ")
			}
		case "StateDirectory":
			states = strings.Fields(value)
		case "DynamicUser":
			t.Errorf("DynamicUser=%s makes the state directory a symlink", value)
		}
	}
	for _, s := range states {
		if "/var/lib/"+s == dir {
			return
		}
	}
	t.Errorf("--output-dir %q is none of the state directories %v systemd makes", dir, states)
}
