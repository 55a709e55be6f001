package tracer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/bpf"
)

// FuzzDecodeRecord feeds arbitrary ring-buffer records to the decoders: they
// must never panic, and an executable path is made of at most PATH_NAMES
// names of at most PATH_NAME_LEN bytes, without NUL bytes.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(make([]byte, eventSize))
	exec := make([]byte, execNamesOff+pathNames*pathNameLen)
	exec[eventSize] = 2
	copy(exec[execNamesOff:], "ls")
	copy(exec[execNamesOff+pathNameLen:], "bin")
	f.Add(exec)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e bpf.AllocEvent
		if decodeEvent(b, &e) != nil && len(b) >= eventSize {
			t.Errorf("a record of %d bytes did not decode", len(b))
		}
		path := decodeExecPath(b)
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
