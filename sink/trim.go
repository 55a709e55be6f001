package sink

import (
	"cmp"
	"slices"
)

// OtherStacks is the one frame of the stack Trim sums a process's smaller stacks into.
const OtherStacks = "[other stacks]"

// Trim keeps in each process its max stacks that allocated the most bytes
// and sums the others, with any it summed before, into one stack whose only
// frame is OtherStacks, so every count and total stays exact. It returns
// how many stacks it merged, and adds them to r.TrimmedStacks.
func (r *Report) Trim(max int) int {
	merged := 0
	for i := range r.Processes {
		p := &r.Processes[i]
		other := Stack{Frames: []Frame{{Function: OtherStacks}}}
		var stacks []Stack
		for _, s := range p.Stacks {
			if len(s.Frames) == 1 && s.Frames[0].Function == OtherStacks {
				other.Add(s.Counts)
				continue
			}
			stacks = append(stacks, s)
		}
		if len(stacks) <= max {
			continue
		}
		slices.SortStableFunc(stacks, func(a, b Stack) int {
			return cmp.Or(cmp.Compare(b.AllocBytes, a.AllocBytes), cmp.Compare(b.Allocs, a.Allocs))
		})
		for _, s := range stacks[max:] {
			other.Add(s.Counts)
		}
		merged += len(stacks) - max
		p.Stacks = append(stacks[:max:max], other)
	}
	r.TrimmedStacks += merged
	return merged
}

// MostStacks returns the largest number of stacks one process of r has.
func (r *Report) MostStacks() int {
	most := 0
	for _, p := range r.Processes {
		most = max(most, len(p.Stacks))
	}
	return most
}
