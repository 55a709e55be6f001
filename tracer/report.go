package tracer

import (
	"fmt"
	"time"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/sink"
)

// ProgramStats is how often one of mtrace's BPF programs ran, and its total
// run time, while the kernel's BPF statistics were on: a tenth of the time
// (see budget), or all of it if something else keeps them on.
type ProgramStats struct {
	Name    string
	Runs    uint64
	Runtime time.Duration
}

// report builds the report so far from the aggregate and the kernel's counters.
func (t *Tracer) report() (*sink.Report, error) {
	head := sink.Report{DurationSeconds: time.Since(t.started).Seconds(), SampleBytes: t.cfg.SampleBytes}
	if err := t.readCounters(&head); err != nil {
		return nil, err
	}
	head.Dropped.Malformed = t.malformed
	if t.cfg.Leaks {
		head.LeakMinAgeSeconds = t.cfg.LeakAge.Seconds()
	}
	return t.agg.Report(head), nil
}

// readCounters sums the kernel's per-CPU drop counters into r.
func (t *Tracer) readCounters(r *sink.Report) error {
	for idx, dst := range map[bpf.AllocCounter]*uint64{
		bpf.AllocCounterCOUNTER_LOST_EVENTS:  &r.LostEvents,
		bpf.AllocCounterCOUNTER_LOST_ALLOCS:  &r.LostAllocations,
		bpf.AllocCounterCOUNTER_LIVE_FULL:    &r.Dropped.LiveMapFull,
		bpf.AllocCounterCOUNTER_STACKS_FULL:  &r.Dropped.StackMapFull,
		bpf.AllocCounterCOUNTER_STACK_ERRORS: &r.Dropped.StackErrors,
		bpf.AllocCounterCOUNTER_CALLS_FULL:   &r.Dropped.CallsFull,
		bpf.AllocCounterCOUNTER_SAMPLED_OUT:  &r.SampledOut,
		bpf.AllocCounterCOUNTER_UNSAMPLED:    &r.Unsampled,
		bpf.AllocCounterCOUNTER_TARGETS_FULL: &r.Dropped.TargetsFull,
		bpf.AllocCounterCOUNTER_UNHEARD:      &r.Dropped.Unheard,
	} {
		var perCPU []uint64
		if err := t.objs.Counters.Lookup(uint32(idx), &perCPU); err != nil {
			return fmt.Errorf("read counter %d: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return nil
}
