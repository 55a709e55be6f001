package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// addr2lineFrame is one line pair of addr2line -f -i -C output.
type addr2lineFrame struct {
	function, file string
	line           string
}

// symbolizedAt groups a stack's frames (after the allocation function) by
// the location they symbolize: inlined frames share their location.
func symbolizedAt(s sink.Stack) [][]sink.Frame {
	var groups [][]sink.Frame
	for _, f := range s.Frames[1:] {
		n := len(groups)
		if n > 0 {
			last := groups[n-1][len(groups[n-1])-1]
			if last.Inlined && last.Module == f.Module && last.Offset == f.Offset {
				groups[n-1] = append(groups[n-1], f)
				continue
			}
		}
		groups = append(groups, []sink.Frame{f})
	}
	return groups
}

// checkAddr2line compares every symbolized location of every stack in the
// report with addr2line -f -i -C on the same module offset: function names,
// source file (by base name) and line, and the inline chain. debugFiles
// names, per module, the file to give addr2line instead (a split debug file).
func checkAddr2line(t *testing.T, r *sink.Report, debugFiles map[string]string) int {
	t.Helper()
	type key struct {
		module string
		offset uint64
	}
	want := make(map[key][]sink.Frame)
	for _, p := range r.Processes {
		for _, s := range p.Stacks {
			for _, g := range symbolizedAt(s) {
				f := g[0]
				if f.Offset == 0 || !strings.HasPrefix(f.Module, "/") || strings.HasPrefix(f.Function, filepath.Base(f.Module)+"+0x") {
					continue // no symbol: addr2line has nothing to agree with
				}
				want[key{f.Module, f.Offset}] = g
			}
		}
	}
	byModule := make(map[string][]key)
	for k := range want {
		byModule[k.module] = append(byModule[k.module], k)
	}
	checked := 0
	for module, keys := range byModule {
		file := module
		if d, ok := debugFiles[module]; ok {
			file = d
		}
		addrs := make([]string, len(keys))
		for i, k := range keys {
			addrs[i] = fmt.Sprintf("0x%x", vaddrOf(t, module, k.offset-1))
		}
		// One address per call, so each answer is told apart.
		for i, k := range keys {
			out, err := exec.Command("addr2line", "-f", "-i", "-C", "-e", file, addrs[i]).Output()
			if err != nil {
				t.Fatalf("addr2line: %v", err)
			}
			got := parseAddr2line(out)
			ours := want[k]
			if len(got) != len(ours) {
				t.Errorf("%s+0x%x: mtrace %v, addr2line %v", module, k.offset, ours, got)
				continue
			}
			for j := range ours {
				line := fmt.Sprint(ours[j].Line)
				if ours[j].File == "" {
					line = "?"
				}
				sameFile := filepath.Base(got[j].file) == filepath.Base(ours[j].File) || ours[j].File == "" && got[j].file == "" ||
					llvmAgrees(file, addrs[i], j, ours[j].File)
				if got[j].function != ours[j].Function || !sameFile || (got[j].line != line && !(ours[j].File == "" && got[j].line == "0")) {
					t.Errorf("%s+0x%x frame %d: mtrace %s %s:%d, addr2line %s %s:%s", module, k.offset, j, ours[j].Function, ours[j].File, ours[j].Line, got[j].function, got[j].file, got[j].line)
				}
			}
			checked++
		}
	}
	return checked
}

// llvmAgrees reports whether llvm-symbolizer names file for frame j at addr.
// binutils 2.40's addr2line misreads some DWARF 5 file indices (glibc's
// __libc_start_call_main, in libc_start_call_main.h, it puts in
// libc-start.c); where it and mtrace differ on the file alone, LLVM decides.
func llvmAgrees(module, addr string, j int, file string) bool {
	out, err := exec.Command("llvm-symbolizer", "--obj="+module, "-f", "-i", "-C", addr).Output()
	if err != nil {
		return false
	}
	got := parseAddr2line(out)
	return j < len(got) && filepath.Base(got[j].file) == filepath.Base(file)
}

func parseAddr2line(out []byte) []addr2lineFrame {
	var frames []addr2lineFrame
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fn := sc.Text()
		if !sc.Scan() {
			break
		}
		if fn == "" {
			continue // llvm-symbolizer ends its answer with an empty line
		}
		loc, _, _ := strings.Cut(sc.Text(), " (discriminator")
		file, line, _ := strings.Cut(loc, ":")
		line, _, _ = strings.Cut(line, ":") // llvm-symbolizer adds the column
		if file == "??" {
			file = ""
		}
		frames = append(frames, addr2lineFrame{function: fn, file: file, line: line})
	}
	return frames
}

// vaddrOf converts a file offset of module to the address addr2line expects.
func vaddrOf(t *testing.T, module string, off uint64) uint64 {
	t.Helper()
	f, err := elf.Open(module)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && off >= p.Off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr
		}
	}
	t.Fatalf("offset %#x of %s is in no loadable segment", off, module)
	return 0
}

// TestSymbolsAgreeWithAddr2line symbolizes C and C++ programs (inlined
// templates among them) and checks every frame against addr2line.
func TestSymbolsAgreeWithAddr2line(t *testing.T) {
	tracertest.RequireBPF(t)
	inline, allocs, nonPIE := tracertest.BuildC(t, "inline.cc"), tracertest.BuildC(t, "allocs.c"), tracertest.BuildC(t, "allocs.c", "-no-pie")
	for _, bin := range []string{inline, allocs, nonPIE} {
		r, out := recordJSON(t, "--", bin)
		if n := checkAddr2line(t, r, nil); n < 3 {
			t.Errorf("%s: only %d locations checked", bin, n)
		}
		if bin == inline {
			checkInlined(t, r)
			continue
		}
		checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
	}
}

// checkInlined requires the inlined template frames addr2line also shows.
func checkInlined(t *testing.T, r *sink.Report) {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range r.Processes[0].Stacks {
		for _, f := range s.Frames {
			if f.Inlined {
				seen[f.Function] = true
			}
		}
	}
	for _, fn := range []string{"Widget* shop::make<Widget>(unsigned long)", "Widget* shop::make_twice<Widget>(unsigned long)"} {
		if !seen[fn] {
			t.Errorf("no inlined frame %q; inlined frames: %v", fn, seen)
		}
	}
}

// TestSymbolsFromDebugDir strips a program, puts its debug file under a
// build-id directory, and finds it there with --debug-dir.
func TestSymbolsFromDebugDir(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c", "-Wl,--build-id")
	dir := t.TempDir()
	debug := filepath.Join(dir, "allocs.debug")
	for _, args := range [][]string{{"objcopy", "--only-keep-debug", bin, debug}, {"strip", "--strip-all", bin}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	id := buildIDOf(t, f)
	f.Close()
	dst := filepath.Join(dir, ".build-id", id[:2], id[2:]+".debug")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(debug, dst); err != nil {
		t.Fatal(err)
	}
	r, out := recordJSON(t, "--debug-dir", dir, "--", bin)
	checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
	if n := checkAddr2line(t, r, map[string]string{bin: dst}); n < 3 {
		t.Errorf("only %d locations checked", n)
	}
	for _, s := range r.Processes[0].Stacks {
		if s.Frames[1].Function == "make_small" && (s.Frames[1].File == "" || s.Frames[1].BuildID != id) {
			t.Errorf("make_small frame without its debug file's line or build-id: %+v", s.Frames[1])
		}
	}
}

func buildIDOf(t *testing.T, f *elf.File) string {
	t.Helper()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatal("no build-id")
	}
	data, err := s.Data()
	if err != nil || len(data) < 16 {
		t.Fatalf("build-id note: %v", err)
	}
	return fmt.Sprintf("%x", data[16:])
}

// TestSymbolsOfDeletedBinary symbolizes a program whose file was deleted
// while it ran: it is read through /proc/PID/map_files.
func TestSymbolsOfDeletedBinary(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	target := startWaiting(t, bin, "--wait")
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	b := startMtrace(t, "record", "--pid", target.pid(), "--format", "json", "--output", out)
	targetOut := target.release(t)
	if code := <-b.done; code != 0 {
		t.Fatalf("exit %d: %s", code, b.stderr.String())
	}
	checkTallies(t, readReport(t, out), targetOut, expect{bin: bin, callees: allocsProgram})
}
