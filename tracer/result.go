package tracer

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/symbolize"
)

// Result is what one run of the tracer saw: aggregates per process image and
// stack, and everything that was dropped.
type Result struct {
	Duration  time.Duration
	Dropped   Dropped
	Processes []Process
	Skipped   int    // process images the policy denied
	Allocs    uint64 // allocation events received (each may stand for several when sampled)
	// LeakAge is the age past which live allocations were reported as leaked; 0 without leaks.
	LeakAge time.Duration
	// SampleBytes is Config.SampleBytes: counts are estimates if it is not 0.
	SampleBytes uint64
	// Programs are the BPF programs that ran, with how often and for how long.
	Programs []ProgramStats
	// FoldedStacks counts the aggregates of folded images summed into an
	// Other stack, past the max_stacks distinct stacks folded images keep.
	FoldedStacks int
}

// ProgramStats is how often one of mtrace's BPF programs ran, and its total
// run time, while the kernel's BPF statistics were on: a tenth of the time
// (see budget), or all of it if something else keeps them on.
type ProgramStats struct {
	Name    string
	Runs    uint64
	Runtime time.Duration
}

// Dropped counts what the tracer could not record. LostEvents are events the
// kernel had to drop because the ring buffer was full.
type Dropped struct {
	LostEvents  uint64 // ring buffer full
	LostAllocs  uint64 // of LostEvents, allocations
	LiveFull    uint64 // live-allocation map full: a later free cannot be matched
	StacksFull  uint64 // stack map full: allocations kept without their stack
	StackErrors uint64 // user stack could not be walked, or not yet resolved to files (mmap lock busy)
	CallsFull   uint64 // in-flight call map full: calls not traced
	TargetsFull uint64 // target map full (max_targets): children of traced processes not traced
	Unheard     uint64 // fork or exec events lost while the policy may deny: those processes excluded
	Malformed   uint64 // ring-buffer records that did not decode
	// SampledOut counts allocations left out above the event-rate limit;
	// the weights of those kept stand for them.
	SampledOut uint64
	// Unsampled counts allocations byte sampling left out, likewise.
	Unsampled uint64
}

// Process is one traced process image and its allocation stacks, largest first.
type Process struct {
	Pid        int
	Exe        string
	Argv0      string
	Cgroup     string
	Exited     bool     // exited (or exec'd, for an image that is not the last) while traced
	Folded     int      // if not 0: the sum of this many images of Exe, folded to bound memory (Pid is 0; see Tracer.fold and foldLive)
	Allocators []string // modules whose allocation functions it called, most allocations first
	Stacks     []Stack
	// SizeHistogram counts allocations by size: bucket i holds sizes below 2^i
	// (and at least 2^(i-1)). LifetimeHistogram counts frees likewise by how
	// many nanoseconds the allocation lived.
	SizeHistogram, LifetimeHistogram [65]uint64
	Timeline                         []TimelinePoint
}

// Stack is the aggregate of one allocation function called from one stack.
type Stack struct {
	Function  string               // allocation function called, e.g. malloc or operator new(unsigned long)
	Module    string               // module that defines it
	Locations []symbolize.Location // the callers, innermost (the direct caller) first; empty if unknown
	// Other says this is the sum of a folded record's stacks past max_stacks; it has no Locations.
	Other bool
	Counts
}

// result gathers the aggregates and counters into a Result.
func (t *Tracer) result() (*Result, error) {
	r := &Result{Duration: time.Since(t.started)}
	if err := t.readCounters(&r.Dropped); err != nil {
		return nil, err
	}
	r.Dropped.Malformed = t.malformed
	r.Skipped = t.skipped
	r.FoldedStacks = t.spilled
	r.Allocs = t.allocs
	r.Programs = t.programStats()
	r.SampleBytes = t.cfg.SampleBytes
	if t.cfg.Leaks {
		r.LeakAge = t.cfg.LeakAge
	}
	stacks := make(map[uint64][]symbolize.Location)
	live, folded := t.foldLive(stacks)
	images := append([]*process(nil), t.done...)
	for _, exe := range slices.Sorted(maps.Keys(folded)) {
		images = append(images, folded[exe])
	}
	images = append(images, live...)
	for _, p := range images {
		if len(p.stacks) == 0 || p.denied {
			continue
		}
		out := Process{Pid: int(p.pid), Exe: p.exe, Argv0: p.argv0, Cgroup: p.cgroup, Exited: p.exited, Folded: p.folded,
			SizeHistogram: p.sizes, LifetimeHistogram: p.lifetimes, Timeline: p.timeline}
		allocs := make(map[string]uint64)
		for k, c := range p.stacks {
			s := Stack{Function: "[unknown]", Counts: *c, Locations: t.stack(k.stack, stacks), Other: k.stack == otherStack}
			if function, module, ok := t.attach.Probe(k.probe); ok {
				s.Function, s.Module = function, module
				allocs[s.Module] += c.Allocs
			}
			out.Stacks = append(out.Stacks, s)
		}
		for m := range allocs {
			out.Allocators = append(out.Allocators, m)
		}
		sort.Slice(out.Allocators, func(i, j int) bool {
			a, b := out.Allocators[i], out.Allocators[j]
			return allocs[a] > allocs[b] || (allocs[a] == allocs[b] && a < b)
		})
		sort.Slice(out.Stacks, func(i, j int) bool {
			a, b := out.Stacks[i], out.Stacks[j]
			if a.AllocBytes != b.AllocBytes {
				return a.AllocBytes > b.AllocBytes
			}
			if a.Allocs != b.Allocs {
				return a.Allocs > b.Allocs
			}
			return a.Function+a.Module < b.Function+b.Module || (a.Function+a.Module == b.Function+b.Module && len(a.Locations) < len(b.Locations))
		})
		r.Processes = append(r.Processes, out)
	}
	sort.SliceStable(r.Processes, func(i, j int) bool { return r.Processes[i].Pid < r.Processes[j].Pid })
	return r, nil
}

// readCounters sums the kernel's per-CPU drop counters.
func (t *Tracer) readCounters(d *Dropped) error {
	for idx, dst := range map[bpf.AllocCounter]*uint64{
		bpf.AllocCounterCOUNTER_LOST_EVENTS:  &d.LostEvents,
		bpf.AllocCounterCOUNTER_LOST_ALLOCS:  &d.LostAllocs,
		bpf.AllocCounterCOUNTER_LIVE_FULL:    &d.LiveFull,
		bpf.AllocCounterCOUNTER_STACKS_FULL:  &d.StacksFull,
		bpf.AllocCounterCOUNTER_STACK_ERRORS: &d.StackErrors,
		bpf.AllocCounterCOUNTER_CALLS_FULL:   &d.CallsFull,
		bpf.AllocCounterCOUNTER_SAMPLED_OUT:  &d.SampledOut,
		bpf.AllocCounterCOUNTER_UNSAMPLED:    &d.Unsampled,
		bpf.AllocCounterCOUNTER_TARGETS_FULL: &d.TargetsFull,
		bpf.AllocCounterCOUNTER_UNHEARD:      &d.Unheard,
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
