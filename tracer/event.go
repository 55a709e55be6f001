package tracer

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/mtrace/mtrace/bpf"
)

// Sizes of the ring-buffer records of bpf/mtrace.h, as bpf2go generated them.
var (
	headerSize = binary.Size(bpf.AllocEventHeader{})
	allocSize  = binary.Size(bpf.AllocAllocEvent{})
)

// Bounds of the path a file record holds, from the generated type.
var (
	pathNames   = len(bpf.AllocFileEvent{}.Name)
	pathNameLen = len(bpf.AllocFileEvent{}.Name[0])
)

// record is one ring-buffer record, decoded by the kind its header names:
// Op and Pid from the header, and the typed record of that kind; the
// records of the other kinds keep what they held.
type record struct {
	Op    uint8               // enum op
	Pid   uint32              // the header's tgid
	Alloc bpf.AllocAllocEvent // OP_ALLOC, OP_FREE
	File  bpf.AllocFileEvent  // OP_EXEC, OP_FILE
	Fork  bpf.AllocForkEvent  // OP_FORK
	Exit  bpf.AllocExitEvent  // OP_EXIT
}

// decodeRecord fills r from one ring-buffer record. Records come from the
// kernel but are still checked: one shorter than its kind's record type, or
// of an unknown kind, is an error. An allocation or free decodes without
// allocating.
func decodeRecord(b []byte, r *record) error {
	if len(b) < headerSize {
		return fmt.Errorf("decode record: %d bytes, want at least a header of %d", len(b), headerSize)
	}
	r.Op, r.Pid = b[0], binary.LittleEndian.Uint32(b[4:])
	switch bpf.AllocOp(r.Op) {
	case bpf.AllocOpOP_ALLOC, bpf.AllocOpOP_FREE:
		return decodeAlloc(b, &r.Alloc)
	case bpf.AllocOpOP_EXEC, bpf.AllocOpOP_FILE:
		return decodeTyped(b, &r.File)
	case bpf.AllocOpOP_FORK:
		return decodeTyped(b, &r.Fork)
	case bpf.AllocOpOP_EXIT:
		return decodeTyped(b, &r.Exit)
	}
	return fmt.Errorf("decode record: unknown operation %d", r.Op)
}

// decodeAlloc fills e from an OP_ALLOC or OP_FREE record, field by field:
// it runs for every allocation, so it neither allocates nor reflects.
func decodeAlloc(b []byte, e *bpf.AllocAllocEvent) error {
	if len(b) < allocSize {
		return fmt.Errorf("decode allocation record: %d bytes, want %d", len(b), allocSize)
	}
	le := binary.LittleEndian
	e.Hdr.Op = b[0]
	e.Hdr.Tgid = le.Uint32(b[4:])
	e.Ts = le.Uint64(b[8:])
	e.Stack = le.Uint64(b[16:])
	e.Size = le.Uint64(b[24:])
	e.Age = le.Uint64(b[32:])
	e.Weight = le.Uint32(b[40:])
	e.Probe = le.Uint16(b[44:])
	e.Flags = b[46]
	return nil
}

// decodeTyped fills v, a generated record type, from a record of the rarer
// kinds (exec, file, fork, exit).
func decodeTyped(b []byte, v any) error {
	if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil {
		return fmt.Errorf("decode record of operation %d (%d bytes): %w", b[0], len(b), err)
	}
	return nil
}

// eventFile returns the file an OP_EXEC or OP_FILE record names.
func eventFile(e *bpf.AllocFileEvent) bpf.AllocFrame {
	return bpf.AllocFrame{Ino: e.Ino, Dev: e.Dev}
}

// filePath returns the path an OP_EXEC or OP_FILE record names, or "" if
// the record holds none.
func filePath(e *bpf.AllocFileEvent) string {
	n := int(e.Names)
	if n == 0 || n > len(e.Name) {
		return ""
	}
	var path strings.Builder
	for i := n - 1; i >= 0; i-- {
		path.WriteByte('/')
		for _, c := range e.Name[i] {
			if c == 0 {
				break
			}
			path.WriteByte(byte(c))
		}
	}
	return path.String()
}

// forkExcluded reports whether the kernel excluded an OP_FORK record's child at its fork.
func forkExcluded(e *bpf.AllocForkEvent) bool {
	return e.Flags&uint8(bpf.AllocEventFlagEVENT_EXCLUDED) != 0
}
