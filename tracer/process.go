package tracer

import (
	"bufio"
	"bytes"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/prometheus/procfs"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/policy"
)

// stackKey identifies one aggregate of a process: the probe (allocation
// function in a module) called, and the stack it was called from.
type stackKey struct {
	probe uint16
	stack uint64
}

// Counts are the totals of one aggregate.
type Counts struct {
	Allocs, AllocBytes uint64
	Frees, FreeBytes   uint64
	// LeakedObjects and LeakedBytes are the live allocations older than the
	// leak age at the end, when leaks were asked for.
	LeakedObjects, LeakedBytes uint64
}

// LiveObjects is the number of allocations not freed.
func (c Counts) LiveObjects() uint64 { return sub(c.Allocs, c.Frees) }

// LiveBytes is the number of bytes allocated and not freed.
func (c Counts) LiveBytes() uint64 { return sub(c.AllocBytes, c.FreeBytes) }

// sub is a - b, or 0 where events lost on the way would make it negative.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// add adds d to c, every field. It is the one place counts are summed:
// events, folded images and executables' totals all go through it.
func (c *Counts) add(d Counts) {
	c.Allocs += d.Allocs
	c.AllocBytes += d.AllocBytes
	c.Frees += d.Frees
	c.FreeBytes += d.FreeBytes
	c.LeakedObjects += d.LeakedObjects
	c.LeakedBytes += d.LeakedBytes
}

// process is one image of a traced process, from its first event or exec
// to its exec or exit, with its aggregates. Frees arrive with the stack and
// size of the allocation they free (matched in the kernel), so the order in
// which events arrive does not matter.
type process struct {
	pid                uint32
	exe, argv0, cgroup string
	uids               policy.UIDs
	sandboxed          bool // under seccomp when identified
	exeInode           uint64
	denied             bool // the policy does not allow tracing it: its events are dropped
	exited             bool
	folded             int     // images of its executable summed into it (see fold); 0 for one image
	totals             *Counts // of its executable, across its processes, for metrics
	stacks             map[stackKey]*Counts
	own                Counts          // this image's totals
	sizes, lifetimes   [65]uint64      // allocations by log2 of size; frees by log2 of lifetime in ns
	timeline           []TimelinePoint // live bytes, once a second
}

// TimelinePoint is the memory a process had in use at one moment.
type TimelinePoint struct {
	Seconds   float64 // since tracing started
	LiveBytes uint64
}

// maxTimeline bounds the points kept per process; past it, every other
// point is dropped and the timeline gets coarser.
const maxTimeline = 4096

func (p *process) sample(seconds float64) {
	if len(p.timeline) == maxTimeline {
		for i := 0; i < maxTimeline/2; i++ {
			p.timeline[i] = p.timeline[2*i]
		}
		p.timeline = p.timeline[:maxTimeline/2]
	}
	p.timeline = append(p.timeline, TimelinePoint{Seconds: seconds, LiveBytes: p.own.LiveBytes()})
}

func newProcess(pid uint32) *process {
	return &process{pid: pid, stacks: make(map[stackKey]*Counts)}
}

// add accounts one allocation or free, as many times as its sampling weight.
// It allocates only for a stack it has not seen, and reports whether the
// event was well formed.
func (p *process) add(e *bpf.AllocAllocEvent) bool {
	w := uint64(max(e.Weight, 1))
	var d Counts
	switch e.Hdr.Op {
	case uint8(bpf.AllocOpOP_ALLOC):
		d.Allocs, d.AllocBytes = w, e.Size*w
	case uint8(bpf.AllocOpOP_FREE):
		d.Frees, d.FreeBytes = w, e.Size*w
	default:
		return false
	}
	k := stackKey{probe: e.Probe, stack: e.Stack}
	c := p.stacks[k]
	if c == nil {
		c = new(Counts)
		p.stacks[k] = c
	}
	c.add(d)
	p.own.add(d)
	if p.totals != nil {
		p.totals.add(d)
	}
	if e.Hdr.Op == uint8(bpf.AllocOpOP_ALLOC) {
		p.sizes[bits.Len64(e.Size)] += w
	} else {
		p.lifetimes[bits.Len64(e.Age)] += w
	}
	return true
}

// sameImage copies the names of another record of the same image: a forked child's parent.
func (p *process) sameImage(o *process) {
	p.exe, p.argv0, p.cgroup, p.uids, p.exeInode = o.exe, o.argv0, o.cgroup, o.uids, o.exeInode
}

// identify reads what names the process: executable path, argv[0] and
// cgroup. It reads argv[0] only, never the arguments after it.
func (p *process) identify(procRoot string) {
	dir := filepath.Join(procRoot, strconv.Itoa(int(p.pid)))
	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	if fi, err := os.Stat(filepath.Join(dir, "exe")); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			p.exeInode = st.Ino
		}
	}
	p.argv0 = readArgv0(filepath.Join(dir, "cmdline"), filepath.Join(dir, "stat"))
	p.cgroup = readCgroup(filepath.Join(dir, "cgroup"))
	p.uids, p.sandboxed = readStatus(filepath.Join(dir, "status"))
}

// target is the process as the policy judges it.
func (p *process) target() policy.Target {
	return policy.Target{Pid: int(p.pid), Exe: p.exe, UIDs: p.uids, Cgroup: p.cgroup}
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
