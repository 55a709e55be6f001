package sink

import (
	"cmp"
	"slices"
)

// OtherStacks is the one frame of the stack Trim sums a process's smaller stacks into.
const OtherStacks = "[other stacks]"

// Trim keeps in each process the stacks among its max largest by bytes
// leaked, by bytes live, or by bytes allocated (so neither a leak nor a
// large user of memory is hidden), and sums the others, with any it summed
// before, into one stack whose only frame is OtherStacks: every count and
// total stays exact. It returns how many stacks it merged, and adds them to
// r.TrimmedStacks.
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
		keep := make([]bool, len(stacks))
		order := make([]int, len(stacks))
		for _, bytes := range []func(Stack) uint64{
			func(s Stack) uint64 { return s.LeakedBytes },
			func(s Stack) uint64 { return s.LiveBytes },
			func(s Stack) uint64 { return s.AllocBytes },
		} {
			for j := range order {
				order[j] = j
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(bytes(stacks[b]), bytes(stacks[a])) })
			for _, j := range order[:max] {
				keep[j] = keep[j] || bytes(stacks[j]) > 0
			}
		}
		var kept []Stack
		for j, s := range stacks {
			if keep[j] {
				kept = append(kept, s)
			} else {
				other.Add(s.Counts)
				merged++
			}
		}
		p.Stacks = append(kept, other)
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
