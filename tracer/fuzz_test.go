package tracer

import (
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
