package tracer

import (
	"errors"
	"runtime"

	"github.com/mtrace/mtrace/internal/kernel"
)

// Where the kernel's return probe makes a system call (the uretprobe system
// call, x86-64, Linux 6.11 on) and seccomp filters it, a return probe kills
// a process whose filter denies that call, as allowlists made before it
// do. mtrace tries whether this kernel does before it traces (the
// "sandboxes" check, Config.SandboxRisk); if it does, the tracer leaves
// such processes alone.
var (
	errSandboxed       = errors.New("it runs under seccomp, and on this kernel a return probe makes a process call a system call (uretprobe) its seccomp filter may deny, which would kill it (see mtrace check)")
	errSandboxesAtRisk = errors.New("on this kernel a return probe makes a process call a system call (uretprobe) its seccomp filter may deny, which kills it, and without uprobe sessions (Linux 6.13) mtrace cannot keep its return probes out of such processes: not tracing (see mtrace check)")
)

// ReturnsMakeSyscalls reports whether this kernel's return probes may make a
// system call that seccomp sees: on x86-64 from Linux 6.11, or if the
// version cannot be read.
func ReturnsMakeSyscalls() bool {
	at, known := kernel.AtLeast(6, 11)
	return runtime.GOARCH == "amd64" && (at || !known)
}

// SeccompPassesReturns reports whether this kernel's seccomp lets the
// uretprobe system call pass whatever the filter says: from Linux 6.14
// (earlier kernels may have it backported, which a try tells).
func SeccompPassesReturns() bool {
	at, known := kernel.AtLeast(6, 14)
	return at && known
}

// Pretended reports whether MTRACE_PRETEND_MISSING names the check name.
func Pretended(name string) bool {
	return kernel.Pretended(name)
}
