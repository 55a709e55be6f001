package tracer

import "errors"

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
