package sink

import "testing"

// TestTrim keeps each process's largest stacks and sums the rest into
// "[other stacks]": every count and total stays exact, trimming again folds
// the earlier sum in rather than adding a second one, and a stack that
// leaked is kept however little it allocated.
func TestTrim(t *testing.T) {
	stack := func(name string, bytes uint64) Stack {
		return Stack{Frames: []Frame{{Function: name}}, Counts: Counts{Allocs: 1, AllocBytes: bytes, Frees: 1, FreeBytes: bytes}}
	}
	r := &Report{Processes: []Process{
		{Pid: 1, Stacks: []Stack{stack("a", 10), stack("b", 40), stack("c", 20), stack("d", 30)}},
		{Pid: 2, Stacks: []Stack{stack("e", 5)}},
	}}
	if n := r.Trim(2); n != 2 || r.TrimmedStacks != 2 {
		t.Fatalf("Trim(2) merged %d, TrimmedStacks %d, want 2", n, r.TrimmedStacks)
	}
	got := r.Processes[0].Stacks
	if len(got) != 3 || got[0].Frames[0].Function != "b" || got[1].Frames[0].Function != "d" ||
		got[2].Frames[0].Function != OtherStacks || got[2].Allocs != 2 || got[2].AllocBytes != 30 || got[2].FreeBytes != 30 {
		t.Errorf("after Trim(2): %+v", got)
	}
	if len(r.Processes[1].Stacks) != 1 {
		t.Errorf("a process with fewer stacks changed: %+v", r.Processes[1].Stacks)
	}
	if n := r.Trim(1); n != 1 || r.TrimmedStacks != 3 {
		t.Fatalf("Trim(1) merged %d, TrimmedStacks %d, want 1 and 3", n, r.TrimmedStacks)
	}
	got = r.Processes[0].Stacks
	if len(got) != 2 || got[0].Frames[0].Function != "b" || got[1].Frames[0].Function != OtherStacks || got[1].Allocs != 3 || got[1].AllocBytes != 60 {
		t.Errorf("after Trim(1): %+v", got)
	}
	if r.MostStacks() != 2 {
		t.Errorf("MostStacks %d, want 2", r.MostStacks())
	}

	leaky := stack("leak", 1)
	leaky.Frees, leaky.FreeBytes, leaky.LiveObjects, leaky.LiveBytes, leaky.LeakedObjects, leaky.LeakedBytes = 0, 0, 1, 1, 1, 1
	r = &Report{Processes: []Process{{Pid: 3, Stacks: []Stack{stack("big", 100), leaky, stack("mid", 50), stack("small", 10)}}}}
	r.Trim(1)
	var names []string
	for _, s := range r.Processes[0].Stacks {
		names = append(names, s.Frames[0].Function)
	}
	if len(names) != 3 || names[0] != "big" || names[1] != "leak" || names[2] != OtherStacks {
		t.Errorf("Trim(1) with a leak kept %v, want big, leak and %s", names, OtherStacks)
	}
}
