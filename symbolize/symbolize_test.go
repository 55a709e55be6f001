package symbolize

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadMapsKeepsExecutableFileMappings(t *testing.T) {
	maps, err := ReadMaps("testdata/proc", 42)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x55d0c0a01000, End: 0x55d0c0a02000, Offset: 0x1000, Dev: 0xfe00, Inode: 1311, Path: "/usr/bin/app"},
		{Start: 0x7f1c2a428000, End: 0x7f1c2a57d000, Offset: 0x28000, Dev: 0xfe00, Inode: 2044, Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{Start: 0x7f1c2a600000, End: 0x7f1c2a601000, Dev: 0xfe00, Inode: 3001, Path: "/tmp/old lib.so"},
		{Start: 0x7f1c2a700000, End: 0x7f1c2a701000, Dev: 0xfe00, Inode: 3002, Path: "/tmp/odd  dir\r\nx.so"},
	}
	if len(maps) != len(want) {
		t.Fatalf("got %d mappings, want %d: %+v", len(maps), len(want), maps)
	}
	for i := range want {
		if maps[i] != want[i] {
			t.Errorf("mapping %d: %+v, want %+v", i, maps[i], want[i])
		}
	}
}

// TestModuleAgreesWithNm checks function lookup against binutils' nm on a
// program built from testdata.
func TestModuleAgreesWithNm(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "allocs")
	if out, err := exec.Command("gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o", bin, "../testdata/allocs.c").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	nm, err := exec.Command("nm", "--defined-only", "-S", bin).Output()
	if err != nil {
		t.Fatalf("nm: %v", err)
	}
	f, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mod, err := OpenModule(f)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(nm))
	for sc.Scan() {
		fields := strings.Fields(sc.Text()) // value size type name
		if len(fields) != 4 || (fields[2] != "T" && fields[2] != "t") {
			continue
		}
		value, _ := strconv.ParseUint(fields[0], 16, 64)
		size, _ := strconv.ParseUint(fields[1], 16, 64)
		off, ok := fileOffset(ef, value+size/2)
		if !ok {
			t.Fatalf("%s at %#x is in no loadable segment", fields[3], value)
		}
		if got, ok := mod.function(off); !ok || got != fields[3] {
			t.Errorf("middle of %s: got %q, %v", fields[3], got, ok)
		}
		checked++
	}
	if checked < 4 {
		t.Fatalf("checked only %d functions", checked)
	}
	for _, name := range []string{"make_small", "make_zeroed", "grow", "main"} {
		if !mod.Defines(name) {
			t.Errorf("module does not define %s", name)
		}
	}
	if mod.Defines("malloc") {
		t.Error("module claims to define malloc, which it only imports")
	}
}

func fileOffset(f *elf.File, vaddr uint64) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && vaddr >= p.Vaddr && vaddr < p.Vaddr+p.Filesz {
			return vaddr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// middleOf returns where in file f the middle of function name lies, as
// the symbols of sf give it.
func middleOf(t *testing.T, f, sf *elf.File, name string) uint64 {
	t.Helper()
	syms, _ := sf.Symbols()
	for _, s := range syms {
		if off, ok := fileOffset(f, s.Value+s.Size/2); ok && s.Name == name {
			return off
		}
	}
	t.Fatalf("%s not in the symbols", name)
	return 0
}

// learnFile returns a new symbolizer that has learned the file at path.
func learnFile(t *testing.T, path string) (*Symbolizer, *Module, FileID) {
	t.Helper()
	s, err := New("/proc")
	if err != nil {
		t.Fatal(err)
	}
	mod, id, err := s.File(path, FileID{})
	if err != nil {
		t.Fatal(err)
	}
	return s, mod, id
}

func TestOpenModuleRejectsGarbage(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("\x7fELF"), bytes.Repeat([]byte{0xff}, 256)} {
		if _, err := OpenModule(bytes.NewReader(data)); err == nil {
			t.Errorf("OpenModule(%q) succeeded", data)
		}
	}
}

// TestMiniDebugInfo names functions of a stripped program from its
// .gnu_debugdata section (an xz-compressed ELF with a symbol table).
func TestMiniDebugInfo(t *testing.T) {
	for _, tool := range []string{"gcc", "objcopy", "strip", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	dir := t.TempDir()
	bin, mini := filepath.Join(dir, "allocs"), filepath.Join(dir, "mini")
	for _, args := range [][]string{
		{"gcc", "-O2", "-o", bin, "../testdata/allocs.c"},
		{"objcopy", "--only-keep-debug", "--strip-debug", bin, mini},
		{"xz", "-k", mini},
		{"strip", "--strip-all", bin},
		{"objcopy", "--add-section", ".gnu_debugdata=" + mini + ".xz", bin},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	dbg, err := elf.Open(mini)
	if err != nil {
		t.Fatal(err)
	}
	off := middleOf(t, ef, dbg, "make_small")
	ef.Close()
	dbg.Close()
	s, mod, id := learnFile(t, bin)
	frames := s.Frames([]Location{{File: id, Offset: off + 1}})
	if mod.debugFrom != ".gnu_debugdata" {
		t.Errorf("symbols came from %q", mod.debugFrom)
	}
	if len(frames) != 1 || frames[0].Function != "make_small" {
		t.Fatalf("frames %+v, want make_small", frames)
	}
}

// TestOversizedSectionsAreNotRead gives a small file whose symbol table
// and DWARF claim a terabyte: OpenModule must not try to allocate them.
func TestOversizedSectionsAreNotRead(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "allocs")
	if out, err := exec.Command("gcc", "-O2", "-g", "-o", bin, "../testdata/allocs.c").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	shoff := binary.LittleEndian.Uint64(data[0x28:])
	for i, s := range ef.Sections {
		if s.Name == ".symtab" || s.Name == ".debug_info" || s.Name == ".debug_line" {
			binary.LittleEndian.PutUint64(data[shoff+uint64(i)*64+32:], 1<<40) // sh_size
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := OpenModule(bytes.NewReader(data))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("OpenModule: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte file", grew, len(data))
	}
	if m.HasDWARF() || m.Defines("make_small") {
		t.Error("read an oversized section")
	}
}

// TestFIFOIsNotOpenedForReading puts a FIFO where a file is expected: it must
// be refused at once, not wait for a writer.
func TestFIFOIsNotOpenedForReading(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "libc.so.6")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New("/proc")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := s.File(fifo, FileID{}); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error %v, want a refusal", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO blocked")
	}
}

// TestOpenInRootStaysInRoot gives a container-style root whose library is a
// symlink to a host file, and one whose library is a FIFO: neither reaches
// the host file nor blocks.
func TestOpenInRootStaysInRoot(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(lib, "libc.so.6")); err != nil {
		t.Fatal(err)
	}
	if f, err := openInRoot(root, "/lib/libc.so.6"); err == nil {
		f.Close()
		t.Fatal("a symlink out of the root reached the host file")
	}
	if err := os.Symlink("../../../../../etc/passwd", filepath.Join(lib, "libm.so.6")); err != nil {
		t.Fatal(err)
	}
	if f, err := openInRoot(root, "/lib/libm.so.6"); err == nil {
		f.Close()
		t.Fatal("a relative symlink climbed out of the root")
	}
	if err := unix.Mkfifo(filepath.Join(lib, "libfifo.so"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openInRoot(root, "/lib/libfifo.so")
		if err == nil {
			_, _, err = regularFile(f, "libfifo.so")
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a FIFO was taken for a library")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("opening a FIFO in the root blocked")
	}
}

// TestFramesWhileAttaching names a frame in the C library, whose first use
// reads its separate debug file when one is installed, while another
// goroutine reads the library's allocation functions and learns the file
// again, as the tracer's reader does when it attaches. Under -race (as CI
// runs it) nothing may race, and both get what they ask for.
func TestFramesWhileAttaching(t *testing.T) {
	const libc = "/lib/x86_64-linux-gnu/libc.so.6"
	f, err := os.Open(libc)
	if err != nil {
		t.Skipf("no %s", libc)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New("/proc")
	if err != nil {
		t.Fatal(err)
	}
	mod, id, err := s.File(libc, FileID{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := mod.Address("malloc")
	off, ok := fileOffset(ef, addr+8)
	if !ok {
		t.Fatal("malloc is in no loadable segment")
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			if got := s.Frames([]Location{{File: id, Offset: off + 1}}); !strings.HasSuffix(got[len(got)-1].Function, "malloc") {
				t.Errorf("malloc+8 named %+v", got)
			}
		}
	})
	wg.Go(func() {
		for range 200 {
			if code, err := mod.Code(f, "free", 64); err != nil || len(code) == 0 {
				t.Errorf("code of free: %d bytes, %v", len(code), err)
			}
			if _, _, err := s.File(libc, id); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

// function returns, for the tests, the (demangled) function that contains the file offset off.
func (m *Module) function(off uint64) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	addr, ok := m.vaddr(off)
	if !ok {
		return "", false
	}
	return m.symbolAt(addr)
}

// TestNamedFile: a file the symbolizer could not read is named by the path
// the kernel gave, marked unreadable, until it is read after all.
func TestNamedFile(t *testing.T) {
	const libc = "/lib/x86_64-linux-gnu/libc.so.6"
	probe, err := New("/proc")
	if err != nil {
		t.Fatal(err)
	}
	_, id, err := probe.File(libc, FileID{})
	if err != nil {
		t.Skipf("no %s: %v", libc, err)
	}
	s, err := New("/proc")
	if err != nil {
		t.Fatal(err)
	}
	s.Name(id, "/opt/old/libc.so.6")
	s.Name(id, "/opt/other/libc.so.6") // the first name stays
	got := s.Frames([]Location{{File: id, Offset: 0x1f}})
	if len(got) != 1 || got[0].Module != "/opt/old/libc.so.6 (unreadable)" || got[0].Function != "libc.so.6 (unreadable)+0x1f" {
		t.Errorf("a named file's frame: %+v", got)
	}
	if _, _, err := s.File(libc, id); err != nil {
		t.Fatal(err)
	}
	if got := s.Frames([]Location{{File: id, Offset: 0x1f}}); len(got) == 0 || got[0].Module != libc {
		t.Errorf("after reading it, the frame is %+v, want it in %s", got, libc)
	}
}

// TestMalformedDWARFLeavesTheBudget corrupts the first entry of a program's
// DWARF: nothing of it is read until a frame needs it; looking up a frame
// then drops it, and it no longer counts against the symbolizer's budget,
// and the frame is named by its symbol.
func TestMalformedDWARFLeavesTheBudget(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "allocs")
	if out, err := exec.Command("gcc", "-O2", "-g", "-gdwarf-5", "-o", bin, "../testdata/allocs.c").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	info := ef.Section(".debug_info")
	off := middleOf(t, ef, ef, "make_small")
	ef.Close()
	if info == nil {
		t.Fatal("no DWARF")
	}
	f, err := os.OpenFile(bin, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A DWARF 5 unit header is 12 bytes; the first entry's abbreviation code follows.
	if _, err := f.WriteAt([]byte{0x7f}, int64(info.Offset)+12); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, mod, id := learnFile(t, bin)
	if !mod.HasDWARF() || s.dwarf.used != 0 || mod.dwarf != nil {
		t.Fatalf("DWARF %v, read before a frame needs it: budget %d", mod.HasDWARF(), s.dwarf.used)
	}
	frames := s.Frames([]Location{{File: id, Offset: off + 1}})
	if len(frames) != 1 || frames[0].Function != "make_small" || frames[0].Line != 0 {
		t.Errorf("frames %+v, want make_small without a line", frames)
	}
	if mod.dwarf != nil || s.dwarf.used != 0 {
		t.Errorf("after malformed DWARF: kept %v, budget %d, want none", mod.dwarf != nil, s.dwarf.used)
	}
}
