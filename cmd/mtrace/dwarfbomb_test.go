package main

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mtrace/mtrace/tracer/tracertest"
)

// dwarfBombSize is what the crafted section of TestCompressedDWARFBomb
// declares, and inflates to: 1.5 GiB of zeros in about 1.5 MB.
const dwarfBombSize = 3 << 29

// maxRSSWithDWARFBomb is mtrace's peak RSS ceiling while it traces and
// symbolizes that program: its usual footprint, far below what inflating
// the section would take.
const maxRSSWithDWARFBomb = 256 << 20

// TestCompressedDWARFBomb traces a program whose file carries, beside its
// real DWARF, a legacy compressed .zdebug_ranges whose "ZLIB" header
// declares 1.5 GiB, and whose zlib stream does inflate to that: a 1.5 MB
// file. mtrace reads the declared size before inflating anything, so the
// module loses its file:line but keeps its function names; the report is
// written, and mtrace's peak RSS (its rusage's maxrss, as it exits) stays
// under maxRSSWithDWARFBomb.
func TestCompressedDWARFBomb(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	bomb := filepath.Join(t.TempDir(), "ranges.zlib")
	writeZlibZeros(t, bomb, dwarfBombSize)
	crafted := filepath.Join(t.TempDir(), "allocs")
	if out, err := exec.Command("objcopy", "--add-section", ".zdebug_ranges="+bomb, bin, crafted).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	if fi, err := os.Stat(crafted); err != nil || fi.Size() > 4<<20 {
		t.Fatalf("crafted file: %v, %d bytes", err, fi.Size())
	}
	out := filepath.Join(t.TempDir(), "report.json")
	cmd, stderr := startMtraceProcess(t, "record", "--format", "json", "--output", out, "--", crafted)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mtrace: %v: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "report written") {
		t.Fatalf("no report written: %s", stderr.String())
	}
	// The largest of mtrace and the processes it waited for (the command).
	peak := uint64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) << 10
	t.Logf("mtrace's peak RSS: %d MiB", peak>>20)
	if peak > maxRSSWithDWARFBomb {
		t.Errorf("mtrace's peak RSS %d MiB, want at most %d MiB", peak>>20, maxRSSWithDWARFBomb>>20)
	}
	named := false
	for _, p := range readReport(t, out).Processes {
		for _, s := range p.Stacks {
			for _, f := range s.Frames {
				if f.Module == crafted && f.Function == "make_small" {
					named = true
					if f.File != "" {
						t.Errorf("make_small at %s:%d: DWARF of a file whose sections declare 1.5 GiB was read", f.File, f.Line)
					}
				}
			}
		}
	}
	if !named {
		t.Error("no frame names make_small in the crafted program")
	}
}

// writeZlibZeros writes a legacy compressed DWARF section's contents to
// path: "ZLIB", the size big-endian, and size zeros, zlib-compressed.
func writeZlibZeros(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	var hdr [12]byte
	copy(hdr[:], "ZLIB")
	binary.BigEndian.PutUint64(hdr[4:], uint64(size))
	w.Write(hdr[:])
	z, err := zlib.NewWriterLevel(w, zlib.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(z, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
