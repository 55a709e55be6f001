package symbolize

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleOfEachFile reads a library and a forged copy of it, which keeps
// its build-id and adds malloc pointing into the middle of compute: each
// file has its own symbols, the copy's malloc has no code of its own, and a
// file rewritten in place is read again.
func TestModuleOfEachFile(t *testing.T) {
	dir := t.TempDir()
	lib, forged := filepath.Join(dir, "libcompute.so"), filepath.Join(dir, "forged.so")
	for _, args := range [][]string{
		{"gcc", "-shared", "-fPIC", "-nostartfiles", "-Wl,--build-id", "-o", lib, "../testdata/compute.c"},
		{"objcopy", "--add-symbol", "malloc=.text:0x1,function,global", "--add-symbol", "free=.text:0x6,function,global", lib, forged},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Skipf("%s: %v\n%s", args[0], err, out)
		}
	}
	s, err := New("/proc")
	if err != nil {
		t.Fatal(err)
	}
	open := func(path string) *Module {
		f, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		mod, _, err := s.Open(f, path)
		if err != nil {
			t.Fatal(err)
		}
		return mod
	}
	fake, real := open(forged), open(lib)
	if fake.BuildID == "" || fake.BuildID != real.BuildID {
		t.Fatalf("build-ids %q and %q, want one", fake.BuildID, real.BuildID)
	}
	if real.Defines("malloc") || !fake.Defines("malloc") {
		t.Errorf("malloc defined by the library %v, by its forged copy %v: want false, true", real.Defines("malloc"), fake.Defines("malloc"))
	}
	f, err := os.Open(forged)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Without start files, .text starts at compute: malloc, at 0x1, lies within it.
	if _, err := fake.Code(f, "malloc", 64); err == nil || !strings.Contains(err.Error(), "inside") {
		t.Errorf("code of a malloc inside compute: %v, want an error", err)
	}
	if _, err := real.Code(f, "compute", 64); err != nil {
		t.Errorf("code of compute: %v", err)
	}

	// Rewritten in place, same inode: read again.
	data, err := os.ReadFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lib, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if again := open(lib); again == real || !again.Defines("malloc") {
		t.Errorf("the library rewritten in place kept its old symbols")
	}
}

func TestFramePointerPrologue(t *testing.T) {
	for _, tc := range []struct {
		code []byte
		want bool
	}{
		{[]byte{0x55, 0x48, 0x89, 0xe5, 0x90}, true},                    // push %rbp; mov %rsp,%rbp
		{[]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5}, true},  // endbr64 first
		{[]byte{0x55, 0x48, 0x8b, 0xec, 0x90}, true},                    // the other encoding of the mov
		{[]byte{0x55, 0x53, 0x48, 0x83, 0xec, 0x08}, false},             // push %rbp as a callee-saved register
		{[]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x08}, false}, // sub $8,%rsp
		{[]byte{0x55, 0x48}, false},                                     // too short
	} {
		if got := framePointerPrologue(tc.code); got != tc.want {
			t.Errorf("% x: %v, want %v", tc.code, got, tc.want)
		}
	}
}
