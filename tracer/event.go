package tracer

import (
	"encoding/binary"
	"fmt"

	"github.com/mtrace/mtrace/bpf"
)

// eventSize is the size of struct event in bpf/mtrace.h.
const eventSize = 40

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
	e.Op = b[36]
	e.Fn = b[37]
	e.Flags = le.Uint16(b[38:])
	return nil
}

// fnNames names the allocation functions of enum fn.
var fnNames = map[uint8]string{
	uint8(bpf.AllocFnFN_MALLOC):  "malloc",
	uint8(bpf.AllocFnFN_CALLOC):  "calloc",
	uint8(bpf.AllocFnFN_REALLOC): "realloc",
	uint8(bpf.AllocFnFN_FREE):    "free",
}
