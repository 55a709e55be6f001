package tracer

import (
	"sort"
	"sync"
	"time"

	"github.com/mtrace/mtrace/symbolize"
)

// maxExecutables bounds the executables Stats names: metric labels must
// stay few. The rest are summed under "other".
const maxExecutables = 100

// Stats is a snapshot of a run in progress, for metrics.
type Stats struct {
	Events     uint64 // allocation events received
	Lost       uint64 // events lost to a full ring buffer
	SampledOut uint64 // allocations left out by sampling
	Skipped    int    // process images the policy denied
	Processes  int    // processes being traced now
	// Executables are totals per executable path, largest allocators first.
	Executables []ExecutableStats
	// TopStacks are the stacks that allocated the most bytes so far.
	TopStacks []TopStack
}

// TopStack is one of the busiest stacks, with the process that has it.
type TopStack struct {
	Pid int
	Exe string
	Stack
}

// topStacks is how many stacks Stats keeps.
const topStacks = 20

// ExecutableStats are the totals of all traced processes of one executable.
type ExecutableStats struct {
	Exe string
	Counts
}

// stats keeps the latest snapshot for readers on other goroutines.
type stats struct {
	mu    sync.Mutex
	last  Stats
	taken time.Time
	byExe map[string]*Counts // updated by the reader loop only
}

// Stats returns the latest snapshot; Run refreshes it every second. It is
// safe for concurrent use.
func (t *Tracer) Stats() Stats {
	t.stats.mu.Lock()
	defer t.stats.mu.Unlock()
	return t.stats.last
}

// exeTotals returns the running totals of an executable.
func (t *Tracer) exeTotals(exe string) *Counts {
	if exe == "" {
		exe = "[unknown]"
	}
	if t.stats.byExe == nil {
		t.stats.byExe = make(map[string]*Counts)
	}
	c := t.stats.byExe[exe]
	if c == nil {
		c = new(Counts)
		t.stats.byExe[exe] = c
	}
	return c
}

// snapshot publishes the current totals, at most once a second.
func (t *Tracer) snapshot() {
	if time.Since(t.stats.taken) < time.Second {
		return
	}
	t.stats.taken = time.Now()
	elapsed := time.Since(t.started).Seconds()
	for _, p := range t.live {
		if !p.denied {
			p.sample(elapsed)
		}
	}
	s := Stats{Events: t.allocs, Skipped: t.skipped, Processes: len(t.live)}
	var d Dropped
	if t.readCounters(&d) == nil {
		s.Lost, s.SampledOut = d.LostEvents, d.SampledOut
	}
	for exe, c := range t.stats.byExe {
		s.Executables = append(s.Executables, ExecutableStats{Exe: exe, Counts: *c})
	}
	sort.Slice(s.Executables, func(i, j int) bool {
		a, b := s.Executables[i], s.Executables[j]
		return a.AllocBytes > b.AllocBytes || (a.AllocBytes == b.AllocBytes && a.Exe < b.Exe)
	})
	if len(s.Executables) > maxExecutables {
		other := ExecutableStats{Exe: "other"}
		for _, e := range s.Executables[maxExecutables-1:] {
			other.add(e.Counts)
		}
		s.Executables = append(s.Executables[:maxExecutables-1], other)
	}
	s.TopStacks = t.topStacks()
	t.stats.mu.Lock()
	t.stats.last = s
	t.stats.mu.Unlock()
}

// topStacks returns the stacks of the live processes that allocated the most bytes.
func (t *Tracer) topStacks() []TopStack {
	type ranked struct {
		p *process
		k stackKey
		c *Counts
	}
	var all []ranked
	for _, p := range t.live {
		for k, c := range p.stacks {
			all = append(all, ranked{p, k, c})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].c.AllocBytes > all[j].c.AllocBytes })
	locs := make(map[uint64][]symbolize.Location)
	var out []TopStack
	for _, r := range all[:min(len(all), topStacks)] {
		s := Stack{Function: "[unknown]", Counts: *r.c, Locations: t.stack(r.k.stack, locs)}
		if function, module, ok := t.attach.Probe(r.k.probe); ok {
			s.Function, s.Module = function, module
		}
		out = append(out, TopStack{Pid: int(r.p.pid), Exe: r.p.exe, Stack: s})
	}
	return out
}
