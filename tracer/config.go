package tracer

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/symbolize"
)

// Config says what to trace and within which limits.
type Config struct {
	// Pids are running processes to trace.
	Pids []int
	// Command is started and traced from its first allocation; empty for none.
	Command []string
	// Cgroups are cgroup directories whose processes, now and later, are traced.
	Cgroups []string
	// All traces every process on the host.
	All bool
	// FollowForks also traces the children of traced processes.
	FollowForks bool
	// Mmap also counts anonymous mmap/munmap, as a separate kind of allocation.
	Mmap bool
	// SampleBytes, if not 0, samples allocations by bytes: one of S bytes is
	// kept with chance 1 - e^(-S/SampleBytes) and weighted by its inverse.
	SampleBytes uint64
	// TopStacks has Metrics name the busiest stacks too, for a live view;
	// they are symbolized at each snapshot, every second.
	TopStacks bool
	// Leaks reports, at the end, the allocations still live and older than LeakAge.
	Leaks   bool
	LeakAge time.Duration
	// SandboxRisk, if set, tries whether a return probe kills a process
	// under seccomp here (cmd/mtrace tries it): nil if it does not. If it
	// does, or it cannot tell, processes under seccomp are left alone, and
	// without uprobe sessions nothing is traced.
	SandboxRisk func(context.Context) error
	// User is who Command runs as; nil: mtrace's own user. Only a User of
	// uid 0 keeps root's capabilities; any other command gets none, and
	// no_new_privs.
	User *syscall.Credential
	// Stdin, Stdout and Stderr are given to Command.
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Policy is the effective policy: the limits of the run and which
	// processes may be traced; nil means policy.Default() as it is.
	Policy     *policy.Effective
	Symbolizer *symbolize.Symbolizer
	Logger     *slog.Logger
	// ProcRoot is where /proc is mounted; tests may point it elsewhere.
	ProcRoot string
}

// MaxSampleBytes is the largest mean distance between sampled bytes.
const MaxSampleBytes = 1 << 28

// waitsForTargets reports whether the run ends by itself when its pids and
// command have exited; cgroups and the whole host are traced until stopped.
func (c *Config) waitsForTargets() bool {
	return !c.All && len(c.Cgroups) == 0
}
