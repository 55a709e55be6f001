package kernel

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Version returns the running kernel's major and minor version and its release string.
func Version() (major, minor int, release string, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0, "", fmt.Errorf("uname: %w", err)
	}
	release = unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, release, fmt.Errorf("kernel release %q: no version", release)
	}
	major, _ = strconv.Atoi(parts[0])
	minor, _ = strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return major, minor, release, nil
}

// AtLeast reports whether the running kernel is major.minor or newer, and
// whether its version could be read.
func AtLeast(major, minor int) (at, known bool) {
	ma, mi, _, err := Version()
	return ma > major || (ma == major && mi >= minor), err == nil
}

// HaveUprobeSession reports whether the kernel has uprobe sessions and the
// kfuncs they use: from Linux 6.13.
func HaveUprobeSession() error {
	_, _, release, err := Version()
	if err != nil {
		return err
	}
	if at, _ := AtLeast(6, 13); !at {
		return fmt.Errorf("kernel %s: %w", release, ebpf.ErrNotSupported)
	}
	return nil
}

// Links says which uprobe links mtrace may use here: uprobe_multi, and
// with it uprobe sessions. A feature pretended missing is not used.
func Links() (multi, session bool) {
	multi = have("uprobe_multi", features.HaveBPFLinkUprobeMulti)
	return multi, multi && have("uprobe_session", HaveUprobeSession)
}

// have reports whether an optional kernel feature may be used: the kernel
// has it, and it is not pretended missing under its check's name.
func have(name string, probe func() error) bool {
	return !Pretended(name) && probe() == nil
}

// PretendMissingEnv names, comma-separated, the checks of mtrace check that
// fail as if their feature were absent, for mtrace check and for tracing
// itself (which then refuses or degrades). It is for tests only: a way to
// test those paths on a host that has it all.
const PretendMissingEnv = "MTRACE_PRETEND_MISSING"

// Pretended reports whether MTRACE_PRETEND_MISSING names the check name.
func Pretended(name string) bool {
	for _, n := range strings.Split(os.Getenv(PretendMissingEnv), ",") {
		if n == name && n != "" {
			return true
		}
	}
	return false
}

// CgroupRoots are where cgroup hierarchies are looked for: the cgroup v2
// tree (unified or hybrid layout) and the v1 name=systemd tree.
var CgroupRoots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"}

// CgroupMount says whether root is the mount point of a cgroup v2 or v1 hierarchy.
func CgroupMount(root string) (v2, v1 bool) {
	var sfs unix.Statfs_t
	if unix.Statfs(root, &sfs) != nil {
		return false, false
	}
	return sfs.Type == unix.CGROUP2_SUPER_MAGIC, sfs.Type == unix.CGROUP_SUPER_MAGIC
}
