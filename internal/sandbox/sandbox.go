package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/internal/hostcheck"
	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/internal/workload"
	"github.com/mtrace/mtrace/tracer/attach"
)

// CheckName names the check of Check in mtrace check and in
// MTRACE_PRETEND_MISSING.
const CheckName = "sandboxes"

// Check says whether return probes leave processes under seccomp alive here.
func Check(ctx context.Context) hostcheck.Check {
	c := hostcheck.Check{Name: CheckName, OK: true, Detail: "return probes leave processes under seccomp alive"}
	if err := try(ctx); err != nil {
		c.OK, c.Detail = false, err.Error()
		c.Fix = "a kernel whose seccomp lets the uretprobe system call pass; until then mtrace leaves processes under seccomp alone"
	}
	return c
}

// Risk is the tracer's Config.SandboxRisk: the try of Check where the
// kernel's version does not say seccomp lets return probes pass (it does
// from Linux 6.14), so that tracing does not wait for the try there; mtrace
// check tries on every kernel.
func Risk(ctx context.Context) error {
	if seccompPassesReturns() && !kernel.Pretended(CheckName) {
		return nil
	}
	return try(ctx)
}

// try runs the built-in workload under a seccomp filter
// that kills it at the uretprobe system call, with an empty return probe on
// the malloc it calls, where return probes may make that call: nil if it
// survives a return through the probe, or where they cannot.
func try(ctx context.Context) error {
	if kernel.Pretended(CheckName) {
		return errors.New("a return probe would kill a process under seccomp here (pretended)")
	}
	if !returnsMakeSyscalls() {
		return nil
	}
	cannot := func(err error) error {
		return fmt.Errorf("cannot try whether return probes kill processes under seccomp: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return cannot(err)
	}
	var probe *attach.EmptyProbes
	// The kernel takes a grace period (~100 ms) to remove a probe; nothing waits for it.
	defer func() { go probe.Close() }()
	_, err = workload.Run(ctx, []string{self, "bench-workload", "--deny-uretprobe-syscall", "1"}, func(pid int) (err error) {
		probe, err = attach.EmptyReturn("/proc", pid, "malloc")
		return err
	})
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS {
			return errors.New("a return probe killed a process whose seccomp filter denies the uretprobe system call")
		}
	}
	if err != nil {
		return cannot(err)
	}
	fired, err := probe.Fired()
	if err != nil {
		return cannot(err)
	}
	if !fired {
		return cannot(errors.New("the workload's malloc never returned through the probe"))
	}
	return nil
}

// sysUretprobe is the uretprobe system call on x86-64.
const sysUretprobe = 335

// returnsMakeSyscalls reports whether this kernel's return probes may make a
// system call that seccomp sees: on x86-64 from Linux 6.11, or if the
// version cannot be read.
func returnsMakeSyscalls() bool {
	at, known := kernel.AtLeast(6, 11)
	return runtime.GOARCH == "amd64" && (at || !known)
}

// seccompPassesReturns reports whether this kernel's seccomp lets the
// uretprobe system call pass whatever the filter says: from Linux 6.14
// (earlier kernels may have it backported, which a try tells).
func seccompPassesReturns() bool {
	at, known := kernel.AtLeast(6, 14)
	return at && known
}

// DenyUretprobeSyscall puts this process under a seccomp filter that kills
// it when it makes the uretprobe system call, as allowlists made before
// that call existed do.
func DenyUretprobeSyscall() error {
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 3, K: unix.AUDIT_ARCH_X86_64},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jf: 1, K: sysUretprobe},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_KILL_PROCESS},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	// no_new_privs is per thread, and seccomp wants it on the thread that calls it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("install a seccomp filter: %w", errno)
	}
	return nil
}
