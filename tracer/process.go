package tracer

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/procfs"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/tracer/aggregate"
)

// identity is what names a process image, and what the policy judges it
// by, as read from /proc while the process runs.
type identity struct {
	pid                uint32
	exe, argv0, cgroup string
	uids               policy.UIDs
	sandboxed          bool // under seccomp
	exeInode           uint64
}

// identify reads what names process pid: executable path, argv[0] and
// cgroup. It reads argv[0] only, never the arguments after it.
func identify(procRoot string, pid uint32) identity {
	p := identity{pid: pid}
	dir := filepath.Join(procRoot, strconv.Itoa(int(pid)))
	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	if fi, err := os.Stat(filepath.Join(dir, "exe")); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			p.exeInode = st.Ino
		}
	}
	p.argv0 = readArgv0(filepath.Join(dir, "cmdline"), filepath.Join(dir, "stat"))
	p.cgroup = readCgroup(filepath.Join(dir, "cgroup"))
	p.uids, p.sandboxed = readStatus(filepath.Join(dir, "status"))
	return p
}

// target is the process as the policy judges it.
func (p identity) target() policy.Target {
	return policy.Target{Pid: int(p.pid), Exe: p.exe, UIDs: p.uids, Cgroup: p.cgroup}
}

// names are the image's names as a report shows them.
func (p identity) names() aggregate.Names {
	return aggregate.Names{Exe: p.exe, Argv0: p.argv0, Cgroup: p.cgroup}
}

// readStatus returns the real, effective, saved and filesystem uids in
// /proc/PID/status (each -1 if unreadable), all of which the policy judges,
// and whether the process runs under seccomp (strict or filter mode).
func readStatus(path string) (uids policy.UIDs, sandboxed bool) {
	uids = policy.OneUID(-1)
	data, err := os.ReadFile(path)
	if err != nil {
		return uids, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(line, ":")
		fields := strings.Fields(value)
		switch {
		case len(fields) == 0:
		case key == "Uid" && len(fields) == len(uids):
			for i, f := range fields {
				if n, err := strconv.Atoi(f); err == nil && n >= 0 {
					uids[i] = n
				}
			}
		case key == "Seccomp":
			sandboxed = fields[0] != "0"
		}
	}
	return uids, sandboxed
}

// pfKthread is the kernel's PF_KTHREAD flag, in /proc/PID/stat.
const pfKthread = 0x00200000

// kernelThread reports whether p is a kernel thread: it runs no user code,
// so it never allocates through a probe and is never judged.
func kernelThread(p procfs.Proc) bool {
	st, err := p.Stat()
	return err == nil && st.Flags&pfKthread != 0
}

// maxArgv0 bounds the argv[0] read from a process.
const maxArgv0 = 4096

// readArgv0 reads argv[0] from /proc/PID/cmdline (cmdline) a byte at a
// time, up to its first NUL and never past the end of the argv region that
// /proc/PID/stat (stat) gives: the kernel reads a title rewritten over argv
// and environ (setproctitle) on into the environment. When argv[0] fills
// the whole region, or the region is unknown, it may be such a title, whose
// NULs between the arguments are gone: then argv[0] ends at its first space
// too, so that not one byte of the arguments or the environment is kept. A
// process that exits during the read leaves a prefix: then argv[0] is
// unknown ("").
func readArgv0(cmdline, stat string) string {
	f, err := os.Open(cmdline)
	if err != nil {
		return ""
	}
	defer f.Close()
	region := readArgRegion(stat)
	limit := maxArgv0
	if region > 0 && region < limit {
		limit = region
	}
	var b strings.Builder
	var c [1]byte
	ended := false
	for b.Len() < limit {
		n, err := f.Read(c[:])
		if err != nil && err != io.EOF {
			return ""
		}
		if n == 0 {
			// The end without a NUL: a process that rewrote its title, or one
			// that is gone, whose cmdline now reads as empty.
			if n, _ := f.ReadAt(c[:], 0); n == 0 {
				return ""
			}
			break
		}
		if c[0] == 0 {
			ended = true
			break
		}
		b.WriteByte(c[0])
	}
	argv0 := b.String()
	if !ended || b.Len()+1 >= region {
		argv0, _, _ = strings.Cut(argv0, " ")
	}
	return argv0
}

// readArgRegion returns the size of the argv region of a process, from the
// arg_start and arg_end fields of its /proc/PID/stat, or 0 if unknown (the
// kernel shows them only to a reader that may ptrace the process).
func readArgRegion(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return 0
	}
	// The fields after the command name, whose ")" may appear in it, from state (field 3) on.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	const argStart, argEnd = 48 - 3, 49 - 3
	if len(fields) <= argEnd {
		return 0
	}
	start, err1 := strconv.ParseUint(fields[argStart], 10, 64)
	end, err2 := strconv.ParseUint(fields[argEnd], 10, 64)
	if err1 != nil || err2 != nil || end <= start || end-start > 1<<30 {
		return 0
	}
	return int(end - start)
}

// readCgroup returns the process's cgroup: its cgroup v2 path, or on a v1
// host the path in the name=systemd hierarchy, where units live.
func readCgroup(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	v2, systemd := "", ""
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) != 3 {
			continue
		}
		switch {
		case fields[0] == "0" && fields[1] == "":
			v2 = fields[2]
		case fields[1] == "name=systemd":
			systemd = fields[2]
		}
	}
	if (v2 == "" || v2 == "/") && systemd != "" {
		return systemd
	}
	return v2
}
