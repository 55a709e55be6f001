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
	e.Probe = le.Uint16(b[36:])
	e.Op = b[38]
	e.Flags = b[39]
	return nil
}
