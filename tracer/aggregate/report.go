package aggregate

import (
	"maps"
	"math"
	"slices"
	"sort"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
)

// Report builds the report of everything recorded so far onto head, which
// holds what the tracer knows of the run (its duration, what the kernel
// dropped, sampling and leak settings). Its processes are the images that
// ended, the folded records by executable and the running images, in that
// order within a pid, sorted by pid; each has its stacks, largest first.
func (a *Aggregate) Report(head sink.Report) *sink.Report {
	r := &head
	r.Schema = sink.Schema
	r.AllocationEvents = a.allocs
	r.SkippedProcesses = a.skipped
	r.FoldedStacks = a.spilled
	r.Processes = []sink.Process{}
	locs := make(map[uint64][]symbolize.Location)
	f := a.newFrames(locs)
	live, folded := a.foldLive(locs)
	images := append([]*image(nil), a.done...)
	for _, exe := range slices.Sorted(maps.Keys(folded)) {
		images = append(images, folded[exe])
	}
	images = append(images, live...)
	for _, p := range images {
		if len(p.stacks) == 0 || p.denied {
			continue
		}
		r.Processes = append(r.Processes, a.process(p, f))
		r.FoldedProcesses += p.folded
	}
	sort.SliceStable(r.Processes, func(i, j int) bool { return r.Processes[i].Pid < r.Processes[j].Pid })
	return r
}

// process returns the report of image p. Its timeline is a copy: the run
// goes on sampling p's while the report is written.
func (a *Aggregate) process(p *image, f frames) sink.Process {
	out := sink.Process{Pid: int(p.pid), Exe: p.Exe, Argv0: p.Argv0, Cgroup: p.Cgroup, Exited: p.exited, FoldedProcesses: p.folded,
		SizeHistogram: buckets(p.sizes), LifetimeHistogram: buckets(p.lifetimes), Timeline: slices.Clone(p.timeline), Stacks: []sink.Stack{}}
	type entry struct {
		k     stackKey
		c     sink.Counts
		name  string // the allocation function and its module
		depth int    // the callers known
	}
	var entries []entry
	allocs := make(map[string]uint64)
	for k, c := range p.stacks {
		function, module, ok := a.probe(k.probe)
		if ok {
			allocs[module] += c.Allocs
		}
		entries = append(entries, entry{k, *c, function + module, len(a.stack(k.stack, f.locs))})
	}
	for m := range allocs {
		out.Allocators = append(out.Allocators, m)
	}
	sort.Slice(out.Allocators, func(i, j int) bool {
		x, y := out.Allocators[i], out.Allocators[j]
		return allocs[x] > allocs[y] || (allocs[x] == allocs[y] && x < y)
	})
	if len(out.Allocators) > 0 {
		out.Allocator = out.Allocators[0]
	}
	sort.Slice(entries, func(i, j int) bool {
		x, y := entries[i], entries[j]
		if x.c.AllocBytes != y.c.AllocBytes {
			return x.c.AllocBytes > y.c.AllocBytes
		}
		if x.c.Allocs != y.c.Allocs {
			return x.c.Allocs > y.c.Allocs
		}
		return x.name < y.name || (x.name == y.name && x.depth < y.depth)
	})
	for _, e := range entries {
		s := f.stack(e.k, e.c)
		out.Totals.Add(s.Counts)
		out.Stacks = append(out.Stacks, s)
	}
	return out
}

// probe names the allocation function of probe id and its module; "[unknown]" and false for an id the tracer does not know.
func (a *Aggregate) probe(id uint16) (function, module string, ok bool) {
	function, module = a.cfg.Probe(id)
	if function == "" {
		return "[unknown]", "", false
	}
	return function, module, true
}

// frames symbolizes each distinct stack once for one report: the same
// stack in many processes shares one slice of frames, which no writer
// changes, so that a report's memory does not grow with its processes
// times their frames.
type frames struct {
	a       *Aggregate
	locs    map[uint64][]symbolize.Location // stacks read from the kernel, by hash
	byStack map[string][]sink.Frame
}

func (a *Aggregate) newFrames(locs map[uint64][]symbolize.Location) frames {
	return frames{a: a, locs: locs, byStack: make(map[string][]sink.Frame)}
}

// stack returns the report of aggregate k with counts c.
func (f frames) stack(k stackKey, c sink.Counts) sink.Stack {
	c.SetLive()
	return sink.Stack{Frames: f.of(k), Counts: c}
}

// of returns the frames of k: the allocation function, then its callers.
func (f frames) of(k stackKey) []sink.Frame {
	if k.stack == otherStack {
		return []sink.Frame{{Function: sink.OtherStacks}}
	}
	function, module, _ := f.a.probe(k.probe)
	locs := f.a.stack(k.stack, f.locs)
	key := function + "\x00" + module + "\x00" + stackKeyOf(locs)
	if frames, ok := f.byStack[key]; ok {
		return frames
	}
	frames := []sink.Frame{{Function: function, Module: module}}
	for _, fr := range f.a.cfg.Symbolizer.Frames(locs) {
		frames = append(frames, sink.Frame(fr))
	}
	f.byStack[key] = frames
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
