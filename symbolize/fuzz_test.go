package symbolize

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// tinyELF builds the smallest real executable of testdata for fuzz seeds.
func tinyELF(f *testing.F) []byte {
	f.Helper()
	bin := filepath.Join(f.TempDir(), "noalloc")
	if out, err := exec.Command("gcc", "-O2", "-g", "-static", "-nostdlib", "-Wl,--build-id", "-o", bin, "../testdata/noalloc.c").CombinedOutput(); err != nil {
		f.Skipf("build seed: %v %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzOpenModule feeds arbitrary bytes to the ELF and DWARF reader: it must
// return an error or a module, never panic, and lookups must stay in bounds.
func FuzzOpenModule(f *testing.F) {
	f.Add(tinyELF(f))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := OpenModule(bytes.NewReader(data))
		if (m == nil) == (err == nil) {
			t.Fatalf("module %v and error %v", m, err)
		}
		if slots, err := Imports(bytes.NewReader(data)); (slots == nil) == (err == nil) {
			t.Fatalf("imports %v and error %v", slots, err)
		}
		if m == nil {
			return
		}
		for _, off := range []uint64{0, 1, 0x1000, uint64(len(data)) / 2, ^uint64(0)} {
			m.Lookup(off)
			m.function(off)
			m.CodeAt(bytes.NewReader(data), off, 16)
		}
	})
}

// FuzzReadDWARF feeds arbitrary bytes to the reader of DWARF sections,
// plain or compressed (legacy .zdebug_ or SHF_COMPRESSED): no panic; the
// module holds no more than its sections declare, within the per-file cap,
// all of it counted in the budget (nothing when it holds none); and no more
// is allocated than that.
func FuzzReadDWARF(f *testing.F) {
	plain, legacy, chdr := compressedCopies(f)
	for _, path := range []string{plain, legacy, chdr} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := OpenModule(bytes.NewReader(data))
		if err != nil {
			return
		}
		b := &budget{limit: maxDWARF}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m.loadDWARF(bytes.NewReader(data), b)
		runtime.ReadMemStats(&after)
		if m.dwarfSize > m.ownDWARF || m.ownDWARF > maxDebugInfo || b.used != m.dwarfSize || (m.dwarf == nil) != (b.used == 0) {
			t.Fatalf("declared %d, held %d (DWARF %v), budget %d", m.ownDWARF, m.dwarfSize, m.dwarf != nil, b.used)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > m.ownDWARF+uint64(64*len(data))+4<<20 {
			t.Fatalf("allocated %d bytes for %d declared in a %d-byte file", grew, m.ownDWARF, len(data))
		}
		m.indexDWARF(b)
		for _, off := range []uint64{0, 1, 0x1000, uint64(len(data)) / 2} {
			m.Lookup(off)
		}
		if b.used != m.held() {
			t.Fatalf("budget %d, held %d", b.used, m.held())
		}
	})
}

// FuzzReadMaps feeds arbitrary text as /proc/PID/maps: no panic, and every
// mapping returned comes from a line of it.
func FuzzReadMaps(f *testing.F) {
	seed, err := os.ReadFile("testdata/proc/42/maps")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add("7f00-7f10 r-xp 00000000 fe:00 12 /x (deleted)\n")
	f.Fuzz(func(t *testing.T, maps string) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, "1"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "1", "maps"), []byte(maps), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadMaps(root, 1)
		if err != nil {
			return
		}
		if len(got) > strings.Count(maps, "\n")+1 {
			t.Fatalf("%d mappings from %d lines", len(got), strings.Count(maps, "\n")+1)
		}
		for _, m := range got {
			if !strings.HasPrefix(m.Path, "/") || !strings.Contains(maps, strings.ReplaceAll(m.Path, "\n", `\012`)) {
				t.Fatalf("mapping %+v not from the input", m)
			}
		}
	})
}
