package tracer

import (
	"cmp"
	"slices"

	"github.com/mtrace/mtrace/symbolize"
)

// stacksPerExited is how many stacks the exited images kept apart may
// hold on average: one with more stacks leaves room for fewer others.
const stacksPerExited = 4

// fold bounds the memory exited images take on a long run: past the
// policy's max_exited_processes images, or stacksPerExited times as many
// stacks among them, the oldest are folded, per executable, into one
// record that sums their stacks (matched by their frames), histograms and
// totals, until half of each is left. Images whose allocations still wait
// in the live map for a leak count are kept apart until the sweep is done
// with them.
func (t *Tracer) fold() {
	images := int(t.cfg.Policy.Limits.MaxExitedProcesses)
	stacks := stacksPerExited * images
	held := 0
	for _, p := range t.done {
		held += len(p.stacks)
	}
	if len(t.done) <= images && held <= stacks {
		return
	}
	waiting := make(map[uint32]bool, len(t.ended))
	for _, img := range t.ended {
		waiting[img.tgid] = true
	}
	var kept []*process
	for i, p := range t.done {
		if len(t.done)-i <= images/2 && held <= stacks/2 {
			kept = append(kept, t.done[i:]...)
			break
		}
		if waiting[p.pid] {
			kept = append(kept, p)
			continue
		}
		held -= len(p.stacks)
		t.foldInto(p)
	}
	t.done = kept
	t.compactRetired()
}

// otherExecutables names the folded record of the executables past
// max_exited_processes folded records.
const otherExecutables = "[other executables]"

// foldInto adds exited image p to the folded record of its executable. The
// folded records hold at most max_stacks distinct stacks: the aggregates of
// stacks past them are summed under otherStack, and counted.
func (t *Tracer) foldInto(p *process) {
	if t.folded == nil {
		t.folded = make(map[string]*process)
	}
	exe := p.exe
	if t.folded[exe] == nil && len(t.folded) >= int(t.cfg.Policy.Limits.MaxExitedProcesses) {
		exe = otherExecutables
	}
	f := t.folded[exe]
	if f == nil {
		f = foldedRecord(p, true)
		f.exe = exe
		t.folded[exe] = f
	}
	if t.retired.folded == nil {
		t.retired.folded = make(map[uint64]bool)
	}
	f.merge(p, func(hash uint64) uint64 {
		// Frames are known by the first hash of each distinct stack; the
		// image's own hashes are no longer needed.
		first := t.retired.distinct[stackKeyOf(t.retired.byHash[hash])]
		if first != hash {
			delete(t.retired.byHash, hash)
		}
		if !t.retired.folded[first] {
			if len(t.retired.folded) >= int(t.cfg.Policy.Limits.MaxStacks) {
				t.spilled++
				return otherStack
			}
			t.retired.folded[first] = true
		}
		return first
	})
}

// compactRetired forgets the frames of stacks that neither an exited image
// kept apart nor a folded record holds any more.
func (t *Tracer) compactRetired() {
	old := t.retired
	t.retired = retiredStacks{byHash: make(map[uint64][]symbolize.Location), distinct: make(map[string]uint64), folded: make(map[uint64]bool)}
	keep := func(hash uint64) {
		locs, ok := old.byHash[hash]
		if !ok {
			return
		}
		t.retired.byHash[hash] = locs
		if key := stackKeyOf(locs); t.retired.distinct[key] == 0 {
			t.retired.distinct[key] = hash
		}
	}
	// The folded records' hashes first: each stays the first of its frames.
	for _, f := range t.folded {
		for k := range f.stacks {
			if old.folded[k.stack] {
				keep(k.stack)
				t.retired.folded[k.stack] = true
			}
		}
	}
	for _, p := range t.done {
		for k := range p.stacks {
			keep(k.stack)
		}
	}
}

// foldLive returns the live images a result keeps apart: at most
// max_targets, those that allocated the most bytes. The others are summed,
// per executable, into copies of the folded records, which it returns in
// folded, so that a host with many processes running still gets a report
// of bounded size.
func (t *Tracer) foldLive(cache map[uint64][]symbolize.Location) (apart []*process, folded map[string]*process) {
	folded = make(map[string]*process, len(t.folded))
	for exe, f := range t.folded {
		folded[exe] = f
	}
	for _, p := range t.live {
		if len(p.stacks) > 0 && !p.denied {
			apart = append(apart, p)
		}
	}
	limit := int(t.cfg.Policy.Limits.MaxTargets)
	if len(apart) <= limit {
		return apart, folded
	}
	slices.SortFunc(apart, func(a, b *process) int {
		return cmp.Or(cmp.Compare(b.own.AllocBytes, a.own.AllocBytes), cmp.Compare(a.pid, b.pid))
	})
	// A live stack's frames are still in the kernel, under a hash of its
	// own: stacks are matched by their frames, the first hash standing for all.
	first := make(map[string]uint64)
	canon := func(hash uint64) uint64 {
		key := stackKeyOf(t.stack(hash, cache))
		if h, ok := t.retired.distinct[key]; ok {
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
		f := folded[p.exe]
		switch {
		case f == nil:
			f = foldedRecord(p, false)
		case !copied[p.exe]:
			f = f.copy()
			f.exited = false
		}
		copied[p.exe] = true
		folded[p.exe] = f
		f.merge(p, canon)
	}
	return apart[:limit], folded
}

// foldedRecord returns an empty record to fold images of p's executable into.
func foldedRecord(p *process, exited bool) *process {
	f := newProcess(0)
	f.exe, f.cgroup, f.exited = p.exe, p.cgroup, exited
	return f
}

// copy returns a copy of folded record f that can be merged into without changing f.
func (f *process) copy() *process {
	c := *f
	c.stacks = make(map[stackKey]*Counts, len(f.stacks))
	for k, v := range f.stacks {
		cv := *v
		c.stacks[k] = &cv
	}
	return &c
}

// merge adds image p's aggregates to folded record f, each stack under
// the hash canon gives its own.
func (f *process) merge(p *process, canon func(uint64) uint64) {
	if f.cgroup != p.cgroup {
		f.cgroup = ""
	}
	f.folded += max(p.folded, 1)
	for k, c := range p.stacks {
		if k.stack != 0 {
			k.stack = canon(k.stack)
		}
		fc := f.stacks[k]
		if fc == nil {
			fc = new(Counts)
			f.stacks[k] = fc
		}
		fc.add(*c)
	}
	f.own.add(p.own)
	for i := range f.sizes {
		f.sizes[i] += p.sizes[i]
		f.lifetimes[i] += p.lifetimes[i]
	}
}
