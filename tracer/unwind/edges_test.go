package unwind

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-delve/delve/pkg/dwarf/frame"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// sectionRows returns the rows that cover the file offsets of a section of
// path, and the section's file offset and size; ok is false if it has none.
func sectionRows(t *testing.T, path, name string) (tab *Table, off, size uint32, ok bool) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	s := ef.Section(name)
	if s == nil {
		return nil, 0, 0, false
	}
	return build(t, path), uint32(s.Offset), uint32(s.Size), true
}

// TestPLT checks that every PLT entry after the first (PLT0) has the PLT
// rule, in libc and in programs built with the lazy and the IBT PLT, and
// that .plt.sec entries unwind as a jump (CFA = rsp+8).
func TestPLT(t *testing.T) {
	files := []struct {
		path string
		lit  int32
	}{
		{"/lib/x86_64-linux-gnu/libc.so.6", 11},
		{tracertest.BuildC(t, "allocs.c", "-fomit-frame-pointer"), 11},
		{tracertest.BuildC(t, "leak.c", "-fomit-frame-pointer", "-fcf-protection=full", "-Wl,-z,ibtplt"), 9},
	}
	for _, f := range files {
		tab, off, size, ok := sectionRows(t, f.path, ".plt")
		if !ok || size < 32 {
			t.Fatalf("%s: no .plt", f.path)
		}
		if got := lookup(tab.Rows, off); got.CFA != RuleRSP || got.CFAOffset != 16 {
			t.Errorf("%s: PLT0 at %#x: %+v", f.path, off, got)
		}
		for entry := off + 16; entry < off+size; entry += 16 {
			for _, at := range []uint32{entry, entry + 15} {
				if got := lookup(tab.Rows, at); got.CFA != RulePLT || got.CFAOffset != f.lit {
					t.Fatalf("%s: PLT entry at %#x: %+v, want the PLT rule with %d", f.path, at, got, f.lit)
				}
			}
		}
		if tab, off, size, ok := sectionRows(t, f.path, ".plt.sec"); ok {
			for at := off; at < off+size; at += 8 {
				if got := lookup(tab.Rows, at); got.CFA != RuleRSP || got.CFAOffset != 8 {
					t.Fatalf("%s: .plt.sec at %#x: %+v", f.path, at, got)
				}
			}
		} else if f.lit == 9 {
			t.Errorf("%s: no .plt.sec", f.path)
		}
	}
}

// TestSignalTrampoline finds glibc's __restore_rt by its code (mov $15,
// %rax; syscall: rt_sigreturn) and checks that its row, and that of the
// byte before it (where a return address minus one points), is the signal rule.
func TestSignalTrampoline(t *testing.T) {
	const libc = "/lib/x86_64-linux-gnu/libc.so.6"
	data, err := os.ReadFile(libc)
	if err != nil {
		t.Skipf("needs %s: %v", libc, err)
	}
	tab := build(t, libc)
	at := bytes.Index(data, []byte{0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05})
	if at <= 0 {
		t.Fatal("no rt_sigreturn trampoline in libc")
	}
	for _, off := range []uint32{uint32(at) - 1, uint32(at), uint32(at) + 8} {
		if got := lookup(tab.Rows, off); got.CFA != RuleSignal {
			t.Errorf("__restore_rt at %#x: %+v, want the signal rule", off, got)
		}
	}
}

// TestLimits checks that a table over a limit is an error naming the limit.
func TestLimits(t *testing.T) {
	const libc = "/lib/x86_64-linux-gnu/libc.so.6"
	f, err := os.Open(libc)
	if err != nil {
		t.Skipf("needs %s: %v", libc, err)
	}
	defer f.Close()
	for _, c := range []struct {
		l    Limits
		name string
	}{{Limits{MaxRows: 1000}, "MaxRows"}, {Limits{MaxSectionBytes: 4096}, "MaxSectionBytes"}} {
		if tab, err := Build(f, c.l); !errors.Is(err, ErrOverLimit) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("limits %+v: table %v, error %v", c.l, tab != nil, err)
		}
	}
}

// TestFileOver4GiB checks that a file whose code lies past 4 GiB, where
// rows' 32-bit offsets cannot reach, is refused.
func TestFileOver4GiB(t *testing.T) {
	var b bytes.Buffer
	hdr := elf.Header64{
		Ident:     [elf.EI_NIDENT]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_DYN),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     64,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     1,
	}
	prog := elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Off: 5 << 30, Vaddr: 5 << 30, Filesz: 0x1000, Memsz: 0x1000}
	binary.Write(&b, binary.LittleEndian, hdr)
	binary.Write(&b, binary.LittleEndian, prog)
	if tab, err := Build(bytes.NewReader(b.Bytes()), Limits{}); err == nil || !strings.Contains(err.Error(), "4 GiB") {
		t.Errorf("table %v, error %v", tab != nil, err)
	}
}

// TestNoCFI checks that a file without call-frame information says so.
func TestNoCFI(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nocfi")
	if out, err := exec.Command("gcc", "-O2", "-static", "-nostdlib", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-o", bin, "../../testdata/noalloc.c").CombinedOutput(); err != nil {
		t.Skipf("build: %v %s", err, out)
	}
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if tab, err := Build(f, Limits{}); !errors.Is(err, ErrNoCFI) {
		t.Errorf("table %v, error %v", tab != nil, err)
	}
}

// debugFrame assembles a .debug_frame section: one CIE (code alignment 1,
// data alignment -8, ra 16, CFA = rsp+8, ra at CFA-8), then one FDE per
// element of fdes, covering [0x1000, 0x1100) with those instructions.
func debugFrame(cieExtra []byte, fdes ...[]byte) []byte {
	var b bytes.Buffer
	entry := func(id uint32, body []byte) {
		for (len(body)+4)%8 != 0 {
			body = append(body, 0) // DW_CFA_nop
		}
		binary.Write(&b, binary.LittleEndian, uint32(len(body)+4))
		binary.Write(&b, binary.LittleEndian, id)
		b.Write(body)
	}
	cie := append([]byte{1, 0, 1, 0x78, 16, 0x0c, 7, 8, 0x90, 1}, cieExtra...)
	entry(0xffffffff, cie)
	for _, code := range fdes {
		body := binary.LittleEndian.AppendUint64(nil, 0x1000)
		body = binary.LittleEndian.AppendUint64(body, 0x100)
		entry(0, append(body, code...))
	}
	return b.Bytes()
}

// TestInterpret runs instruction sequences real compilers emit, and some
// they don't, through the interpreter.
func TestInterpret(t *testing.T) {
	rsp := func(off int32, rbp int16) Row { return Row{CFA: RuleRSP, CFAOffset: off, RBPOffset: rbp} }
	cases := []struct {
		name string
		cie  []byte
		code []byte
		want []locRow
	}{
		{"push rbp; mov rsp,rbp", nil,
			[]byte{0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x4a, 0x0c, 7, 8},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1001, rsp(16, -16)}, {0x1004, Row{CFA: RuleRBP, CFAOffset: 16, RBPOffset: -16}}, {0x100e, rsp(8, -16)}}},
		{"remember, restore state; restore rbp", nil,
			[]byte{0x41, 0x0e, 16, 0x86, 2, 0x0a, 0x41, 0x0e, 8, 0xc6, 0x41, 0x0b, 0x41, 0x06, 6},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1001, rsp(16, -16)}, {0x1002, rsp(8, 0)}, {0x1003, rsp(16, -16)}, {0x1004, rsp(16, 0)}}},
		{"undefined ra: the outermost frame", nil,
			[]byte{0x07, 16},
			[]locRow{{0x1000, Row{CFA: RuleEnd}}}},
		{"ra elsewhere than CFA-8", nil,
			[]byte{0x42, 0x90, 2},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1002, Row{}}}},
		{"rbp in a register", nil,
			[]byte{0x42, 0x09, 6, 3},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1002, Row{}}}},
		{"an unknown expression", nil,
			[]byte{0x42, 0x0f, 2, 0x77, 0x08, 0x43, 0x0e, 16},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1002, Row{}}, {0x1005, Row{}}}},
		{"the PLT expression", nil,
			append([]byte{0x0f, 11}, append(append(append([]byte{}, pltExpr...), 0x3b), pltExprEnd...)...),
			[]locRow{{0x1000, Row{CFA: RulePLT, CFAOffset: 11}}}},
		{"the signal expression", nil,
			append([]byte{0x41, 0x0f, 4}, signalExpr...),
			[]locRow{{0x1000, rsp(8, 0)}, {0x1001, Row{CFA: RuleSignal}}}},
		{"restore_state without remember_state", nil,
			[]byte{0x41, 0x0b, 0x41, 0x0e, 16},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1001, Row{}}}},
		{"an unknown instruction", nil,
			[]byte{0x42, 0x3f, 0x41, 0x0e, 16},
			[]locRow{{0x1000, rsp(8, 0)}, {0x1002, Row{}}}},
		{"a truncated operand", nil,
			[]byte{0x00, 0x42, 0x0e, 0x80}, // four bytes: debugFrame pads none
			[]locRow{{0x1000, rsp(8, 0)}, {0x1002, Row{}}}},
		{"def_cfa_sf, offset_extended_sf, GNU_args_size, advance_loc1/2/4, set_loc", nil,
			[]byte{0x12, 7, 0x7e, 0x2e, 8, 0x02, 1, 0x11, 6, 0x02, 0x03, 1, 0, 0x13, 0x7d, 0x04, 1, 0, 0, 0,
				0x01, 0x10, 0x10, 0, 0, 0, 0, 0, 0, 0x0e, 8},
			[]locRow{{0x1000, rsp(16, 0)}, {0x1001, rsp(16, -16)}, {0x1002, rsp(24, -16)}, {0x1003, rsp(24, -16)}, {0x1010, rsp(8, -16)}}},
		{"a CIE that marks a signal frame", []byte{0x41, 0x0e, 16}, // the CIE's advance is ignored
			nil,
			[]locRow{{0x1000, rsp(16, 0)}}},
	}
	for _, c := range cases {
		fdes, err := frame.Parse(debugFrame(c.cie, c.code), binary.LittleEndian, 0, 8, 0)
		if err != nil || len(fdes) != 1 {
			t.Fatalf("%s: parse: %d FDEs, %v", c.name, len(fdes), err)
		}
		got := new(interpreter).interpret(fdes[0], false)
		if len(got) != len(c.want) {
			t.Errorf("%s: rows %+v, want %+v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: row %d %+v, want %+v", c.name, i, got[i], c.want[i])
			}
		}
	}
}

// TestRememberStateBound checks that nesting remember_state past its bound
// ends the FDE's rows instead of growing the interpreter's memory.
func TestRememberStateBound(t *testing.T) {
	code := bytes.Repeat([]byte{0x0a}, maxStates+1)
	code = append(code, 0x41, 0x0e, 16)
	fdes, err := frame.Parse(debugFrame(nil, code), binary.LittleEndian, 0, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := new(interpreter).interpret(fdes[0], false)
	if len(got) != 1 || got[0].row != (Row{}) {
		t.Errorf("rows %+v, want one None row", got)
	}
}
