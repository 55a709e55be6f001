package hostcheck

import (
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/tracer/attach"
)

// Check is the outcome of one host check.
type Check struct {
	Name     string
	OK       bool
	Required bool   // mtrace cannot trace without it
	Detail   string // what was found
	Fix      string // what to do when it fails
}

// minKernel is the oldest kernel mtrace supports (bpf_find_vma, BTF
// tracepoints, attach cookies, ring buffer).
var minKernel = [2]int{5, 17}

// Run says, one check per feature, whether this host can run mtrace, which
// allocators it would probe in each of pids, and how the stacks through
// each file they map can be walked. With loadPrograms it also loads
// mtrace's BPF programs, the final proof. A check that
// MTRACE_PRETEND_MISSING names fails (kernel.PretendMissingEnv).
func Run(procRoot string, pids []int, loadPrograms bool) []Check {
	var out []Check
	add := func(c Check) {
		if kernel.Pretended(c.Name) {
			c.OK, c.Detail = false, "pretended missing"
		}
		out = append(out, c)
	}
	add(kernelCheck())
	// Capabilities first: without them the feature probes below fail too.
	for _, c := range capabilityChecks() {
		add(c)
	}
	add(fileCheck("btf", "/sys/kernel/btf/vmlinux", true, "kernel BTF", "a kernel built with CONFIG_DEBUG_INFO_BTF=y"))
	add(fileCheck("uprobes", "/sys/bus/event_source/devices/uprobe", true, "uprobe events", "a kernel built with CONFIG_UPROBE_EVENTS=y"))
	add(featureCheck("ringbuf", true, "BPF ring buffer", "Linux 5.8 or newer", func() error { return features.HaveMapType(ebpf.RingBuf) }))
	add(featureCheck("uprobe_multi", false, "uprobe_multi links (one link per module; fast detach)", "Linux 6.6 or newer; without it mtrace attaches one link per function", features.HaveBPFLinkUprobeMulti))
	add(featureCheck("uprobe_session", false, "uprobe sessions (an allocation --sample-bytes leaves out costs no return probe)", "Linux 6.13 or newer; without it every allocation's return is probed", kernel.HaveUprobeSession))
	add(lockdownCheck())
	add(paranoidCheck())
	add(cgroup2Check())
	if loadPrograms {
		add(programsCheck())
	}
	for _, pid := range pids {
		add(allocatorCheck(procRoot, pid))
		add(stacksCheck(procRoot, pid))
	}
	return out
}

func kernelCheck() Check {
	c := Check{Name: "kernel", Required: true, Fix: fmt.Sprintf("Linux %d.%d or newer", minKernel[0], minKernel[1])}
	_, _, release, err := kernel.Version()
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK, _ = kernel.AtLeast(minKernel[0], minKernel[1])
	c.Detail = release
	return c
}

func fileCheck(name, path string, required bool, what, fix string) Check {
	_, err := os.Stat(path)
	c := Check{Name: name, OK: err == nil, Required: required, Detail: what + " at " + path, Fix: fix}
	if err != nil {
		c.Detail = what + ": " + err.Error()
	}
	return c
}

func featureCheck(name string, required bool, what, fix string, probe func() error) Check {
	err := probe()
	c := Check{Name: name, OK: err == nil, Required: required, Detail: what, Fix: fix}
	if err != nil {
		c.Detail = what + ": " + err.Error()
	}
	return c
}

// capabilityChecks: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load and
// attach, CAP_SYS_PTRACE to read targets' /proc files, CAP_SYS_ADMIN for
// /proc/PID/map_files and BPF run-time statistics.
func capabilityChecks() []Check {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	err := unix.Capget(&hdr, &data[0])
	has := func(c int) bool { return err == nil && data[c/32].Effective&(1<<(c%32)) != 0 }
	admin := has(unix.CAP_SYS_ADMIN)
	return []Check{
		{Name: "cap_bpf", OK: admin || has(unix.CAP_BPF), Required: true, Detail: "CAP_BPF (or CAP_SYS_ADMIN) to load BPF programs", Fix: "run as root or grant CAP_BPF"},
		{Name: "cap_perfmon", OK: admin || has(unix.CAP_PERFMON), Required: true, Detail: "CAP_PERFMON (or CAP_SYS_ADMIN) to attach uprobes and read kernel memory", Fix: "run as root or grant CAP_PERFMON"},
		{Name: "cap_sys_ptrace", OK: has(unix.CAP_SYS_PTRACE), Required: true, Detail: "CAP_SYS_PTRACE to read the targets' /proc files", Fix: "run as root or grant CAP_SYS_PTRACE"},
		{Name: "cap_sys_admin", OK: admin, Required: false, Detail: "CAP_SYS_ADMIN for /proc/PID/map_files (containers, deleted files) and BPF run-time statistics (CPU budget)", Fix: "grant CAP_SYS_ADMIN; without it mtrace opens files by path and budgets its own CPU only"},
	}
}

func lockdownCheck() Check {
	c := Check{Name: "lockdown", OK: true, Required: true, Detail: "no lockdown", Fix: "boot without lockdown=confidentiality: it forbids BPF reading kernel memory"}
	data, err := os.ReadFile("/sys/kernel/security/lockdown")
	if err != nil {
		return c
	}
	c.Detail = "lockdown " + strings.TrimSpace(string(data))
	c.OK = !strings.Contains(string(data), "[confidentiality]")
	return c
}

func paranoidCheck() Check {
	c := Check{Name: "perf_event_paranoid", OK: true, Required: false, Fix: "irrelevant with CAP_PERFMON; else lower kernel.perf_event_paranoid"}
	data, err := os.ReadFile("/proc/sys/kernel/perf_event_paranoid")
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.Detail = "kernel.perf_event_paranoid = " + strings.TrimSpace(string(data))
	return c
}

func cgroup2Check() Check {
	c := Check{Name: "cgroup2", Required: false, Detail: "no cgroup v2 hierarchy", Fix: "mount cgroup2 (systemd does) for --unit/--cgroup filtering in the kernel; v1 cgroups are followed through their members"}
	for _, root := range kernel.CgroupRoots {
		if v2, _ := kernel.CgroupMount(root); v2 {
			c.OK, c.Detail = true, "cgroup v2 at "+root
		}
	}
	return c
}

// programsCheck loads mtrace's BPF programs: the proof that the verifier,
// the helpers and CO-RE relocations all work on this kernel.
func programsCheck() Check {
	c := Check{Name: "programs", Required: true, Detail: "mtrace's BPF programs load", Fix: "see the checks above"}
	if err := rlimit.RemoveMemlock(); err != nil {
		c.Detail = err.Error()
		return c
	}
	spec, err := attach.Spec(kernel.Links())
	if err == nil {
		var coll *ebpf.Collection
		if coll, err = ebpf.NewCollection(spec); err == nil {
			coll.Close()
		}
	}
	if err != nil {
		c.Detail = "load BPF programs: " + strings.SplitN(err.Error(), "\n", 2)[0]
		return c
	}
	c.OK = true
	return c
}

// allocatorCheck lists the allocator objects mtrace would probe in pid.
func allocatorCheck(procRoot string, pid int) Check {
	c := Check{Name: fmt.Sprintf("pid %d", pid), Required: true, Fix: "a process that maps a C library, libstdc++ or another allocator"}
	found, err := attach.Describe(procRoot, pid)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK = len(found) > 0
	c.Detail = "no allocator mapped"
	if c.OK {
		c.Detail = "would probe " + strings.Join(found, ", ")
	}
	return c
}
