package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/tracer/attach"
)

// maxStartupStops bounds the system calls a command may make before its
// allocator is mapped; a dynamic loader needs a few dozen.
const maxStartupStops = 20000

// startupTimeout bounds the time a command may take to map its C library: a
// program that blocks in a system call before that is killed, not waited for.
const startupTimeout = 30 * time.Second

// spawn starts cmd traced from its first allocation. The child stops at its
// exec under ptrace, is registered, and is stepped from system call to
// system call until the C library is mapped (the dynamic loader maps
// preloaded allocators and the program's libraries before it); the probes
// are attached before any code of those objects runs, then the child is let go.
func (t *Tracer) spawn(ctx context.Context, argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	self := identify(t.cfg.ProcRoot, uint32(os.Getpid()))
	uid, gid := os.Getuid(), os.Getgid()
	if t.cfg.User != nil {
		uid, gid = int(t.cfg.User.Uid), int(t.cfg.User.Gid)
	}
	if err := t.cfg.Policy.Check(policy.Target{Exe: path, UIDs: policy.OneUID(uid), Cgroup: self.cgroup}); err != nil {
		return fmt.Errorf("refuse to start %s: %w", argv[0], err)
	}
	// Only a command asked to run as root keeps root's privileges.
	privileged := t.cfg.User != nil && uid == 0
	t.log.Info("starting the command", "command", argv[0], "uid", uid, "gid", gid, "capabilities", privileged)
	type started struct {
		cmd *exec.Cmd
		err error
	}
	done := make(chan started, 1)
	go func() {
		// Every ptrace request must come from the thread that started the
		// child. The thread stays locked: the runtime ends it with this
		// goroutine, so what unprivileged changes in it goes with it.
		runtime.LockOSThread()
		if !privileged {
			if err := unprivileged(); err != nil {
				done <- started{err: fmt.Errorf("start %s: %w", argv[0], err)}
				return
			}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = t.cfg.Stdin, t.cfg.Stdout, t.cfg.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Credential: t.cfg.User}
		if err := cmd.Start(); err != nil {
			switch {
			case errors.Is(err, unix.EACCES):
				err = fmt.Errorf("%w (it runs as uid %d, who may not execute it; --user USER runs it as another user)", err, uid)
			case errors.Is(err, unix.EPERM) && !privileged:
				err = fmt.Errorf("%w (a program that needs file capabilities gets none from mtrace; --user root runs it with root's privileges)", err)
			}
			done <- started{err: fmt.Errorf("start %s: %w", argv[0], err)}
			return
		}
		if err := t.startup(ctx, cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			done <- started{err: fmt.Errorf("trace %s: %w", argv[0], err)}
			return
		}
		done <- started{cmd: cmd}
	}()
	s := <-done
	if s.err != nil {
		return s.err
	}
	t.cmd = s.cmd
	t.cmdDone = make(chan struct{})
	t.exited.Add(1)
	go func() {
		defer t.exited.Done()
		defer close(t.cmdDone)
		err := t.cmd.Wait()
		t.log.Info("command exited", "pid", t.cmd.Process.Pid, "status", t.cmd.ProcessState.String(), "err", err)
	}()
	return nil
}

// unprivileged makes the commands the calling thread starts get none of
// mtrace's privileges, whatever user they run as: exec grants them no
// capability, neither root's nor a file's nor an ambient or inheritable one
// (the bounding, ambient and inheritable sets are emptied, when mtrace may),
// and no set-user-ID bit works (no_new_privs). The thread's own capabilities
// stay: it still ptraces the child. Only a command run as root by request
// keeps root's privileges.
func unprivileged() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient capabilities for the command: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear the inheritable capabilities for the command: %w", err)
	}
	if data[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		for c := cap.Value(0); c < cap.MaxBits(); c++ {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("empty the capability bounding set for the command: %w", err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs for the command: %w", err)
	}
	return nil
}

// startup runs the traced child from its exec stop until its allocator is
// mapped, attaches to it and detaches ptrace.
func (t *Tracer) startup(ctx context.Context, pid int) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			unix.Kill(pid, unix.SIGKILL)
		case <-time.After(startupTimeout):
			t.log.Warn("command did not map its C library in time", "pid", pid, "timeout", startupTimeout)
			unix.Kill(pid, unix.SIGKILL)
		}
	}()
	if err := waitStop(pid); err != nil {
		return fmt.Errorf("start pid %d: %w", pid, err)
	}
	opts := unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_EXITKILL | unix.PTRACE_O_TRACEEXEC
	if err := unix.PtraceSetOptions(pid, opts); err != nil {
		return fmt.Errorf("ptrace pid %d: %w", pid, err)
	}
	if err := t.addTarget(pid); err != nil {
		return err
	}
	for stops := 0; ; stops++ {
		d, err := t.attach.Process(pid)
		if err == nil && (d.Libc || d.Static || stops == maxStartupStops) {
			p := identify(t.cfg.ProcRoot, uint32(pid))
			t.startImage(p)
			t.log.Info("tracing", "pid", pid, "exe", p.exe)
			if err := unix.PtraceDetach(pid); err != nil {
				return fmt.Errorf("detach pid %d: %w", pid, err)
			}
			return nil
		}
		if err != nil && !errors.Is(err, attach.ErrNoAllocator) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if stops == maxStartupStops {
			return fmt.Errorf("pid %d: %w after %d system calls", pid, attach.ErrNoAllocator, stops)
		}
		if err := stepSyscall(pid); err != nil {
			return err
		}
	}
}

// stepSyscall resumes a ptrace-stopped child until its next system-call stop,
// passing on any signal it receives meanwhile.
func stepSyscall(pid int) error {
	sig := 0
	for {
		if err := unix.PtraceSyscall(pid, sig); err != nil {
			return fmt.Errorf("ptrace pid %d: %w", pid, err)
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
			return fmt.Errorf("wait for pid %d: %w", pid, err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			return fmt.Errorf("pid %d ended before its allocator was mapped (%s)", pid, describe(ws))
		case ws.Stopped() && ws.StopSignal() == unix.SIGTRAP|0x80:
			return nil
		case ws.Stopped() && ws.StopSignal() == unix.SIGTRAP && ws.TrapCause() == unix.PTRACE_EVENT_EXEC:
			return nil // exec'd again: look at the new image's mappings
		case ws.Stopped():
			sig = int(ws.StopSignal())
		}
	}
}

// waitStop waits for the child's first stop, at its exec.
func waitStop(pid int) error {
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	if !ws.Stopped() {
		return fmt.Errorf("did not stop at exec (%s)", describe(ws))
	}
	return nil
}

func describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %s", ws.Signal())
	case ws.Stopped():
		return fmt.Sprintf("stopped by %s", ws.StopSignal())
	}
	return "unknown state"
}

// endCommand stops a started command that is still running when tracing
// ends: SIGTERM, then SIGKILL if it has not exited within a grace period.
func (t *Tracer) endCommand() error {
	p := t.cmd.Process
	select {
	case <-t.cmdDone:
		return nil
	default:
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return nil // exited meanwhile
	}
	select {
	case <-t.cmdDone:
	case <-time.After(5 * time.Second):
		if err := p.Kill(); err != nil {
			return fmt.Errorf("kill pid %d: %w", p.Pid, err)
		}
		<-t.cmdDone
	}
	return nil
}
