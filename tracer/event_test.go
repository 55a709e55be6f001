package tracer

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mtrace/mtrace/bpf"
)

// encode lays out v, a generated record type, as the kernel writes it.
func encode(t testing.TB, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEventIsSmallAndFixed(t *testing.T) {
	if allocSize != 48 {
		t.Fatalf("struct alloc_event is %d bytes, want 48", allocSize)
	}
	if headerSize != 8 {
		t.Fatalf("struct event_header is %d bytes, want 8", headerSize)
	}
}

// fileEvent is an OP_EXEC record of path names, innermost first.
func fileEvent(names ...string) bpf.AllocFileEvent {
	e := bpf.AllocFileEvent{Hdr: bpf.AllocEventHeader{Op: uint8(bpf.AllocOpOP_EXEC), Tgid: 7},
		Ino: 42, Dev: 1<<20 | 3, Cgroup: 99, Gen: 5, Names: uint32(len(names))}
	for i, name := range names {
		for j := range len(name) {
			e.Name[i][j] = int8(name[j])
		}
	}
	return e
}

func TestDecodeFilePath(t *testing.T) {
	e := fileEvent("allocs", "bin", "usr")
	if got := filePath(&e); got != "/usr/bin/allocs" {
		t.Fatalf("path %q", got)
	}
	e.Names = 99
	if got := filePath(&e); got != "" {
		t.Fatalf("path %q from an out-of-range count", got)
	}
	var r record
	full := encode(t, fileEvent("allocs"))
	if err := decodeRecord(full[:len(full)-1], &r); err == nil {
		t.Fatal("short file record decoded without error")
	}
	if err := decodeRecord(full, &r); err != nil || filePath(&r.File) != "/allocs" {
		t.Fatalf("path %q, %v", filePath(&r.File), err)
	}
}

// TestDecodeRecord checks that each kind of record decodes into its own
// type with every field as the kernel wrote it, and that a record shorter
// than its kind's type, or of an unknown kind, is an error.
func TestDecodeRecord(t *testing.T) {
	hdr := func(op bpf.AllocOp) bpf.AllocEventHeader { return bpf.AllocEventHeader{Op: uint8(op), Tgid: 4242} }
	alloc := bpf.AllocAllocEvent{Hdr: hdr(bpf.AllocOpOP_FREE), Ts: 99, Stack: 0x1122334455667788,
		Size: 4096, Age: 7, Weight: 8, Probe: 0xbeef, Flags: 1}
	file := fileEvent("ls", "bin")
	file.Hdr = hdr(bpf.AllocOpOP_FILE)
	fork := bpf.AllocForkEvent{Hdr: hdr(bpf.AllocOpOP_FORK), Parent: 4141, Flags: uint8(bpf.AllocEventFlagEVENT_EXCLUDED)}
	exit := bpf.AllocExitEvent{Hdr: hdr(bpf.AllocOpOP_EXIT), Gen: 0xfeedface}
	for _, tc := range []struct {
		name string
		rec  any
		got  func(*record) any
	}{
		{"alloc", alloc, func(r *record) any { return r.Alloc }},
		{"file", file, func(r *record) any { return r.File }},
		{"fork", fork, func(r *record) any { return r.Fork }},
		{"exit", exit, func(r *record) any { return r.Exit }},
	} {
		b := encode(t, tc.rec)
		var r record
		if err := decodeRecord(b, &r); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r.Op != b[0] || r.Pid != 4242 || tc.got(&r) != tc.rec {
			t.Errorf("%s: decoded op %d pid %d %+v, want %+v", tc.name, r.Op, r.Pid, tc.got(&r), tc.rec)
		}
		if err := decodeRecord(b[:len(b)-1], &r); err == nil {
			t.Errorf("%s: short record decoded without error", tc.name)
		}
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, append([]byte{0}, make([]byte, 47)...), append([]byte{99}, make([]byte, 1100)...)} {
		var r record
		if err := decodeRecord(b, &r); err == nil {
			t.Errorf("record % x decoded without error", b[:min(len(b), 8)])
		}
	}
}

func TestDecodeEventAllocatesNothing(t *testing.T) {
	rec := encode(t, bpf.AllocAllocEvent{Hdr: bpf.AllocEventHeader{Op: uint8(bpf.AllocOpOP_ALLOC), Tgid: 1}, Probe: 1})
	var r record
	if n := testing.AllocsPerRun(1000, func() { decodeRecord(rec, &r) }); n != 0 {
		t.Fatalf("decodeRecord allocates %v times per allocation", n)
	}
}

// TestEventFields checks the accessors handle reads: a file record's
// identity (its device a whole 32-bit dev_t) and a fork record's flag.
func TestEventFields(t *testing.T) {
	file := fileEvent("allocs")
	if f := eventFile(&file); f.Ino != 42 || f.Dev != 1<<20|3 {
		t.Errorf("eventFile = %+v", f)
	}
	fork := bpf.AllocForkEvent{Parent: 1, Flags: uint8(bpf.AllocEventFlagEVENT_EXCLUDED)}
	if !forkExcluded(&fork) {
		t.Error("forkExcluded = false")
	}
	fork.Flags = uint8(bpf.AllocEventFlagEVENT_UNTRACKED)
	if forkExcluded(&fork) {
		t.Error("forkExcluded = true for another flag")
	}
}
