package aggregate

import (
	"cmp"
	"slices"

	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/symbolize"
)

// stacksPerExited is how many stacks the exited images kept apart may
// hold on average: one with more stacks leaves room for fewer others.
const stacksPerExited = 4

// Fold bounds the memory exited images take on a long run: past
// max_exited_processes images, or stacksPerExited times as many stacks
// among them, the oldest are folded, per executable, into one record that
// sums their stacks (matched by their frames), histograms and totals, until
// half of each is left. Images whose allocations still wait in the kernel's
// live map (Ended) are kept apart until the sweep is done with them.
func (a *Aggregate) Fold() {
	images := a.cfg.MaxExitedProcesses
	stacks := stacksPerExited * images
	held := 0
	for _, p := range a.done {
		held += len(p.stacks)
	}
	if len(a.done) <= images && held <= stacks {
		return
	}
	waiting := make(map[uint32]bool, len(a.ended))
	for _, img := range a.ended {
		waiting[img.Pid] = true
	}
	var kept []*image
	for i, p := range a.done {
		if len(a.done)-i <= images/2 && held <= stacks/2 {
			kept = append(kept, a.done[i:]...)
			break
		}
		if waiting[p.pid] {
			kept = append(kept, p)
			continue
		}
		held -= len(p.stacks)
		a.foldInto(p)
	}
	a.done = kept
	a.compactRetired()
}

// otherExecutables names the folded record of the executables past
// max_exited_processes folded records.
const otherExecutables = "[other executables]"

// foldInto adds exited image p to the folded record of its executable. The
// folded records hold at most max_stacks distinct stacks: the aggregates of
// stacks past them are summed under otherStack, and counted.
func (a *Aggregate) foldInto(p *image) {
	exe := p.Exe
	if a.folded[exe] == nil && len(a.folded) >= a.cfg.MaxExitedProcesses {
		exe = otherExecutables
	}
	f := a.folded[exe]
	if f == nil {
		f = foldedRecord(p, true)
		f.Exe = exe
		a.folded[exe] = f
	}
	f.merge(p, func(hash uint64) uint64 {
		// Frames are known by the first hash of each distinct stack; the
		// image's own hashes are no longer needed.
		first := a.retired.distinct[stackKeyOf(a.retired.byHash[hash])]
		if first != hash {
			delete(a.retired.byHash, hash)
		}
		if !a.retired.folded[first] {
			if len(a.retired.folded) >= a.cfg.MaxStacks {
				a.spilled++
				return otherStack
			}
			a.retired.folded[first] = true
		}
		return first
	})
}

// compactRetired forgets the frames of stacks that neither an exited image
// kept apart nor a folded record holds any more.
func (a *Aggregate) compactRetired() {
	old := a.retired
	a.retired = newRetiredStacks()
	keep := func(hash uint64) {
		locs, ok := old.byHash[hash]
		if !ok {
			return
		}
		a.retired.byHash[hash] = locs
		if key := stackKeyOf(locs); a.retired.distinct[key] == 0 {
			a.retired.distinct[key] = hash
		}
	}
	// The folded records' hashes first: each stays the first of its frames.
	for _, f := range a.folded {
		for k := range f.stacks {
			if old.folded[k.stack] {
				keep(k.stack)
				a.retired.folded[k.stack] = true
			}
		}
	}
	for _, p := range a.done {
		for k := range p.stacks {
			keep(k.stack)
		}
	}
}

// foldLive returns the live images a report keeps apart: at most
// max_targets, those that allocated the most bytes. The others are summed,
// per executable, into copies of the folded records, which it returns in
// folded, so that a host with many processes running still gets a report
// of bounded size.
func (a *Aggregate) foldLive(cache map[uint64][]symbolize.Location) (apart []*image, folded map[string]*image) {
	folded = make(map[string]*image, len(a.folded))
	for exe, f := range a.folded {
		folded[exe] = f
	}
	for _, p := range a.live {
		if len(p.stacks) > 0 && !p.denied {
			apart = append(apart, p)
		}
	}
	limit := a.cfg.MaxTargets
	if len(apart) <= limit {
		return apart, folded
	}
	slices.SortFunc(apart, func(x, y *image) int {
		return cmp.Or(cmp.Compare(y.own.AllocBytes, x.own.AllocBytes), cmp.Compare(x.pid, y.pid))
	})
	// A live stack's frames are still in the kernel, under a hash of its
	// own: stacks are matched by their frames, the first hash standing for all.
	first := make(map[string]uint64)
	canon := func(hash uint64) uint64 {
		key := stackKeyOf(a.stack(hash, cache))
		if h, ok := a.retired.distinct[key]; ok {
			return h
		}
		if h, ok := first[key]; ok {
			return h
		}
		first[key] = hash
		return hash
	}
	copied := make(map[string]bool)
	for _, p := range apart[limit:] {
		f := folded[p.Exe]
		switch {
		case f == nil:
			f = foldedRecord(p, false)
		case !copied[p.Exe]:
			f = f.copy()
			f.exited = false
		}
		copied[p.Exe] = true
		folded[p.Exe] = f
		f.merge(p, canon)
	}
	return apart[:limit], folded
}

// foldedRecord returns an empty record to fold images of p's executable into.
func foldedRecord(p *image, exited bool) *image {
	f := newImage(0)
	f.Exe, f.Cgroup, f.exited = p.Exe, p.Cgroup, exited
	return f
}

// copy returns a copy of folded record f that can be merged into without changing f.
func (f *image) copy() *image {
	c := *f
	c.stacks = make(map[stackKey]*sink.Counts, len(f.stacks))
	for k, v := range f.stacks {
		cv := *v
		c.stacks[k] = &cv
	}
	return &c
}

// merge adds image p's aggregates to folded record f, each stack under
// the hash canon gives its own.
func (f *image) merge(p *image, canon func(uint64) uint64) {
	if f.Cgroup != p.Cgroup {
		f.Cgroup = ""
	}
	f.folded += max(p.folded, 1)
	for k, c := range p.stacks {
		if k.stack != 0 {
			k.stack = canon(k.stack)
		}
		fc := f.stacks[k]
		if fc == nil {
			fc = new(sink.Counts)
			f.stacks[k] = fc
		}
		fc.Add(*c)
	}
	f.own.Add(p.own)
	for i := range f.sizes {
		f.sizes[i] += p.sizes[i]
		f.lifetimes[i] += p.lifetimes[i]
	}
}
