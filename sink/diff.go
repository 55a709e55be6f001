package sink

import (
	"sort"
	"strings"
)

// Diff returns what grew from base to r: per executable (pids differ
// between runs) and per stack (by its frames' functions, so call sites that
// differ only in line are one), the allocations, bytes and live memory r has
// beyond base. Stacks that did not grow are left out; the run metadata is r's.
func Diff(r, base *Report) *Report {
	type key struct{ exe, stack string }
	stackKey := func(s Stack) string {
		names := make([]string, len(s.Frames))
		for i, f := range s.Frames {
			names[i] = f.Function
		}
		return strings.Join(names, "\x00")
	}
	old := make(map[key]Counts)
	for _, p := range base.Processes {
		for _, s := range p.Stacks {
			k := key{p.Exe, stackKey(s)}
			c := old[k]
			c.Add(s.Counts)
			old[k] = c
		}
	}
	// Sum r's stacks by key too: several call sites can share one list of functions.
	type sum struct {
		proc   *Process
		frames []Frame
		counts Counts
	}
	var order []key
	sums := make(map[key]*sum)
	for i := range r.Processes {
		p := &r.Processes[i]
		for _, s := range p.Stacks {
			k := key{p.Exe, stackKey(s)}
			if sums[k] == nil {
				sums[k] = &sum{proc: p, frames: s.Frames}
				order = append(order, k)
			}
			sums[k].counts.Add(s.Counts)
		}
	}
	out := *r
	out.Processes = nil
	byExe := make(map[string]*Process)
	for _, k := range order {
		sm := sums[k]
		grown := sm.counts.minus(old[k])
		if grown.AllocBytes == 0 && grown.Allocs == 0 && grown.LiveBytes == 0 {
			continue
		}
		dp := byExe[k.exe]
		if dp == nil {
			p := sm.proc
			dp = &Process{Pid: p.Pid, Exe: p.Exe, Argv0: p.Argv0, Cgroup: p.Cgroup, Allocator: p.Allocator, Allocators: p.Allocators}
			byExe[k.exe] = dp
		}
		dp.Stacks = append(dp.Stacks, Stack{Frames: sm.frames, Counts: grown})
		dp.Totals.Add(grown)
	}
	for _, p := range byExe {
		sort.Slice(p.Stacks, func(i, j int) bool { return p.Stacks[i].AllocBytes > p.Stacks[j].AllocBytes })
		out.Processes = append(out.Processes, *p)
	}
	sort.Slice(out.Processes, func(i, j int) bool { return out.Processes[i].Exe < out.Processes[j].Exe })
	return &out
}
