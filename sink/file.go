package sink

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// WriteFile writes a file with mode 0600 atomically: write fills an unnamed
// file (O_TMPFILE) in the target directory, which is then linked under a
// temporary name and renamed over path. A reader never sees half a report,
// and a crash, even SIGKILL, leaves the old one intact and no debris. It
// refuses a path that is a symlink, not a regular file, or owned by another
// user. A missing directory is created with mode 0700.
func WriteFile(path string, write func(io.Writer) error) (err error) {
	if err := CheckOutput(path); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	f, named, err := createUnnamed(dir)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		f.Close()
		if err != nil && named {
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	if !named {
		// Give the unnamed file a name in the same directory, then move it into place.
		tmp = filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+strconv.Itoa(os.Getpid()))
		proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
		if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// createUnnamed opens an unnamed 0600 file in dir, or where the file system
// has no O_TMPFILE, a new named one (O_CREATE|O_EXCL, never a symlink).
func createUnnamed(dir string) (f *os.File, named bool, err error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), dir), false, nil
	}
	f, err = os.CreateTemp(dir, ".mtrace.tmp-*")
	return f, true, err
}

// CheckOutput reports whether WriteFile may write path, so that a run can
// refuse a bad output path before it traces anything.
func CheckOutput(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("refuse to write %s: it is a symlink", path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("refuse to write %s: not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("refuse to write %s: owned by uid %d", path, st.Uid)
	}
	return nil
}
