package tracer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/mtrace/mtrace/bpf"
)

// eventSize is the size of struct event in bpf/mtrace.h, as bpf2go generated it.
var eventSize = binary.Size(bpf.AllocEvent{})

// decodeEvent fills e from one ring-buffer record without allocating.
// Records come from the kernel but are still checked: a short record is an error.
func decodeEvent(b []byte, e *bpf.AllocEvent) error {
	if len(b) < eventSize {
		return fmt.Errorf("decode event: %d bytes, want %d", len(b), eventSize)
	}
	le := binary.LittleEndian
	e.Stack = le.Uint64(b[0:])
	e.Size = le.Uint64(b[8:])
	e.Ts = le.Uint64(b[16:])
	e.Age = le.Uint64(b[24:])
	e.Pid = le.Uint32(b[32:])
	e.Probe = le.Uint16(b[36:])
	e.Op = b[38]
	e.Flags = b[39]
	e.Weight = le.Uint32(b[40:])
	e.Gen = le.Uint32(b[44:])
	return nil
}

// Layout of struct exec_event after its struct event, from the generated type.
var (
	execNamesOff = int(unsafe.Offsetof(bpf.AllocExecEvent{}.Name))
	pathNames    = len(bpf.AllocExecEvent{}.Name)
	pathNameLen  = len(bpf.AllocExecEvent{}.Name[0])
)

// decodeExecPath returns the executable path an OP_EXEC record carries, or
// "" if the record holds none.
func decodeExecPath(b []byte) string {
	if len(b) < execNamesOff+pathNames*pathNameLen {
		return ""
	}
	n := int(binary.LittleEndian.Uint32(b[eventSize:]))
	if n == 0 || n > pathNames {
		return ""
	}
	var path strings.Builder
	for i := n - 1; i >= 0; i-- {
		name := b[execNamesOff+i*pathNameLen : execNamesOff+(i+1)*pathNameLen]
		if end := bytes.IndexByte(name, 0); end >= 0 {
			name = name[:end]
		}
		path.WriteByte('/')
		path.Write(name)
	}
	return path.String()
}

// eventFile returns the file an OP_EXEC or OP_FILE record names: its inode
// in stack, its device (a kernel dev_t, 32 bits) in size. A device that does
// not fit is a malformed record.
func eventFile(e *bpf.AllocEvent) (bpf.AllocFrame, bool) {
	if e.Size > math.MaxUint32 {
		return bpf.AllocFrame{}, false
	}
	return bpf.AllocFrame{Ino: e.Stack, Dev: uint32(e.Size)}, true
}

// forkParent returns the parent's tgid an OP_FORK record holds in size. A
// value past 32 bits is a malformed record.
func forkParent(e *bpf.AllocEvent) (uint32, bool) {
	if e.Size > math.MaxUint32 {
		return 0, false
	}
	return uint32(e.Size), true
}

// forkExcluded reports whether the kernel excluded an OP_FORK record's child at its fork.
func forkExcluded(e *bpf.AllocEvent) bool {
	return e.Flags&uint8(bpf.AllocEventFlagEVENT_EXCLUDED) != 0
}
