package tracer

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// pidfdOpen opens a pidfd for pid, which stays valid however the pid is reused.
func pidfdOpen(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, fmt.Errorf("trace pid %d: no such process: %w", pid, err)
	}
	if err != nil {
		return -1, fmt.Errorf("trace pid %d: %w", pid, err)
	}
	return fd, nil
}

func closeFD(fd int) { unix.Close(fd) }

// watch waits until the process behind pidfd exits or the tracer closes.
func (t *Tracer) watch(pidfd int) {
	defer t.exited.Done()
	defer closeFD(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 200)
		if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
			return
		}
		select {
		case <-t.stop:
			return
		default:
		}
	}
}
