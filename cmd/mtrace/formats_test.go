package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestPprofProfile writes a pprof profile, reads it back with the profile
// package and checks it against the program's own counts, then runs go tool
// pprof -top on it.
func TestPprofProfile(t *testing.T) {
	tracertest.RequireBPF(t)
	bin, out, res := recordAllocsTo(t, "allocs.pb.gz")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"}
	for i, st := range p.SampleType {
		if st.Type != want[i] {
			t.Errorf("sample type %d is %s, want %s", i, st.Type, want[i])
		}
	}
	// Sum the values of the samples whose direct caller (second frame) is each function.
	got := map[string][4]int64{}
	for _, s := range p.Sample {
		if s.Label["exe"][0] != bin || len(s.NumLabel["pid"]) != 1 {
			t.Fatalf("sample labels %v %v", s.Label, s.NumLabel)
		}
		var names []string
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				names = append(names, l.Function.Name)
			}
		}
		if len(names) < 2 {
			continue
		}
		v := got[names[1]]
		for i := range v {
			v[i] += s.Value[i]
		}
		got[names[1]] = v
	}
	for pid, tallies := range parseTallies(t, res.stdout) {
		for fn, w := range tallies {
			v := got[fn]
			if v[0] != int64(w.Allocs) || v[1] != int64(w.AllocBytes) || v[2] != int64(w.Allocs-w.Frees) || v[3] != int64(w.AllocBytes-w.FreeBytes) {
				t.Errorf("pid %d %s: profile %v, program did %+v", pid, fn, v, w)
			}
		}
	}
	top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=alloc_space", out).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, top)
	}
	for _, fn := range []string{"make_small", "make_zeroed", "grow"} {
		if !strings.Contains(string(top), fn) {
			t.Errorf("go tool pprof -top does not show %s:\n%s", fn, top)
		}
	}
	traces, err := exec.Command("go", "tool", "pprof", "-traces", out).CombinedOutput()
	if err != nil || !strings.Contains(string(traces), "make_small") || !strings.Contains(string(traces), "pid:") {
		t.Errorf("go tool pprof -traces: %v\n%s", err, traces)
	}
	// Against itself, -diff_base leaves nothing: every value cancels out.
	diff, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=alloc_space", "-diff_base", out, out).CombinedOutput()
	if err != nil || !strings.Contains(string(diff), "Showing nodes accounting for 0, 0% of") {
		t.Errorf("go tool pprof -diff_base: %v\n%s", err, diff)
	}
	// mtrace report reads the profile back into the same counts, as JSON
	// because the output's extension says so.
	json := filepath.Join(t.TempDir(), "again.json")
	again := runMtrace(t.Context(), nil, "report", "--output", json, out)
	if again.code != 0 {
		t.Fatalf("report: exit %d: %s", again.code, again.stderr)
	}
	checkTallies(t, readReport(t, json), res.stdout, expect{bin: bin, callees: allocsProgram})
}

// TestFoldedStacks writes folded stacks: each line ends in the bytes of a
// stack whose frames run from the executable to the allocation function.
func TestFoldedStacks(t *testing.T) {
	tracertest.RequireBPF(t)
	bin, out, res := recordAllocsTo(t, "allocs.folded")
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bytesBy := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		i := strings.LastIndexByte(sc.Text(), ' ')
		n, err := strconv.ParseUint(sc.Text()[i+1:], 10, 64)
		frames := strings.Split(sc.Text()[:i], ";")
		if err != nil || len(frames) < 2 || frames[0] != bin {
			t.Fatalf("malformed folded line %q", sc.Text())
		}
		if len(frames) >= 3 {
			bytesBy[frames[len(frames)-2]] += n
		}
	}
	for _, tallies := range parseTallies(t, res.stdout) {
		for fn, w := range tallies {
			if bytesBy[fn] != w.AllocBytes {
				t.Errorf("%s: %d bytes folded, program allocated %d", fn, bytesBy[fn], w.AllocBytes)
			}
		}
	}
}

// TestLeaks lists, per stack, the allocations the program never freed:
// all of them with --min-age 0s, none with an age no allocation reaches.
func TestLeaks(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	for _, tc := range []struct {
		minAge string
		all    bool
	}{{"0s", true}, {"1h", false}} {
		r, out := recordJSON(t, "--leaks", "--min-age", tc.minAge, "--", bin)
		checkTallies(t, r, out, expect{bin: bin, callees: allocsProgram})
		leaked := map[string][2]uint64{}
		for _, s := range r.Processes[0].Stacks {
			if len(s.Frames) > 1 {
				v := leaked[s.Frames[1].Function]
				leaked[s.Frames[1].Function] = [2]uint64{v[0] + s.LeakedObjects, v[1] + s.LeakedBytes}
			}
		}
		for _, tallies := range parseTallies(t, out) {
			for fn, w := range tallies {
				want := [2]uint64{}
				if tc.all {
					want = [2]uint64{w.Allocs - w.Frees, w.AllocBytes - w.FreeBytes}
				}
				if leaked[fn] != want {
					t.Errorf("--min-age %s: %s leaked %v, want %v", tc.minAge, fn, leaked[fn], want)
				}
			}
		}
	}
}

// TestReportDiffBase compares a run with an earlier one of the same program
// doing its work three times instead of once: the difference is twice the work.
func TestReportDiffBase(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	dir := t.TempDir()
	base, grown := filepath.Join(dir, "base.pb.gz"), filepath.Join(dir, "grown.json")
	once := runMtrace(t.Context(), nil, "record", "--output", base, "--", bin)
	thrice := runMtrace(t.Context(), nil, "record", "--output", grown, "--", bin, "--fork-exec")
	if once.code != 0 || thrice.code != 0 {
		t.Fatalf("record: %s %s", once.stderr, thrice.stderr)
	}
	diff := runMtrace(t.Context(), nil, "report", "--diff-base", base, "--format", "json", grown)
	if diff.code != 0 {
		t.Fatalf("report: exit %d: %s", diff.code, diff.stderr)
	}
	r := readReport(t, writeFile(t, "diff.json", diff.stdout))
	if len(r.Processes) != 1 || r.Processes[0].Exe != bin {
		t.Fatalf("diff processes %+v", r.Processes)
	}
	got := map[string]uint64{}
	for _, s := range r.Processes[0].Stacks {
		got[s.Frames[1].Function] += s.Allocs
	}
	for pid, tallies := range parseTallies(t, once.stdout) {
		for fn, w := range tallies {
			if got[fn] != 2*w.Allocs {
				t.Errorf("%s grew by %d allocations, want %d (pid %d did %d)", fn, got[fn], 2*w.Allocs, pid, w.Allocs)
			}
		}
	}
}

// recordAllocsTo traces testdata's allocs program into a file named name
// (its extension chooses the format) with extra record flags.
func recordAllocsTo(t *testing.T, name string, flags ...string) (bin, out string, res mtraceRun) {
	t.Helper()
	bin = tracertest.BuildC(t, "allocs.c")
	out = filepath.Join(t.TempDir(), name)
	res = runMtrace(t.Context(), nil, append(append([]string{"record", "--output", out}, flags...), "--", bin)...)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	return bin, out, res
}

// TestReportTrimmedToFit writes a report under a max_output_bytes it does
// not fit: instead of failing, each process keeps its largest stacks and
// the rest are summed into "[other stacks]". The file fits, its totals are
// the sum of its stacks, and it says how many stacks it summed.
func TestReportTrimmedToFit(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "allocs.c")
	full, _ := recordJSON(t, "--", bin)
	const limit = 6000
	pol := writeFile(t, "policy.toml", fmt.Sprintf("[limits]\nmax_output_bytes = %d\n", limit))
	out := filepath.Join(t.TempDir(), "report.json")
	res := runMtrace(t.Context(), nil, "record", "--policy", pol, "--format", "json", "--output", out, "--", bin)
	if res.code != exitOK || !strings.Contains(res.stderr, "report over max_output_bytes") {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if info, err := os.Stat(out); err != nil || info.Size() > limit {
		t.Fatalf("report %v, %v: want at most %d bytes", info, err, limit)
	}
	r := readReport(t, out)
	if len(full.Processes) != 1 || len(r.Processes) != 1 {
		t.Fatalf("%d and %d processes, want 1", len(full.Processes), len(r.Processes))
	}
	p := r.Processes[0]
	var sum sink.Counts
	others := 0
	for _, s := range p.Stacks {
		sum.Add(s.Counts)
		if len(s.Frames) == 1 && s.Frames[0].Function == sink.OtherStacks {
			others++
		}
	}
	kept := len(p.Stacks) - 1
	// On stdout too (where the program's own lines go as well), the report
	// fits, and the text report says it was trimmed.
	const textLimit = 1500
	textPol := writeFile(t, "text.toml", fmt.Sprintf("[limits]\nmax_output_bytes = %d\n", textLimit))
	text := runMtrace(t.Context(), nil, "record", "--policy", textPol, "--format", "text", "--", bin)
	if text.code != exitOK || len(text.stdout) > textLimit+300 || !strings.Contains(text.stdout, "smaller stacks summed into [other stacks]") {
		t.Errorf("text report on stdout: exit %d, %d bytes:\n%s", text.code, len(text.stdout), text.stdout)
	}
	if others != 1 || sum != p.Totals || p.Totals != full.Processes[0].Totals || r.TrimmedStacks != len(full.Processes[0].Stacks)-kept {
		t.Errorf("%d [other stacks], stacks sum to %+v, totals %+v (untrimmed %+v), trimmed %d of %d stacks keeping %d",
			others, sum, p.Totals, full.Processes[0].Totals, r.TrimmedStacks, len(full.Processes[0].Stacks), kept)
	}
}
