package tracer

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/internal/kernel"
)

// cgroupTarget is a traced cgroup. A cgroup v2 is matched in the kernel by
// id at its depth, which covers processes that enter it later; a cgroup v1
// is followed through its member pids, polled.
type cgroupTarget struct {
	path  string
	v2    bool
	id    uint64
	level uint32
}

func openCgroup(path string) (cgroupTarget, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return cgroupTarget{}, fmt.Errorf("open cgroup %s: %w", path, err)
	}
	cg := cgroupTarget{path: filepath.Clean(path)}
	switch sfs.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		var st unix.Stat_t
		if err := unix.Stat(cg.path, &st); err != nil {
			return cgroupTarget{}, fmt.Errorf("open cgroup %s: %w", path, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return cgroupTarget{}, fmt.Errorf("open cgroup %s: not a directory", path)
		}
		// The cgroup id is the inode of its directory; its level is its depth below the root.
		cg.v2, cg.id = true, st.Ino
		for p := cg.path; ; cg.level++ {
			parent := filepath.Dir(p)
			if parent == p || unix.Statfs(parent, &sfs) != nil || sfs.Type != unix.CGROUP2_SUPER_MAGIC {
				break
			}
			p = parent
		}
	case unix.CGROUP_SUPER_MAGIC:
	default:
		return cgroupTarget{}, fmt.Errorf("open cgroup %s: not in a cgroup file system", path)
	}
	return cg, nil
}

// maxCgroupDepth bounds walks of cgroup trees.
const maxCgroupDepth = 8

// members returns the pids in the cgroup and its descendants.
func (cg cgroupTarget) members() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(cg.path, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == cg.path {
				return err
			}
			return nil // a child cgroup removed meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		if strings.Count(strings.TrimPrefix(path, cg.path), "/") > maxCgroupDepth {
			return filepath.SkipDir
		}
		f, err := os.Open(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		defer f.Close()
		sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
		for sc.Scan() {
			if pid, err := strconv.Atoi(sc.Text()); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read members of cgroup %s: %w", cg.path, err)
	}
	return pids, nil
}

// ResolveUnit returns the cgroup directory of a running systemd unit; a name
// without a suffix is taken as NAME.service.
func ResolveUnit(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("unit %q: not a unit name", name)
	}
	if !strings.Contains(name, ".") {
		name += ".service"
	}
	if _, found := findCgroup(false, func(root, path string) bool { return path != root && filepath.Base(path) == name }); found != "" {
		return found, nil
	}
	return "", fmt.Errorf("unit %s: no cgroup found; is it running?", name)
}

// cgroupByID returns the path, below the cgroup v2 root, of the cgroup with
// the given id (the inode of its directory), or "" if there is none.
func cgroupByID(id uint64) string {
	root, found := findCgroup(true, func(_, path string) bool {
		var st unix.Stat_t
		return unix.Stat(path, &st) == nil && st.Ino == id
	})
	if found == "" {
		return ""
	}
	return "/" + strings.TrimPrefix(strings.TrimPrefix(found, root), "/")
}

// findCgroup walks the mounted cgroup hierarchies (only v2 ones with
// v2only), down to maxCgroupDepth, and returns the first directory match
// accepts, with the root it is under; "" if there is none.
func findCgroup(v2only bool, match func(root, path string) bool) (root, found string) {
	for _, root := range kernel.CgroupRoots {
		if v2, v1 := kernel.CgroupMount(root); !v2 && (v2only || !v1) {
			continue
		}
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			switch {
			case err != nil || !d.IsDir():
				return nil
			case match(root, path):
				found = path
				return filepath.SkipAll
			case strings.Count(strings.TrimPrefix(path, root), "/") >= maxCgroupDepth:
				return filepath.SkipDir
			}
			return nil
		})
		if found != "" {
			return root, found
		}
	}
	return "", ""
}
