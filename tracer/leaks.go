package tracer

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/tracer/aggregate"
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
			t.agg.Leak(liveEvent(k, v))
		}
	})
}

// leakCutoff is the kernel time (CLOCK_MONOTONIC ns) before which an
// allocation made is at least minAge old now.
func leakCutoff(minAge time.Duration) (uint64, error) {
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		return 0, fmt.Errorf("read the clock: %w", err)
	}
	return aggregate.LeakCutoff(time.Duration(now.Nano()), minAge), nil
}

// liveEvent is allocation v of process k.Tgid in the kernel's live map, as
// the aggregate counts it.
func liveEvent(k bpf.AllocLiveKey, v bpf.AllocLive) aggregate.Event {
	return aggregate.Event{Pid: k.Tgid, Probe: v.Probe, Stack: v.Stack, Size: v.Size, Weight: v.Weight}
}
