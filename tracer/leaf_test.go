package tracer

import (
	"os"
	"testing"

	"golang.org/x/arch/x86/x86asm"

	"github.com/mtrace/mtrace/symbolize"
)

// TestGlibcLeaves checks, on this machine's C library, what isLeaf assumes:
// no direct call or jump in glibc's malloc or calloc enters another function
// mtrace probes. And libc_malloc_debug, whose malloc wraps glibc's, is not
// taken for glibc.
func TestGlibcLeaves(t *testing.T) {
	mod, f := openModule(t, "/lib/x86_64-linux-gnu/libc.so.6")
	if mod == nil {
		t.Fatal("no /lib/x86_64-linux-gnu/libc.so.6")
	}
	probed := map[uint64]string{}
	for _, fn := range allocFuncs {
		if addr, ok := mod.Address(fn.symbol); ok {
			probed[addr] = fn.symbol
		}
	}
	leaves := 0
	for _, fn := range allocFuncs {
		if !isLeaf(mod, fn.symbol) {
			continue
		}
		leaves++
		start, _ := mod.Address(fn.symbol)
		code, err := mod.Code(f, fn.symbol, maxCode)
		if err != nil {
			t.Fatal(err)
		}
		branches := 0
		for pc := 0; pc < len(code); {
			inst, err := x86asm.Decode(code[pc:], 64)
			if err != nil {
				pc++ // padding or data between blocks
				continue
			}
			pc += inst.Len
			rel, ok := inst.Args[0].(x86asm.Rel)
			if !ok || (inst.Op != x86asm.CALL && inst.Op != x86asm.JMP) {
				continue
			}
			branches++
			target := start + uint64(pc) + uint64(int64(rel))
			if other, ok := probed[target]; ok && target != start {
				t.Errorf("%s branches to %s at %#x: it is not a leaf", fn.symbol, other, target)
			}
		}
		t.Logf("%s: %d bytes, %d direct calls and jumps, none into a probed function", fn.symbol, len(code), branches)
		if branches == 0 {
			t.Errorf("%s: no direct call or jump decoded: the check saw nothing", fn.symbol)
		}
	}
	if leaves != 2 {
		t.Errorf("%d leaf functions in glibc, want malloc and calloc", leaves)
	}
	if debug, _ := openModule(t, "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"); debug != nil && isLeaf(debug, "malloc") {
		t.Error("libc_malloc_debug's malloc, which calls glibc's, taken for a leaf")
	}
}

// openModule opens the ELF file at path for the test; nil if there is none.
func openModule(t *testing.T, path string) (*symbolize.Module, *os.File) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	mod, err := symbolize.OpenModule(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return mod, f
}
