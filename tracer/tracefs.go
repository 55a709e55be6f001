package tracer

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// tracefsDir is where the kernel's tracing file system belongs; the
// system-call tracepoints are found by name there.
const tracefsDir = "/sys/kernel/tracing"

// mountTracefs mounts tracefs at tracefsDir when neither it nor debugfs's
// copy is mounted, as a host may boot without them; systemd mounts it there
// on most hosts. It reports whether it mounted it; the mount stays, as
// systemd's would, since another tracer may be using it by then.
func mountTracefs() (bool, error) {
	for _, dir := range []string{tracefsDir, "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(dir + "/events"); err == nil {
			return false, nil
		}
	}
	err := unix.Mount("nodev", tracefsDir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	switch {
	case errors.Is(err, unix.EBUSY): // another mtrace mounted it meanwhile
		return false, nil
	case err != nil:
		return false, fmt.Errorf("mount tracefs at %s: %w", tracefsDir, err)
	}
	return true, nil
}
