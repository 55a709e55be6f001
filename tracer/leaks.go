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
	cutoff, err := leakCutoff(minAge)
	if err != nil {
		return err
	}
	return t.eachLive(func(k bpf.AllocLiveKey, v bpf.AllocLive) {
		if v.Ts <= cutoff {
			t.countLeak(k, v)
		}
	})
}

// leakCutoff is the kernel time (CLOCK_MONOTONIC ns) before which an
// allocation made is at least minAge old now: 0, before any allocation,
// when the host has not been up for minAge.
func leakCutoff(minAge time.Duration) (uint64, error) {
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		return 0, fmt.Errorf("read the clock: %w", err)
	}
	return uint64(max(now.Nano()-minAge.Nanoseconds(), 0)), nil
}

// countLeak adds live allocation v of process k.Tgid to its stack as leaked.
func (t *Tracer) countLeak(k bpf.AllocLiveKey, v bpf.AllocLive) {
	c := t.leakCounts(k.Tgid, stackKey{probe: v.Probe, stack: v.Stack})
	if c == nil {
		return
	}
	w := uint64(max(v.Weight, 1))
	c.LeakedObjects += w
	c.LeakedBytes += v.Size * w
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
