package sink

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

func TestWriteFileCreates0600AndReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFile(path, nil, writeString(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the report", len(entries))
	}
}

func TestWriteFileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "report")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(link, nil, writeString("overwrite"))
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("error %v, want a symlink refusal", err)
	}
	if got, _ := os.ReadFile(target); string(got) != "keep" {
		t.Errorf("symlink target changed to %q", got)
	}
}

func TestWriteFileKeepsOldReportOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report")
	if err := WriteFile(path, nil, writeString("old")); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("half written")
	err := WriteFile(path, nil, func(w io.Writer) error { io.WriteString(w, "new, partial"); return failed })
	if !errors.Is(err, failed) {
		t.Fatalf("error %v, want %v", err, failed)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("report is %q after a failed write, want the old one", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("a failed write left %d files, want 1", len(entries))
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 20: "3.0 MiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWriteFileRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a file owned by another user")
	}
	path := filepath.Join(t.TempDir(), "report")
	if err := os.WriteFile(path, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, nil, writeString("mine"))
	if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("error %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "theirs" {
		t.Errorf("file changed to %q", got)
	}
	// What was written is kept under a new name, which the error gives.
	kept, _ := filepath.Glob(path + ".mtrace-*")
	if len(kept) != 1 || !strings.HasSuffix(err.Error(), "written to "+kept[0]+" instead") {
		t.Fatalf("kept %v, error %v; want one file the error names", kept, err)
	}
	if got, _ := os.ReadFile(kept[0]); string(got) != "mine" {
		t.Errorf("kept file holds %q", got)
	}
}

func TestWriteFileNeedsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reports", "report.json")
	err := WriteFile(path, nil, writeString("{}"))
	if err == nil || !strings.Contains(err.Error(), "no such directory") {
		t.Fatalf("error %v, want a missing directory", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); err == nil {
		t.Error("the missing directory was created")
	}
}

// TestWriteFileSurvivesSIGKILL kills a process in the middle of writing a
// report: the old report must be intact and no partial file left behind.
func TestWriteFileSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("SINK_TEST_HALF_WRITE"); path != "" {
		WriteFile(path, nil, func(w io.Writer) error {
			io.WriteString(w, "half a new report")
			fmt.Println("writing")
			select {} // killed here
		})
		return
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "report")
	if err := WriteFile(path, nil, writeString("old")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "SINK_TEST_HALF_WRITE="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "writing\n" {
		t.Fatalf("child said %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("report is %q after SIGKILL mid-write, want the old one", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("SIGKILL mid-write left %d files, want 1", len(entries))
	}
}

func TestLimitedRefusesLargeReports(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report")
	if err := WriteFile(path, nil, writeString("old")); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, nil, Limited(10, writeString("a report longer than ten bytes")))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("report is %q, want the old one kept", got)
	}
	if err := WriteFile(path, nil, Limited(10, writeString("short"))); err != nil {
		t.Fatalf("a report within the limit: %v", err)
	}
}
