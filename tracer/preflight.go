package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

var (
	// ErrNotPermitted means mtrace lacks a capability it needs.
	ErrNotPermitted = errors.New("not permitted")
	// ErrUnsupportedKernel means the running kernel lacks a feature mtrace needs.
	ErrUnsupportedKernel = errors.New("unsupported kernel")
)

// capabilities mtrace needs: CAP_BPF and CAP_PERFMON to load and attach,
// or CAP_SYS_ADMIN which implies both; CAP_SYS_PTRACE to read targets' /proc files.
var capNames = map[int]string{
	unix.CAP_SYS_ADMIN:  "CAP_SYS_ADMIN",
	unix.CAP_BPF:        "CAP_BPF",
	unix.CAP_PERFMON:    "CAP_PERFMON",
	unix.CAP_SYS_PTRACE: "CAP_SYS_PTRACE",
}

// Preflight checks that this process and kernel can trace.
func Preflight() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	if !has(unix.CAP_SYS_ADMIN) {
		for _, c := range []int{unix.CAP_BPF, unix.CAP_PERFMON} {
			if !has(c) {
				missing = append(missing, capNames[c])
			}
		}
	}
	if !has(unix.CAP_SYS_PTRACE) {
		missing = append(missing, capNames[unix.CAP_SYS_PTRACE])
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s (run as root or grant them)", ErrNotPermitted, strings.Join(missing, ", "))
	}
	if _, err := os.Stat("/sys/bus/event_source/devices/uprobe"); err != nil {
		return fmt.Errorf("%w: no uprobe support (needs CONFIG_UPROBE_EVENTS)", ErrUnsupportedKernel)
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("%w: no kernel BTF at /sys/kernel/btf/vmlinux (needs CONFIG_DEBUG_INFO_BTF)", ErrUnsupportedKernel)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return fmt.Errorf("%w: no BPF ring buffer (needs Linux 5.8): %w", ErrUnsupportedKernel, err)
	}
	return nil
}
