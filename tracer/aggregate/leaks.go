package aggregate

import (
	"time"

	"github.com/mtrace/mtrace/sink"
)

// LeakCutoff is the time since boot (the kernel's CLOCK_MONOTONIC, which
// stamps allocations) before which an allocation is at least minAge old at
// now: 0, before any allocation, when the host has not been up for minAge.
func LeakCutoff(now, minAge time.Duration) uint64 {
	return uint64(max(now-minAge, 0))
}

// Leak counts allocation e, still live and old enough, as leaked, in the
// latest image of its process that has its stack; one no image has is
// left out.
func (a *Aggregate) Leak(e Event) {
	c := a.leakCounts(e.Pid, stackKey{probe: e.Probe, stack: e.Stack})
	if c == nil {
		return
	}
	w := uint64(max(e.Weight, 1))
	c.LeakedObjects += w
	c.LeakedBytes += e.Size * w
}

// leakCounts returns the counts of a stack of pid's latest image that has it.
func (a *Aggregate) leakCounts(pid uint32, k stackKey) *sink.Counts {
	if p := a.live[pid]; p != nil && p.stacks[k] != nil {
		return p.stacks[k]
	}
	for i := len(a.done) - 1; i >= 0; i-- {
		if p := a.done[i]; p.pid == pid && p.stacks[k] != nil {
			return p.stacks[k]
		}
	}
	return nil
}
