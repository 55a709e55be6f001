package tracer

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mtrace/mtrace/bpf"
)

func encode(t testing.TB, e bpf.AllocEvent) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, e); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEventIsSmallAndFixed(t *testing.T) {
	if eventSize != 48 {
		t.Fatalf("struct event is %d bytes, want 48", eventSize)
	}
}

func TestDecodeExecPath(t *testing.T) {
	rec := make([]byte, execNamesOff+pathNames*pathNameLen)
	binary.LittleEndian.PutUint32(rec[eventSize:], 3)
	for i, name := range []string{"allocs", "bin", "usr"} { // innermost first
		copy(rec[execNamesOff+i*pathNameLen:], name)
	}
	if got := decodeExecPath(rec); got != "/usr/bin/allocs" {
		t.Fatalf("path %q", got)
	}
	binary.LittleEndian.PutUint32(rec[eventSize:], 99)
	if got := decodeExecPath(rec); got != "" {
		t.Fatalf("path %q from an out-of-range count", got)
	}
	if got := decodeExecPath(rec[:eventSize]); got != "" {
		t.Fatalf("path %q from a short record", got)
	}
}

func TestDecodeEvent(t *testing.T) {
	want := bpf.AllocEvent{Stack: 0x1122334455667788, Size: 4096, Ts: 99, Age: 7, Pid: 4242,
		Probe: 0xbeef, Op: uint8(bpf.AllocOpOP_FREE), Flags: 1, Weight: 8}
	var got bpf.AllocEvent
	if err := decodeEvent(encode(t, want), &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if err := decodeEvent(make([]byte, eventSize-1), &got); err == nil {
		t.Fatal("short record decoded without error")
	}
}

func TestDecodeEventAllocatesNothing(t *testing.T) {
	rec := encode(t, bpf.AllocEvent{Pid: 1, Op: 1, Probe: 1})
	var e bpf.AllocEvent
	if n := testing.AllocsPerRun(1000, func() { decodeEvent(rec, &e) }); n != 0 {
		t.Fatalf("decodeEvent allocates %v times per event", n)
	}
}

// TestEventFieldsNarrowed checks that a value too wide for the field it
// narrows to is refused, not truncated.
func TestEventFieldsNarrowed(t *testing.T) {
	e := bpf.AllocEvent{Stack: 42, Size: 1<<20 | 3, Flags: uint8(bpf.AllocEventFlagEVENT_EXCLUDED)}
	if f, ok := eventFile(&e); !ok || f.Ino != 42 || f.Dev != 1<<20|3 {
		t.Errorf("eventFile = %+v, %v", f, ok)
	}
	if p, ok := forkParent(&e); !ok || p != 1<<20|3 {
		t.Errorf("forkParent = %d, %v", p, ok)
	}
	if !forkExcluded(&e) {
		t.Error("forkExcluded = false")
	}
	e.Size = 1 << 32
	if _, ok := eventFile(&e); ok {
		t.Error("eventFile took a device past 32 bits")
	}
	if _, ok := forkParent(&e); ok {
		t.Error("forkParent took a tgid past 32 bits")
	}
}
