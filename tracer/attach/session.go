package attach

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// attachUprobeSession is BPF_TRACE_UPROBE_SESSION (Linux 6.13): a program
// that runs at a function's entry and, unless the entry returns 1, at its return.
const attachUprobeSession = ebpf.AttachType(57)

// uprobeMultiAttr is the kernel's bpf_attr for BPF_LINK_CREATE of a
// uprobe_multi link (include/uapi/linux/bpf.h). cilium/ebpf v0.22 creates
// these links, but not with the session attach type.
type uprobeMultiAttr struct {
	progFD     uint32
	targetFD   uint32
	attachType uint32
	flags      uint32
	path       unsafe.Pointer
	offsets    unsafe.Pointer
	refCtrs    unsafe.Pointer
	cookies    unsafe.Pointer
	count      uint32
	multiFlags uint32
	pid        uint32
	_          uint32
}

// attachSession attaches prog, a session program, at every site of set in
// the file at path, in every process or only in pid, with one link.
func attachSession(path string, set probeSet, prog *ebpf.Program, pid int) (link.Link, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return nil, fmt.Errorf("uprobe session on %s: %w", path, err)
	}
	attr := uprobeMultiAttr{
		progFD:     uint32(prog.FD()),
		attachType: uint32(attachUprobeSession),
		path:       unsafe.Pointer(p),
		offsets:    unsafe.Pointer(&set.addrs[0]),
		cookies:    unsafe.Pointer(&set.cookies[0]),
		count:      uint32(len(set.addrs)),
		pid:        uint32(pid),
	}
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_LINK_CREATE, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(&attr)
	if errno != 0 {
		return nil, fmt.Errorf("create a uprobe session link: %w", errno)
	}
	l, err := link.NewFromFD(int(fd)) // closes fd if it fails
	if err != nil {
		return nil, fmt.Errorf("wrap the uprobe session link: %w", err)
	}
	return l, nil
}

// emptyProgram returns a program that returns 0 at once, loadable as a
// uprobe (uprobe_multi with multi).
func emptyProgram(name string, multi bool) *ebpf.ProgramSpec {
	spec := &ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.Kprobe,
		License:      "Dual BSD/GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	}
	if multi {
		spec.AttachType = ebpf.AttachTraceUprobeMulti
	}
	return spec
}
