package symbolize

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchTarget builds a C++ program of testdata with DWARF and returns the
// file and file offsets in the middle of each of its functions.
func benchTarget(b *testing.B) (string, []uint64) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "inline")
	if out, err := exec.Command("g++", "-O2", "-g", "-o", bin, "../testdata/inline.cc").CombinedOutput(); err != nil {
		b.Skipf("build: %v %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	var offs []uint64
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) != elf.STT_FUNC || s.Value == 0 {
			continue
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_LOAD && s.Value >= p.Vaddr && s.Value < p.Vaddr+p.Filesz {
				offs = append(offs, s.Value-p.Vaddr+p.Off+s.Size/2+1)
			}
		}
	}
	return bin, offs
}

// learn makes s know bin and returns the locations of offs in it.
func learn(b *testing.B, s *Symbolizer, bin string, offs []uint64) []Location {
	_, id, err := s.File(bin, FileID{})
	if err != nil {
		b.Fatal(err)
	}
	locs := make([]Location, len(offs))
	for i, o := range offs {
		locs[i] = Location{File: id, Offset: o}
	}
	return locs
}

// BenchmarkFramesCold symbolizes with a new symbolizer each time: the file
// is read and parsed, its DWARF indexed. Reported per frame.
func BenchmarkFramesCold(b *testing.B) {
	bin, offs := benchTarget(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := New("/proc")
		if err != nil {
			b.Fatal(err)
		}
		s.Frames(learn(b, s, bin, offs))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(offs)), "ns/frame")
}

// BenchmarkFramesWarm symbolizes with the file already parsed and indexed.
func BenchmarkFramesWarm(b *testing.B) {
	bin, offs := benchTarget(b)
	s, err := New("/proc")
	if err != nil {
		b.Fatal(err)
	}
	locs := learn(b, s, bin, offs)
	s.Frames(locs)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Frames(locs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(locs)), "ns/frame")
}
