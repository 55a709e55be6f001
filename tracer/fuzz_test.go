package tracer

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/bpf"
)

// FuzzDecodeRecord feeds arbitrary ring-buffer records to the decoder: it
// must never panic, a record shorter than its kind's type or of an unknown
// kind is an error, what decodes keeps the header's op and pid, and a file
// record's path is made of at most PATH_NAMES names of at most
// PATH_NAME_LEN bytes, without NUL bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encode(f, bpf.AllocAllocEvent{Hdr: bpf.AllocEventHeader{Op: uint8(bpf.AllocOpOP_ALLOC), Tgid: 1}, Size: 8}))
	file := bpf.AllocFileEvent{Hdr: bpf.AllocEventHeader{Op: uint8(bpf.AllocOpOP_EXEC), Tgid: 1}, Names: 2}
	copy(file.Name[0][:], []int8{'l', 's'})
	copy(file.Name[1][:], []int8{'b', 'i', 'n'})
	f.Add(encode(f, file))
	f.Add(encode(f, bpf.AllocForkEvent{Hdr: bpf.AllocEventHeader{Op: uint8(bpf.AllocOpOP_FORK), Tgid: 2}, Parent: 1}))
	f.Add(encode(f, bpf.AllocExitEvent{Hdr: bpf.AllocEventHeader{Op: uint8(bpf.AllocOpOP_EXIT), Tgid: 2}}))
	f.Add([]byte{1, 2, 3})
	sizes := map[bpf.AllocOp]int{
		bpf.AllocOpOP_ALLOC: allocSize,
		bpf.AllocOpOP_FREE:  allocSize,
		bpf.AllocOpOP_EXEC:  binary.Size(bpf.AllocFileEvent{}),
		bpf.AllocOpOP_FILE:  binary.Size(bpf.AllocFileEvent{}),
		bpf.AllocOpOP_FORK:  binary.Size(bpf.AllocForkEvent{}),
		bpf.AllocOpOP_EXIT:  binary.Size(bpf.AllocExitEvent{}),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r record
		err := decodeRecord(b, &r)
		if len(b) == 0 {
			if err == nil {
				t.Error("an empty record decoded")
			}
			return
		}
		want, known := sizes[bpf.AllocOp(b[0])]
		if (err == nil) != (known && len(b) >= want) {
			t.Errorf("a record of op %d and %d bytes (its type %d): error %v", b[0], len(b), want, err)
		}
		if err != nil {
			return
		}
		if r.Op != b[0] || r.Pid != binary.LittleEndian.Uint32(b[4:]) {
			t.Errorf("header op %d pid %d from % x", r.Op, r.Pid, b[:8])
		}
		path := filePath(&r.File)
		if strings.ContainsRune(path, 0) {
			t.Errorf("path %q holds a NUL byte", path)
		}
		if len(path) > pathNames*(pathNameLen+1) || strings.Count(path, "/") > pathNames*(pathNameLen+1) {
			t.Errorf("path of %d bytes from a record of %d", len(path), len(b))
		}
	})
}

// FuzzProcFiles feeds arbitrary contents of a process's cmdline, stat, cgroup
// and status files (a process controls its own title, and may be anything) to
// their readers: they must never panic, argv[0] holds no NUL and is at most
// maxArgv0 bytes, the cgroup is one line, and the uid is -1 or a number.
func FuzzProcFiles(f *testing.F) {
	f.Add([]byte("/usr/bin/python3\x00-c\x00print(1)\x00"))
	f.Add([]byte("0::/system.slice/nginx.service\n1:name=systemd:/user.slice\n"))
	f.Add([]byte("Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if argv0 := readArgv0(path, path); strings.ContainsRune(argv0, 0) || len(argv0) > maxArgv0 {
			t.Errorf("argv0 %q", argv0)
		}
		if cg := readCgroup(path); strings.ContainsRune(cg, '\n') {
			t.Errorf("cgroup %q", cg)
		}
		if n := readArgRegion(path); n < 0 || n > 1<<30 {
			t.Errorf("argv region %d", n)
		}
		uids, _ := readStatus(path)
		for _, uid := range uids {
			if uid < -1 {
				t.Errorf("uids %v", uids)
			}
		}
	})
}
