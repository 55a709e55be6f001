package tracer

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/bpf"
)

// leaks reads the allocations still live in the kernel that are older than
// minAge, and adds them to the stacks that made them as leaked. Addresses
// are read to walk the map and never kept.
func (t *Tracer) leaks(minAge time.Duration) error {
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		return fmt.Errorf("read the clock: %w", err)
	}
	cutoff := uint64(now.Nano()) - uint64(minAge.Nanoseconds())
	var k bpf.AllocLiveKey
	var v bpf.AllocLive
	it := t.objs.Live.Iterate()
	for it.Next(&k, &v) {
		if v.Ts > cutoff {
			continue
		}
		c := t.leakCounts(k.Tgid, stackKey{probe: v.Probe, stack: v.Stack})
		if c == nil {
			continue
		}
		w := uint64(max(v.Weight, 1))
		c.LeakedObjects += w
		c.LeakedBytes += v.Size * w
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read live allocations: %w", err)
	}
	return nil
}

// leakCounts returns the counts of a stack of pid's latest image that has it.
func (t *Tracer) leakCounts(pid uint32, k stackKey) *Counts {
	if p := t.live[pid]; p != nil && p.stacks[k] != nil {
		return p.stacks[k]
	}
	for i := len(t.done) - 1; i >= 0; i-- {
		if p := t.done[i]; p.pid == pid && p.stacks[k] != nil {
			return p.stacks[k]
		}
	}
	return nil
}
