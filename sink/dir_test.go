package sink

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestOpenDirRefusesSymlinkComponent(t *testing.T) {
	base := t.TempDir()
	if err := os.Mkdir(filepath.Join(base, "real"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(base, "link"), filepath.Join(base, "link", ".")} {
		if _, err := OpenDir(path, nil); err == nil || !strings.Contains(err.Error(), "goes through a symlink") {
			t.Errorf("OpenDir(%s): %v, want a symlink refusal", path, err)
		}
	}
	d, err := OpenDir(filepath.Join(base, "real"), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d.Close()
}

func TestOpenDirChecksOwnerAndMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o700, true}, {0o755, true}, {0o775, false}, {0o777, false}, {os.ModeSticky | 0o777, true}} {
		if err := os.Chmod(dir, tc.mode); err != nil {
			t.Fatal(err)
		}
		d, err := OpenDir(dir, nil)
		if (err == nil) != tc.ok {
			t.Errorf("mode %v: %v", tc.mode, err)
		}
		d.Close()
	}
	if os.Geteuid() != 0 {
		return
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDir(dir, nil); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("a directory of another user: %v", err)
	}
	d, err := OpenDir(dir, &syscall.Credential{Uid: 65534, Gid: 65534})
	if err != nil {
		t.Fatalf("a directory of the user mtrace works for: %v", err)
	}
	defer d.Close()
	// Files there are the user's, written as the user.
	if err := d.WriteFile("report", writeString("{}")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "report"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 65534 || st.Gid != 65534 || st.Mode&0o7777 != 0o600 {
		t.Errorf("the report is uid %d gid %d mode %#o, want 65534 65534 0600", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if uid, _ := unix.SetfsuidRetUid(-1); uid != 0 {
		t.Errorf("fsuid %d after writing, want 0", uid)
	}
}

// TestDirKeepsWritingWhereItOpened swaps the opened directory for a symlink
// to another one: files still go into the directory that was opened, and
// retention removes nothing from the other.
func TestDirKeepsWritingWhereItOpened(t *testing.T) {
	base := t.TempDir()
	out, other := filepath.Join(base, "out"), filepath.Join(base, "other")
	for _, dir := range []string{out, other} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	old := ReportName(time.Unix(1, 0), "json")
	if err := os.WriteFile(filepath.Join(other, old), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDir(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.Rename(out, out+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, out); err != nil {
		t.Fatal(err)
	}
	name := ReportName(time.Unix(2, 0), "json")
	if err := d.WriteFile(name, writeString("{}")); err != nil {
		t.Fatal(err)
	}
	if err := d.Prune(1, name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out+".moved", name)); err != nil {
		t.Errorf("the report is not in the opened directory: %v", err)
	}
	entries, _ := os.ReadDir(other)
	if len(entries) != 1 || entries[0].Name() != old {
		t.Errorf("the other directory holds %v, want only %s", entries, old)
	}
}

func TestPruneRemovesOnlyItsOwnReports(t *testing.T) {
	dir := t.TempDir()
	names := []string{
		ReportName(time.Unix(1, 0), "json"),
		ReportName(time.Unix(2, 0), "pprof"),
		ReportName(time.Unix(3, 0), "text"),
	}
	kept := []string{
		"mtrace-notes.txt",                           // not a generated name
		"mtrace-20000101T000000.000000000Z.json.bak", // nor this
		"mtrace-20000101T000000Z.json",               // nor this
	}
	for _, name := range append(names, kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := "mtrace-20000101T000000.000000000Z.json" // a generated name, but a symlink
	if err := os.Symlink(names[2], filepath.Join(dir, link)); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, link)
	// A name that sorts after the fresh report, and is not mtrace's own.
	late := "mtrace-99991231T235959.999999999Z.json"
	if err := os.WriteFile(filepath.Join(dir, late), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, late), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, late)
	}
	d, err := OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The oldest name is the report just written: it stays.
	if err := d.Prune(1, names[0]); err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{names[0]}, kept...) {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed", name)
		}
	}
	for _, name := range names[1:] {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s kept", name)
		}
	}
}

// makeTree makes, in base, a directory tree with symlinks at several depths.
func makeTree(base string) error {
	for _, dir := range []string{"a/b/c", "d"} {
		if err := os.MkdirAll(filepath.Join(base, dir), 0o700); err != nil {
			return err
		}
	}
	for link, target := range map[string]string{"l": "a", "a/lb": "b", "a/b/up": "..", "a/b/abs": "/tmp", "loop": "loop"} {
		if err := os.Symlink(target, filepath.Join(base, link)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(base, "a/f"), nil, 0o600)
}

// FuzzOpenNoSymlinks resolves paths in a tree with symlinks through openat2
// and through the component walk: both open the same directory or both
// fail, and neither opens one reached through a symlink.
func FuzzOpenNoSymlinks(f *testing.F) {
	for _, seed := range []string{"a/b/c", "l/b", "a/lb", "a/b/up/b", "a/./b/../b", "a/f", "loop", "../" + "a", ""} {
		f.Add(seed)
	}
	base := f.TempDir()
	if err := makeTree(base); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		if len(rel) > 256 || strings.ContainsRune(rel, 0) {
			return
		}
		path := filepath.Join(base, rel)
		fd1, err1 := openNoSymlinks(path)
		fd2, err2 := walkNoSymlinks(path)
		defer func() {
			if err1 == nil {
				unix.Close(fd1)
			}
			if err2 == nil {
				unix.Close(fd2)
			}
		}()
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q: openat2 %v, walk %v", path, err1, err2)
		}
		if err1 != nil {
			return
		}
		var st1, st2 unix.Stat_t
		if unix.Fstat(fd1, &st1) != nil || unix.Fstat(fd2, &st2) != nil || st1.Dev != st2.Dev || st1.Ino != st2.Ino {
			t.Fatalf("%q: openat2 and walk opened different directories", path)
		}
		for p := path; p != "/"; p = filepath.Dir(p) {
			if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink != 0 {
				t.Fatalf("%q opened through %s: %v", path, p, err)
			}
		}
	})
}

// TestDirWritesWithNoDescriptorLeft takes every descriptor the process may
// open, as a flood of connections would, after the directory is opened: the
// report is still written, and the next one too.
func TestDirWritesWithNoDescriptorLeft(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	null, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var taken []int
	func() {
		low := lim
		low.Cur = uint64(null) + 64
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		defer unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
		defer func() {
			for _, fd := range append(taken, null) {
				unix.Close(fd)
			}
		}()
		for {
			fd, err := unix.Dup(null)
			if err != nil {
				break
			}
			taken = append(taken, fd)
		}
		if _, err := unix.Dup(null); err == nil {
			t.Fatal("descriptors left after taking them all")
		}
		for _, name := range []string{"a.json", "b.json"} {
			if err := d.WriteFile(name, writeString("{}")); err != nil {
				t.Errorf("write %s with no descriptor left: %v", name, err)
			}
		}
	}()
	for _, name := range []string{"a.json", "b.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}
