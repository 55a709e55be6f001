package tracer

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/tracer/aggregate"
)

// sweepCost is the share of time sweep may take: it waits this many times
// as long as it last ran before it runs again.
const sweepCost = 20

// sweep deletes from the kernel's live map the allocations of images that
// exec'd or exited: nothing can free them any more, and over a long run on
// a busy host they would fill the map. With --leaks, those old enough to
// count as leaked are counted first, and younger ones stay until they are
// (or the run ends and leaks looks at them). It runs at most one
// twentieth of the time, however large the map.
func (t *Tracer) sweep() error {
	if len(t.agg.Ended()) == 0 || time.Since(t.swept) < t.sweepGap {
		return nil
	}
	start := time.Now()
	ended := make(map[aggregate.Ended]bool, len(t.agg.Ended()))
	for _, img := range t.agg.Ended() {
		ended[img] = true
	}
	var cutoff uint64
	if t.cfg.Leaks {
		var err error
		if cutoff, err = leakCutoff(t.cfg.LeakAge); err != nil {
			return err
		}
	}
	type entry struct {
		k bpf.AllocLiveKey
		v bpf.AllocLive
	}
	var doomed []entry
	waiting := make(map[aggregate.Ended]bool)
	err := t.eachLive(func(k bpf.AllocLiveKey, v bpf.AllocLive) {
		img := aggregate.Ended{Pid: k.Tgid, Gen: k.Gen}
		switch {
		case !ended[img]:
		case t.cfg.Leaks && v.Ts > cutoff:
			waiting[img] = true
		default:
			doomed = append(doomed, entry{k, v})
		}
	})
	if err != nil {
		return err
	}
	for _, d := range doomed {
		err := t.objs.Live.Delete(d.k)
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete a live allocation of pid %d: %w", d.k.Tgid, err)
		}
		if err == nil && t.cfg.Leaks {
			t.agg.Leak(liveEvent(d.k, d.v))
		}
	}
	t.agg.Swept(slices.Collect(maps.Keys(waiting)))
	t.swept = time.Now()
	t.sweepGap = max(pollInterval, sweepCost*t.swept.Sub(start))
	return nil
}
