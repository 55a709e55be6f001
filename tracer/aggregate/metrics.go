package aggregate

import (
	"sort"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
)

// maxExecutables bounds the executables Metrics names: metric labels must
// stay few. The rest are summed under "other".
const maxExecutables = 100

// topStacks is how many stacks TopStacks returns.
const topStacks = 20

// exeTotals returns the running totals of an executable.
func (a *Aggregate) exeTotals(exe string) *sink.Counts {
	if exe == "" {
		exe = "[unknown]"
	}
	c := a.byExe[exe]
	if c == nil {
		c = new(sink.Counts)
		a.byExe[exe] = c
	}
	return c
}

// Sample adds the memory each running image has in use now to its timeline.
func (a *Aggregate) Sample() {
	elapsed := a.cfg.Elapsed().Seconds()
	for _, p := range a.live {
		if !p.denied {
			p.sample(elapsed)
		}
	}
}

// Metrics returns the totals so far: events, skipped and running
// processes, and totals per executable. The kernel's counters (Lost,
// SampledOut) and TopStacks are the caller's to fill in.
func (a *Aggregate) Metrics() sink.Metrics {
	m := sink.Metrics{Events: a.allocs, Skipped: a.skipped, Processes: len(a.live)}
	for exe, c := range a.byExe {
		m.Executables = append(m.Executables, sink.ExecutableMetrics{Exe: exe, Counts: *c})
	}
	sort.Slice(m.Executables, func(i, j int) bool {
		x, y := m.Executables[i], m.Executables[j]
		return x.AllocBytes > y.AllocBytes || (x.AllocBytes == y.AllocBytes && x.Exe < y.Exe)
	})
	if len(m.Executables) > maxExecutables {
		other := sink.ExecutableMetrics{Exe: "other"}
		for _, e := range m.Executables[maxExecutables-1:] {
			other.Add(e.Counts)
		}
		m.Executables = append(m.Executables[:maxExecutables-1], other)
	}
	for i := range m.Executables {
		m.Executables[i].SetLive()
	}
	return m
}

// TopStacks returns the stacks of the running images that allocated the
// most bytes, symbolized.
func (a *Aggregate) TopStacks() []sink.TopStack {
	type ranked struct {
		p *image
		k stackKey
		c *sink.Counts
	}
	var all []ranked
	for _, p := range a.live {
		for k, c := range p.stacks {
			all = append(all, ranked{p, k, c})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].c.AllocBytes > all[j].c.AllocBytes })
	f := a.newFrames(make(map[uint64][]symbolize.Location))
	var out []sink.TopStack
	for _, r := range all[:min(len(all), topStacks)] {
		out = append(out, sink.TopStack{Pid: int(r.p.pid), Exe: r.p.Exe, Stack: f.stack(r.k, *r.c)})
	}
	return out
}
