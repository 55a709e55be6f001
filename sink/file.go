package sink

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is an output directory opened once. Every file mtrace checks, writes
// or removes there is reached through its descriptor, never through its
// path again, so that renaming a directory of the path, or putting a
// symlink in its place, while mtrace runs changes nothing: the files still
// go into the directory that was opened and checked.
type Dir struct {
	fd    int
	spare int // a descriptor held for the files written here (asWriter); -1 if none
	path  string
	// uid and gid are the writer, who every step in the directory is taken
	// as and who owns the files written there: mtrace's own user, or the
	// user the directory belongs to (asWriter).
	uid, gid int
}

// OpenDir opens the directory path (cleaned first, so ".." is removed as
// text) without following a symlink in any component, and checks what it
// opened: a directory owned by root, by mtrace's own user or by user (the
// user mtrace works for, nil for none), and writable by no one else unless
// it is sticky, as /tmp is. In a directory of user, files are written as
// user. A missing directory is an error: it is never created.
func OpenDir(path string, user *syscall.Credential) (*Dir, error) {
	clean := filepath.Clean(path)
	fd, err := openNoSymlinks(clean)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("refuse output directory %s: its path goes through a symlink (give the real path)", clean)
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("open output directory %s: no such directory (mtrace never creates one)", clean)
	case err != nil:
		return nil, fmt.Errorf("open output directory %s: %w", clean, err)
	}
	d := &Dir{fd: fd, spare: -1, path: clean, uid: os.Geteuid(), gid: os.Getegid()}
	d.reserve()
	if err := d.checkDir(user); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// openNoSymlinks opens the directory path as an O_PATH descriptor, failing
// with ELOOP if any component of it is a symlink: through openat2's
// RESOLVE_NO_SYMLINKS, or before Linux 5.6 (or under a seccomp filter that
// refuses openat2), one component at a time.
func openNoSymlinks(path string) (int, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	})
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return walkNoSymlinks(path)
	}
	return fd, err
}

// walkNoSymlinks opens path one component at a time, each relative to the
// one before with O_NOFOLLOW, and fails as openat2 would: ELOOP at a
// symlink, ENOTDIR at anything else that is not a directory.
func walkNoSymlinks(path string) (int, error) {
	start := "."
	if filepath.IsAbs(path) {
		start = "/"
	}
	fd, err := unix.Open(start, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, name := range strings.Split(path, "/") {
		if name == "" || name == "." {
			continue
		}
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			return -1, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
		case unix.S_IFLNK:
			unix.Close(next)
			return -1, unix.ELOOP
		default:
			unix.Close(next)
			return -1, unix.ENOTDIR
		}
		fd = next
	}
	return fd, nil
}

// checkDir refuses a directory whose owner or mode would let someone else
// than root, mtrace's user or user put files in it or take them away, and
// makes user the writer of a directory of theirs.
func (d *Dir) checkDir(user *syscall.Credential) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fmt.Errorf("check output directory %s: %w", d.path, err)
	}
	switch uid := int(st.Uid); {
	case user != nil && st.Uid == user.Uid && uid != d.uid:
		d.uid, d.gid = uid, int(user.Gid)
	case uid != 0 && uid != d.uid:
		return fmt.Errorf("refuse output directory %s: owned by uid %d", d.path, st.Uid)
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return fmt.Errorf("refuse output directory %s: writable by group or others (mode %#o) and not sticky", d.path, st.Mode&0o7777)
	}
	return nil
}

// Path is the directory's path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close releases the directory; it is safe to call twice and on nil.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	d.release()
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// reserve holds a spare descriptor, so that a file can still be written in
// d when mtrace has run out of descriptors meanwhile (a flood of
// connections, a host-wide trace's links): the report is never lost for
// want of one.
func (d *Dir) reserve() {
	if d.spare < 0 {
		d.spare, _ = unix.FcntlInt(uintptr(d.fd), unix.F_DUPFD_CLOEXEC, 0)
	}
}

// release gives the spare descriptor back, for the file about to be written.
func (d *Dir) release() {
	if d.spare >= 0 {
		unix.Close(d.spare)
		d.spare = -1
	}
}

// SwitchesUser reports whether d's writer is another user than mtrace's
// own, which takes CAP_SETUID and CAP_SETGID (asWriter).
func (d *Dir) SwitchesUser() bool { return d.uid != os.Geteuid() || d.gid != os.Getegid() }

// Check reports whether WriteFile may write name, so that a run can refuse
// a bad output before it traces anything: name must be a plain file name,
// and what it names, if anything, a regular file of d's writer.
func (d *Dir) Check(name string) error {
	if err := d.checkName(name); err != nil {
		return err
	}
	return d.asWriter(func() error { return d.check(name) })
}

// checkName refuses a name that is not a plain file name.
func (d *Dir) checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("refuse to write %s: not a file name", filepath.Join(d.path, name))
	}
	return nil
}

// check refuses what name names, if anything, unless it is a regular file
// of d's writer; it runs as the writer.
func (d *Dir) check(name string) error {
	path := filepath.Join(d.path, name)
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return fmt.Errorf("check %s: %w", path, err)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("refuse to write %s: it is a symlink", path)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("refuse to write %s: not a regular file", path)
	case int(st.Uid) != d.uid:
		return fmt.Errorf("refuse to write %s: owned by uid %d", path, st.Uid)
	}
	return nil
}

// WriteFile writes the file name in d with mode 0600, as d's writer,
// atomically: write fills an unnamed file (O_TMPFILE) in d, which is then
// linked under a temporary name and renamed over name, all relative to d.
// A reader never sees half a file, and a crash, even SIGKILL, leaves the
// old one intact and no debris. What has been written is never lost: when
// name is taken by something Check refuses (put there while mtrace ran, in
// a sticky directory say) or the rename fails, the file is linked under a
// new name, NAME.mtrace-RANDOM, that replaces nothing, and the error says
// where it is.
func (d *Dir) WriteFile(name string, write func(io.Writer) error) error {
	if err := d.checkName(name); err != nil {
		return err
	}
	return d.asWriter(func() error { return d.writeFile(name, write) })
}

// writeFile is WriteFile, run as the writer.
func (d *Dir) writeFile(name string, write func(io.Writer) error) error {
	path := filepath.Join(d.path, name)
	f, tmp, err := d.create(name)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer func() {
		f.Close()
		if tmp != "" {
			unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if tmp == "" {
		if tmp, err = d.link(f, tempPrefix(name)); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	err = d.check(name)
	if err == nil {
		if err = unix.Renameat(d.fd, tmp, d.fd, name); err == nil {
			tmp = ""
			return nil
		}
		err = fmt.Errorf("replace %s: %w", path, err)
	}
	kept, lerr := d.link(f, name+".mtrace-")
	if lerr != nil {
		return fmt.Errorf("%w; write %s.mtrace-*: %w", err, path, lerr)
	}
	return fmt.Errorf("%w; written to %s instead", err, filepath.Join(d.path, kept))
}

// tempTries bounds the fresh names tried when one is taken.
const tempTries = 16

// tempPrefix starts the hidden temporary names of name.
func tempPrefix(name string) string { return "." + name + ".tmp-" }

// freshName returns prefix followed by random characters.
func freshName(prefix string) string {
	return prefix + strconv.FormatUint(rand.Uint64(), 36)
}

// create opens an unnamed 0600 file in d, or where the file system has no
// O_TMPFILE, a new one under a temporary name (O_EXCL, never a symlink),
// which it returns.
func (d *Dir) create(name string) (f *os.File, tmp string, err error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), name), "", nil
	}
	for range tempTries {
		tmp = freshName(tempPrefix(name))
		fd, err = unix.Openat(d.fd, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		return nil, "", err
	}
	return os.NewFile(uintptr(fd), name), tmp, nil
}

// link gives the file f, named or not, a fresh name in d starting with
// prefix, and returns it; linkat never replaces a file.
func (d *Dir) link(f *os.File, prefix string) (name string, err error) {
	proc := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	for range tempTries {
		name = freshName(prefix)
		err = unix.Linkat(unix.AT_FDCWD, proc, d.fd, name, unix.AT_SYMLINK_FOLLOW)
		if !errors.Is(err, unix.EEXIST) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	return name, nil
}

// WriteFile writes the file path as Dir.WriteFile does, through its
// directory opened (and checked, user as for OpenDir) for this one write.
func WriteFile(path string, user *syscall.Credential, write func(io.Writer) error) error {
	d, err := OpenDir(filepath.Dir(path), user)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.WriteFile(filepath.Base(path), write)
}
