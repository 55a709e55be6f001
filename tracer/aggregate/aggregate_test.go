package aggregate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
)

// fakeStacks stands for the kernel's stack map.
type fakeStacks struct {
	frames map[uint64][]symbolize.Location
	forgot []uint64
}

func (s *fakeStacks) Frames(hash uint64) []symbolize.Location { return s.frames[hash] }

func (s *fakeStacks) Forget(hash uint64) {
	s.forgot = append(s.forgot, hash)
	delete(s.frames, hash)
}

// fakeSymbolizer names the frame at offset N "fnN", and counts its calls.
type fakeSymbolizer struct{ calls int }

func (f *fakeSymbolizer) Frames(locs []symbolize.Location) []symbolize.Frame {
	f.calls++
	var out []symbolize.Frame
	for _, l := range locs {
		out = append(out, symbolize.Frame{Function: fmt.Sprintf("fn%d", l.Offset), Module: "/bin/t"})
	}
	return out
}

// probeNames knows probes 0 (malloc) and 1 (operator new).
func probeNames(id uint16) (function, module string) {
	switch id {
	case 0:
		return "malloc", "libc.so.6"
	case 1:
		return "operator new", "libstdc++.so.6"
	}
	return "", ""
}

// locations returns a stack of the given offsets in one file.
func locations(offsets ...uint64) []symbolize.Location {
	var locs []symbolize.Location
	for _, o := range offsets {
		locs = append(locs, symbolize.Location{File: symbolize.FileID{Dev: 1, Inode: 2}, Offset: o})
	}
	return locs
}

// fixture is an Aggregate over fake kernel stacks, a fake symbolizer and a
// clock that advances a second at each reading.
type fixture struct {
	*Aggregate
	stacks *fakeStacks
	sym    *fakeSymbolizer
	clock  time.Duration
}

func newFixture(exited, stacks, targets int) *fixture {
	f := &fixture{stacks: &fakeStacks{frames: make(map[uint64][]symbolize.Location)}, sym: new(fakeSymbolizer)}
	f.Aggregate = New(Config{
		MaxExitedProcesses: exited, MaxStacks: stacks, MaxTargets: targets,
		Stacks: f.stacks, Symbolizer: f.sym, Probe: probeNames,
		Elapsed: func() time.Duration { f.clock += time.Second; return f.clock },
	})
	return f
}

// alloc starts pid's image if it has none and adds an allocation of size
// bytes from stack hash, whose frames are at the given offsets.
func (f *fixture) alloc(pid uint32, exe string, hash, size uint64, offsets ...uint64) {
	if _, _, ok := f.Image(pid); !ok {
		f.Start(pid, Names{Exe: exe}, false)
	}
	f.stacks.frames[hash] = locations(offsets...)
	f.Add(Event{Pid: pid, Stack: hash, Size: size})
}

func process(t *testing.T, r *sink.Report, pid int, exe string) sink.Process {
	t.Helper()
	for _, p := range r.Processes {
		if p.Pid == pid && p.Exe == exe {
			return p
		}
	}
	t.Fatalf("no process %d %s in %+v", pid, exe, r.Processes)
	return sink.Process{}
}

func TestCountsPerStack(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.Start(1, Names{Exe: "/bin/a"}, false)
	for _, e := range []Event{
		// A free can arrive before the allocation it frees: the result is the same.
		{Pid: 1, Free: true, Probe: 0, Stack: 10, Size: 16, Age: 1000},
		{Pid: 1, Probe: 0, Stack: 10, Size: 16},
		{Pid: 1, Probe: 0, Stack: 10, Size: 32},
		{Pid: 1, Probe: 1, Stack: 10, Size: 8},
		{Pid: 1, Probe: 0, Stack: 11, Size: 64},
		{Pid: 1, Probe: 0, Stack: 11, Size: 8, Weight: 4}, // sampled: stands for 4
	} {
		f.Add(e)
	}
	want := map[stackKey]sink.Counts{
		{probe: 0, stack: 10}: {Allocs: 2, AllocBytes: 48, Frees: 1, FreeBytes: 16},
		{probe: 1, stack: 10}: {Allocs: 1, AllocBytes: 8},
		{probe: 0, stack: 11}: {Allocs: 5, AllocBytes: 96},
	}
	p := f.live[1]
	if len(p.stacks) != len(want) {
		t.Fatalf("%d aggregates, want %d", len(p.stacks), len(want))
	}
	for k, w := range want {
		if got := p.stacks[k]; got == nil || *got != w {
			t.Errorf("%+v: got %+v, want %+v", k, got, w)
		}
	}
	c := want[stackKey{probe: 0, stack: 10}]
	c.SetLive()
	if c.LiveObjects != 1 || c.LiveBytes != 32 {
		t.Errorf("live %d objects %d bytes, want 1 and 32", c.LiveObjects, c.LiveBytes)
	}
	if p.sizes[5] != 1 || p.sizes[6] != 1 || p.sizes[4] != 5 || p.sizes[7] != 1 || p.lifetimes[10] != 1 {
		t.Errorf("size histogram %v, lifetimes %v", p.sizes[:8], p.lifetimes[:11])
	}
	r := f.Report(sink.Report{})
	got := process(t, r, 1, "/bin/a")
	if got.Totals != (sink.Counts{Allocs: 8, AllocBytes: 152, Frees: 1, FreeBytes: 16, LiveObjects: 7, LiveBytes: 136}) {
		t.Errorf("totals %+v", got.Totals)
	}
	if r.AllocationEvents != 5 {
		t.Errorf("%d allocation events, want 5", r.AllocationEvents)
	}
}

func TestAddAllocatesNothingForKnownStacks(t *testing.T) {
	a := New(Config{})
	a.Start(1, Names{Exe: "/bin/a"}, false)
	e := Event{Pid: 1, Stack: 5, Size: 1}
	a.Add(e)
	if n := testing.AllocsPerRun(1000, func() { a.Add(e) }); n != 0 {
		t.Fatalf("Add allocates %v times per event", n)
	}
}

func TestDeniedImagesCountNothing(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.Start(1, Names{Exe: "/usr/bin/ssh-agent"}, true)
	f.Add(Event{Pid: 1, Stack: 1, Size: 8})
	if !f.Fork(2, 1) {
		t.Fatal("fork of a known parent not recorded")
	}
	if _, denied, _ := f.Image(2); !denied {
		t.Error("the child of a denied parent is not denied")
	}
	f.Add(Event{Pid: 2, Stack: 1, Size: 8})
	r := f.Report(sink.Report{})
	m := f.Metrics()
	if len(r.Processes) != 0 || r.AllocationEvents != 0 || r.SkippedProcesses != 2 || m.Skipped != 2 || len(m.Executables) != 0 {
		t.Errorf("denied images: %d processes, %d events, %d skipped (metrics %d, %d executables)",
			len(r.Processes), r.AllocationEvents, r.SkippedProcesses, m.Skipped, len(m.Executables))
	}
}

// TestExecAndForkImages: a child runs its parent's image until it execs;
// each image is reported apart, the one before the exec first.
func TestExecAndForkImages(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.Start(1, Names{Exe: "/bin/sh", Argv0: "sh", Cgroup: "/a"}, false)
	f.alloc(1, "", 1, 100, 1)
	if f.Fork(3, 9) {
		t.Error("fork of an unknown parent recorded")
	}
	if !f.Fork(2, 1) {
		t.Fatal("fork not recorded")
	}
	f.alloc(2, "", 2, 10, 2)
	f.Exec(2, 7)
	f.Start(2, Names{Exe: "/bin/ls", Argv0: "ls", Cgroup: "/a"}, false)
	f.alloc(2, "", 3, 1, 3)
	r := f.Report(sink.Report{})
	var got []string
	for _, p := range r.Processes {
		got = append(got, fmt.Sprintf("%d %s %s %v %d", p.Pid, p.Exe, p.Argv0, p.Exited, p.Totals.AllocBytes))
	}
	want := []string{"1 /bin/sh sh false 100", "2 /bin/sh sh false 10", "2 /bin/ls ls false 1"}
	if !slices.Equal(got, want) {
		t.Errorf("processes %q, want %q", got, want)
	}
	if !slices.Equal(f.Ended(), []Ended{{2, 7}}) {
		t.Errorf("ended %v, want pid 2's image of generation 7", f.Ended())
	}
	m := f.Metrics()
	if len(m.Executables) != 2 || m.Executables[0].Exe != "/bin/sh" || m.Executables[0].AllocBytes != 110 {
		t.Errorf("executables %+v: want /bin/sh with its child's 110 bytes first", m.Executables)
	}
}

// TestExitRetires: an exited image keeps its stacks, moved out of the
// kernel; one that allocated nothing is not kept.
func TestExitRetires(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.alloc(1, "/bin/a", 41, 8, 1, 2)
	f.Start(2, Names{Exe: "/bin/b"}, false)
	f.Exit(1, 1)
	f.Exit(2, 1)
	if !slices.Equal(f.stacks.forgot, []uint64{41}) {
		t.Errorf("stacks deleted from the kernel: %v, want 41", f.stacks.forgot)
	}
	r := f.Report(sink.Report{})
	if len(r.Processes) != 1 {
		t.Fatalf("%d processes, want the one that allocated", len(r.Processes))
	}
	p := r.Processes[0]
	if !p.Exited || len(p.Stacks) != 1 || len(p.Stacks[0].Frames) != 3 || p.Stacks[0].Frames[2].Function != "fn2" {
		t.Errorf("exited process %+v", p)
	}
	if len(p.Timeline) != 1 || p.Timeline[0].LiveBytes != 8 {
		t.Errorf("timeline %+v: want the 8 bytes in use at the exit", p.Timeline)
	}
	f.Swept(nil)
	if len(f.Ended()) != 0 {
		t.Errorf("ended after the sweep: %v", f.Ended())
	}
}

// TestFoldExited: past max_exited_processes exited images, the oldest are
// summed per executable, their stacks matched by frames, until half are left.
func TestFoldExited(t *testing.T) {
	f := newFixture(2, 10, 10)
	for pid := uint32(1); pid <= 5; pid++ {
		f.alloc(pid, "/bin/x", uint64(100+pid), 10, 7, 8) // one stack, a hash per image
		f.Exit(pid, 1)
	}
	f.Fold() // the images' allocations still wait in the live map: nothing folds
	if len(f.done) != 5 {
		t.Fatalf("%d images kept apart while waiting for the sweep, want 5", len(f.done))
	}
	f.Swept(nil)
	f.Fold()
	r := f.Report(sink.Report{})
	folded := process(t, r, 0, "/bin/x")
	if folded.FoldedProcesses != 4 || !folded.Exited || len(folded.Stacks) != 1 || folded.Stacks[0].Allocs != 4 || folded.Stacks[0].AllocBytes != 40 {
		t.Errorf("folded record: %d images, exited %v, stacks %+v", folded.FoldedProcesses, folded.Exited, folded.Stacks)
	}
	if len(r.Processes) != 2 || r.FoldedProcesses != 4 || r.Processes[1].Pid != 5 {
		t.Errorf("%d processes, %d folded; want the folded record and pid 5", len(r.Processes), r.FoldedProcesses)
	}
	if got := folded.Stacks[0].Frames; len(got) != 3 || got[1].Function != "fn7" {
		t.Errorf("folded stack frames %+v", got)
	}
}

// TestFoldPastMaxStacks: the folded records keep max_stacks distinct
// stacks; the others are summed into one stack of their own, and counted.
// Executables past max_exited_processes folded records are folded together.
func TestFoldPastMaxStacks(t *testing.T) {
	f := newFixture(2, 1, 10)
	for pid := uint32(1); pid <= 6; pid++ {
		f.alloc(pid, fmt.Sprintf("/bin/%c", 'a'+pid%3), uint64(pid), 10, uint64(pid)) // a stack of its own each
		f.Exit(pid, 1)
	}
	f.Swept(nil)
	f.Fold()
	r := f.Report(sink.Report{})
	if r.FoldedStacks == 0 {
		t.Fatal("no stack past max_stacks counted")
	}
	distinct, other := 0, 0
	var exes []string
	for _, p := range r.Processes {
		if p.FoldedProcesses == 0 {
			continue
		}
		exes = append(exes, p.Exe)
		for _, s := range p.Stacks {
			if s.Frames[0].Function == sink.OtherStacks {
				other += int(s.Allocs)
			} else {
				distinct++
			}
		}
	}
	if distinct != 1 || other != r.FoldedStacks {
		t.Errorf("%d distinct folded stacks (want max_stacks, 1), %d allocations in other stacks (want %d)", distinct, other, r.FoldedStacks)
	}
	if len(exes) != 3 || !slices.Contains(exes, otherExecutables) {
		t.Errorf("folded records %q: want max_exited_processes (2) executables and %s", exes, otherExecutables)
	}
}

// TestFoldLivePastMaxTargets: a report keeps max_targets running images
// apart, those that allocated the most; the others are summed per
// executable, without changing what later reports see.
func TestFoldLivePastMaxTargets(t *testing.T) {
	f := newFixture(10, 10, 2)
	for pid := uint32(1); pid <= 4; pid++ {
		f.alloc(pid, "/bin/y", uint64(pid), uint64(pid)*10, 5) // the same frames under each image's hash
	}
	for range 2 {
		r := f.Report(sink.Report{})
		var pids []int
		for _, p := range r.Processes {
			pids = append(pids, p.Pid)
		}
		folded := process(t, r, 0, "/bin/y")
		if !slices.Equal(pids, []int{0, 3, 4}) || folded.FoldedProcesses != 2 || folded.Exited ||
			len(folded.Stacks) != 1 || folded.Totals.AllocBytes != 30 || r.FoldedProcesses != 2 {
			t.Errorf("pids %v, folded record %+v", pids, folded)
		}
	}
}

func TestLeakCutoff(t *testing.T) {
	for _, tc := range []struct {
		now, minAge time.Duration
		want        uint64
	}{
		{60 * time.Second, 30 * time.Second, uint64(30 * time.Second)},
		{10 * time.Second, 30 * time.Second, 0}, // up for less than minAge: none old enough, no wrap-around
		{10 * time.Second, 0, uint64(10 * time.Second)},
	} {
		if got := LeakCutoff(tc.now, tc.minAge); got != tc.want {
			t.Errorf("LeakCutoff(%v, %v) = %d, want %d", tc.now, tc.minAge, got, tc.want)
		}
	}
}

// TestLeakCountsIntoLatestImage: a leak counts in the latest image of its
// process that has its stack.
func TestLeakCountsIntoLatestImage(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.alloc(1, "/bin/a", 5, 8)
	f.Exec(1, 1)
	f.alloc(1, "/bin/b", 5, 8)
	f.alloc(1, "", 6, 8)
	f.Exec(1, 2)
	f.alloc(1, "/bin/c", 6, 8)
	f.Leak(Event{Pid: 1, Stack: 5, Size: 8, Weight: 2})
	f.Leak(Event{Pid: 1, Stack: 6, Size: 8})
	f.Leak(Event{Pid: 1, Stack: 7, Size: 8}) // no image has it
	f.Leak(Event{Pid: 2, Stack: 5, Size: 8}) // nor has pid 2
	r := f.Report(sink.Report{})
	for exe, want := range map[string]uint64{"/bin/a": 0, "/bin/b": 16, "/bin/c": 8} {
		if got := process(t, r, 1, exe).Totals.LeakedBytes; got != want {
			t.Errorf("%s: %d bytes leaked, want %d", exe, got, want)
		}
	}
}

func TestTimelineThinning(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.alloc(1, "/bin/a", 1, 8)
	for range maxTimeline {
		f.Sample()
	}
	r := f.Report(sink.Report{})
	f.Sample() // thins the timeline in place
	if got := r.Processes[0].Timeline; len(got) != maxTimeline || got[1].Seconds != 2 {
		t.Errorf("a report's timeline changed as the run went on: %d points, the second at %vs", len(got), got[1].Seconds)
	}
	tl := f.live[1].timeline
	if len(tl) != maxTimeline/2+1 {
		t.Fatalf("%d points, want %d", len(tl), maxTimeline/2+1)
	}
	for i, p := range tl {
		if want := float64(2*i + 1); p.Seconds != want || p.LiveBytes != 8 {
			t.Fatalf("point %d: %+v, want at %vs with 8 bytes", i, p, want)
		}
	}
}

// TestMetricsSumsOtherExecutables: past a hundred executables, the
// smallest are summed under "other".
func TestMetricsSumsOtherExecutables(t *testing.T) {
	f := newFixture(10, 10, 10)
	var other uint64
	for pid := uint32(1); pid <= 150; pid++ {
		f.alloc(pid, fmt.Sprintf("/bin/%03d", pid), uint64(pid), uint64(pid))
		if pid <= 51 {
			other += uint64(pid)
		}
	}
	f.Add(Event{Pid: 1, Free: true, Stack: 1, Size: 1})
	m := f.Metrics()
	if len(m.Executables) != maxExecutables || m.Processes != 150 || m.Events != 150 {
		t.Fatalf("%d executables, %d processes, %d events", len(m.Executables), m.Processes, m.Events)
	}
	if e := m.Executables[0]; e.Exe != "/bin/150" || e.LiveBytes != 150 {
		t.Errorf("largest %+v, want /bin/150 with 150 bytes live", e)
	}
	if e := m.Executables[maxExecutables-1]; e.Exe != "other" || e.AllocBytes != other || e.Allocs != 51 || e.LiveBytes != other-1 {
		t.Errorf("other %+v, want the 51 smallest: %d bytes, one freed", e, other)
	}
	top := f.TopStacks()
	if len(top) != topStacks || top[0].Pid != 150 || top[0].AllocBytes != 150 || top[0].Frames[0].Function != "malloc" {
		t.Errorf("top stacks %+v", top[:min(len(top), 1)])
	}
}

// TestReport: stacks largest first, allocators by allocations, frames
// symbolized once per distinct stack however many processes have it.
func TestReport(t *testing.T) {
	f := newFixture(10, 10, 10)
	f.Start(1, Names{Exe: "/bin/a"}, false)
	f.stacks.frames[1] = locations(1, 2)
	for _, e := range []Event{
		{Pid: 1, Probe: 1, Stack: 1, Size: 100},
		{Pid: 1, Probe: 0, Stack: 1, Size: 10},
		{Pid: 1, Probe: 0, Stack: 1, Size: 10},
		{Pid: 1, Probe: 9, Stack: 1, Size: 1}, // a probe the tracer does not know
	} {
		f.Add(e)
	}
	f.alloc(2, "/bin/a", 1, 5)
	r := f.Report(sink.Report{DurationSeconds: 3, LostEvents: 4})
	if r.Schema != sink.Schema || r.DurationSeconds != 3 || r.LostEvents != 4 || len(r.Processes) != 2 {
		t.Fatalf("report %+v", r)
	}
	p := r.Processes[0]
	var got []string
	for _, s := range p.Stacks {
		got = append(got, fmt.Sprintf("%s %d", s.Frames[0].Function, s.AllocBytes))
	}
	if want := []string{"operator new 100", "malloc 20", "[unknown] 1"}; !slices.Equal(got, want) {
		t.Errorf("stacks %q, want %q", got, want)
	}
	if !slices.Equal(p.Allocators, []string{"libc.so.6", "libstdc++.so.6"}) || p.Allocator != "libc.so.6" {
		t.Errorf("allocators %q (%q), want libc first: it served more allocations", p.Allocators, p.Allocator)
	}
	if len(p.SizeHistogram) != 3 || p.SizeHistogram[0] != (sink.Bucket{Below: 2, Count: 1}) {
		t.Errorf("size histogram %+v", p.SizeHistogram)
	}
	if &p.Stacks[1].Frames[0] != &r.Processes[1].Stacks[0].Frames[0] || f.sym.calls != 3 {
		t.Errorf("malloc's stack symbolized %d times for 3 distinct stacks, not shared between processes", f.sym.calls)
	}
}
