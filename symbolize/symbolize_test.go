package symbolize

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

func TestReadMapsKeepsExecutableFileMappings(t *testing.T) {
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	maps, err := ReadMaps(fs, 42)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x55d0c0a01000, End: 0x55d0c0a02000, Offset: 0x1000, Dev: 0xfe00, Inode: 1311, Path: "/usr/bin/app"},
		{Start: 0x7f1c2a428000, End: 0x7f1c2a57d000, Offset: 0x28000, Dev: 0xfe00, Inode: 2044, Path: "/usr/lib/x86_64-linux-gnu/libc.so.6"},
		{Start: 0x7f1c2a600000, End: 0x7f1c2a601000, Dev: 0xfe00, Inode: 3001, Path: "/tmp/old lib.so", Deleted: true},
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
		if got, ok := mod.Function(off); !ok || got != fields[3] {
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

func TestOpenModuleRejectsGarbage(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("\x7fELF"), bytes.Repeat([]byte{0xff}, 256)} {
		if _, err := OpenModule(bytes.NewReader(data)); err == nil {
			t.Errorf("OpenModule(%q) succeeded", data)
		}
	}
}
