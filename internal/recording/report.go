package recording

import (
	"fmt"
	"math"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
	"github.com/mtrace/mtrace/tracer"
)

// buildReport symbolizes the tracer's result into the report sinks write.
func buildReport(res *tracer.Result, sym *symbolize.Symbolizer) *sink.Report {
	r := &sink.Report{
		Schema:          sink.Schema,
		DurationSeconds: res.Duration.Seconds(),
		LostEvents:      res.Dropped.LostEvents,
		LostAllocations: res.Dropped.LostAllocs,
		Dropped: sink.Dropped{
			LiveMapFull:  res.Dropped.LiveFull,
			StackMapFull: res.Dropped.StacksFull,
			StackErrors:  res.Dropped.StackErrors,
			CallsFull:    res.Dropped.CallsFull,
			Malformed:    res.Dropped.Malformed,
			TargetsFull:  res.Dropped.TargetsFull,
			Unheard:      res.Dropped.Unheard,
		},
		SkippedProcesses:  res.Skipped,
		FoldedStacks:      res.FoldedStacks,
		SampledOut:        res.Dropped.SampledOut,
		SampleBytes:       res.SampleBytes,
		Unsampled:         res.Dropped.Unsampled,
		LeakMinAgeSeconds: res.LeakAge.Seconds(),
		AllocationEvents:  res.Allocs,
		Processes:         []sink.Process{},
	}
	frames := frameCache{sym: sym, byStack: make(map[string][]sink.Frame)}
	for _, p := range res.Processes {
		sp := sink.Process{Pid: p.Pid, Exe: p.Exe, Argv0: p.Argv0, Cgroup: p.Cgroup, Exited: p.Exited, FoldedProcesses: p.Folded,
			Allocators: p.Allocators, Stacks: []sink.Stack{}}
		if len(p.Allocators) > 0 {
			sp.Allocator = p.Allocators[0]
		}
		sp.SizeHistogram, sp.LifetimeHistogram = buckets(p.SizeHistogram), buckets(p.LifetimeHistogram)
		for _, pt := range p.Timeline {
			sp.Timeline = append(sp.Timeline, sink.Point{Seconds: pt.Seconds, LiveBytes: pt.LiveBytes})
		}
		for _, s := range p.Stacks {
			st := sink.Stack{
				Frames: frames.of(s),
				Counts: sink.Counts{
					Allocs: s.Allocs, AllocBytes: s.AllocBytes,
					Frees: s.Frees, FreeBytes: s.FreeBytes,
					LiveObjects: s.LiveObjects(), LiveBytes: s.LiveBytes(),
					LeakedObjects: s.LeakedObjects, LeakedBytes: s.LeakedBytes,
				},
			}
			sp.Totals.Add(st.Counts)
			sp.Stacks = append(sp.Stacks, st)
		}
		r.FoldedProcesses += p.Folded
		r.Processes = append(r.Processes, sp)
	}
	return r
}

// frameCache symbolizes each distinct stack once: the same stack in many
// processes shares one slice of frames, which no writer changes, so that a
// report's memory does not grow with its processes times their frames.
type frameCache struct {
	sym     *symbolize.Symbolizer
	byStack map[string][]sink.Frame
}

// of returns the frames of s: the allocation function, then its callers.
func (c frameCache) of(s tracer.Stack) []sink.Frame {
	if s.Other {
		return []sink.Frame{{Function: sink.OtherStacks}}
	}
	key := fmt.Appendf(nil, "%s\x00%s", s.Function, s.Module)
	for _, l := range s.Locations {
		key = fmt.Appendf(key, "\x00%v", l)
	}
	if frames, ok := c.byStack[string(key)]; ok {
		return frames
	}
	frames := []sink.Frame{{Function: s.Function, Module: s.Module}}
	for _, f := range c.sym.Frames(s.Locations) {
		frames = append(frames, sink.Frame(f))
	}
	c.byStack[string(key)] = frames
	return frames
}

// buckets keeps the non-empty buckets of a log2 histogram: bucket i holds
// values below 2^i.
func buckets(h [65]uint64) []sink.Bucket {
	var out []sink.Bucket
	for i, n := range h {
		if n > 0 {
			below := uint64(math.MaxUint64)
			if i < 64 {
				below = 1 << i
			}
			out = append(out, sink.Bucket{Below: below, Count: n})
		}
	}
	return out
}
