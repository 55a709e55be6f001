package symbolize

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// compressedCopies builds testdata/allocs.c with DWARF and returns it with
// its copies whose DWARF objcopy compressed: the legacy way (.zdebug_*
// sections, "ZLIB" and the size) and the ELF way (SHF_COMPRESSED, a
// compression header).
func compressedCopies(t testing.TB) (plain, legacy, chdr string) {
	t.Helper()
	dir := t.TempDir()
	plain, legacy, chdr = filepath.Join(dir, "allocs"), filepath.Join(dir, "allocs-zdebug"), filepath.Join(dir, "allocs-chdr")
	for _, args := range [][]string{
		{"gcc", "-O2", "-g", "-o", plain, "../testdata/allocs.c"},
		{"objcopy", "--compress-debug-sections=zlib-gnu", plain, legacy},
		{"objcopy", "--compress-debug-sections=zlib", plain, chdr},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Skipf("%s: %v\n%s", args[0], err, out)
		}
	}
	return plain, legacy, chdr
}

// TestCompressedDWARF symbolizes a frame, with its line, from DWARF stored
// either way compressed, and reads each file's declared sizes alike.
func TestCompressedDWARF(t *testing.T) {
	plain, legacy, chdr := compressedCopies(t)
	off := makeSmallAt(t, plain)
	var sizes []uint64
	for _, bin := range []string{plain, legacy, chdr} {
		s, mod, id := learnFile(t, bin)
		sizes = append(sizes, mod.ownDWARF)
		frames := s.Frames([]Location{{File: id, Offset: off + 1}})
		if len(frames) == 0 || frames[len(frames)-1].Function != "make_small" || frames[0].Line == 0 {
			t.Errorf("%s: frames %+v, want make_small with its line", filepath.Base(bin), frames)
		}
		if s.dwarf.used != mod.held() || mod.dwarfSize != mod.ownDWARF {
			t.Errorf("%s: budget %d, module holds %d, declared %d", filepath.Base(bin), s.dwarf.used, mod.held(), mod.ownDWARF)
		}
	}
	if sizes[0] == 0 || sizes[1] != sizes[0] || sizes[2] != sizes[0] {
		t.Errorf("declared DWARF sizes plain, legacy, ELF-compressed: %v, want one", sizes)
	}
}

// TestInflatingIsCapped declares, in a legacy compressed section's header
// and in an SHF_COMPRESSED one's, sizes past the caps: nothing is inflated,
// and the frame keeps its function without a line. Within the caps but
// past the symbolizer's budget, the same.
func TestInflatingIsCapped(t *testing.T) {
	plain, legacy, chdr := compressedCopies(t)
	ef, err := elf.Open(legacy)
	if err != nil {
		t.Fatal(err)
	}
	off := middleOf(t, ef, ef, "make_small")
	zinfo := ef.Section(".zdebug_info").Offset
	ef.Close()
	cf, err := elf.Open(chdr)
	if err != nil {
		t.Fatal(err)
	}
	cinfo := cf.Section(".debug_info").Offset
	cf.Close()
	patch := func(path string, at int64, size uint64, order binary.ByteOrder) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		order.PutUint64(data[at:], size)
		if err := os.WriteFile(path, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	patch(legacy, int64(zinfo)+4, 3<<29, binary.BigEndian)  // "ZLIB", then 1.5 GiB
	patch(chdr, int64(cinfo)+8, 3<<29, binary.LittleEndian) // Elf64_Chdr: type, reserved, size
	for _, bin := range []string{legacy, chdr} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, mod, id := learnFile(t, bin)
		frames := s.Frames([]Location{{File: id, Offset: off + 1}})
		runtime.ReadMemStats(&after)
		if mod.HasDWARF() || len(frames) != 1 || frames[0].Function != "make_small" || frames[0].Line != 0 {
			t.Errorf("%s: DWARF %v, frames %+v, want make_small without a line", filepath.Base(bin), mod.HasDWARF(), frames)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("%s: allocated %d bytes", filepath.Base(bin), grew)
		}
	}

	s, mod, id := learnFile(t, plain)
	s.dwarf.limit = mod.ownDWARF - 1
	if frames := s.Frames([]Location{{File: id, Offset: off + 1}}); len(frames) != 1 || frames[0].Line != 0 || s.dwarf.used != 0 {
		t.Errorf("over the budget: frames %+v, budget used %d, want no line and none", frames, s.dwarf.used)
	}
}

// makeSmallAt returns a file offset in the middle of make_small in bin.
func makeSmallAt(t *testing.T, bin string) uint64 {
	t.Helper()
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	return middleOf(t, ef, ef, "make_small")
}

// TestIndexWithinBudget leaves room in the budget for a program's DWARF
// but hardly any for its index: the index takes no more than what is left,
// and the frame keeps its function.
func TestIndexWithinBudget(t *testing.T) {
	plain, _, _ := compressedCopies(t)
	off := makeSmallAt(t, plain)
	s, mod, id := learnFile(t, plain)
	s.dwarf.limit = mod.ownDWARF + 512
	frames := s.Frames([]Location{{File: id, Offset: off + 1}})
	if len(frames) == 0 || frames[len(frames)-1].Function != "make_small" {
		t.Errorf("frames %+v, want make_small", frames)
	}
	if s.dwarf.used > s.dwarf.limit || s.dwarf.used != mod.held() {
		t.Errorf("budget used %d of %d, module holds %d", s.dwarf.used, s.dwarf.limit, mod.held())
	}
}

// TestRereadGivesBackDWARF rewrites a file whose DWARF was read: learned
// again, it holds only what its new version reads, never both.
func TestRereadGivesBackDWARF(t *testing.T) {
	plain, _, _ := compressedCopies(t)
	off := makeSmallAt(t, plain)
	s, mod, id := learnFile(t, plain)
	s.Frames([]Location{{File: id, Offset: off + 1}})
	once := s.dwarf.used
	if once == 0 || once != mod.held() {
		t.Fatalf("budget %d after the first read, module holds %d", once, mod.held())
	}
	data, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, append(data, 0), 0o755); err != nil { // same inode, a new version
		t.Fatal(err)
	}
	f, err := OpenFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	again, _, err := s.Open(f, plain)
	if err != nil || again == mod {
		t.Fatalf("the rewritten file was not read again: %v", err)
	}
	s.Frames([]Location{{File: id, Offset: off + 1}})
	if s.dwarf.used != again.held() || s.dwarf.used > once {
		t.Errorf("budget %d after the file was read again, its new version holds %d, the old one held %d", s.dwarf.used, again.held(), once)
	}
}
