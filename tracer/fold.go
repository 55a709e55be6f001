package tracer

// fold bounds the memory exited images take on a long run: past the
// policy's max_exited_processes, the oldest half are folded, per
// executable, into one record that sums their stacks (matched by their
// frames), histograms and totals. Images whose allocations still wait in
// the live map for a leak count are kept apart until the sweep is done with
// them.
func (t *Tracer) fold() {
	limit := int(t.cfg.Limits.MaxExitedProcesses)
	if len(t.done) <= limit {
		return
	}
	waiting := make(map[uint32]bool, len(t.ended))
	for _, img := range t.ended {
		waiting[img.tgid] = true
	}
	if t.folded == nil {
		t.folded = make(map[string]*process)
	}
	n := len(t.done) - limit/2
	kept := make([]*process, 0, len(t.done)-n)
	for _, p := range t.done[:n] {
		if waiting[p.pid] {
			kept = append(kept, p)
			continue
		}
		t.foldInto(p)
	}
	t.done = append(kept, t.done[n:]...)
}

// foldInto adds exited image p to the folded record of its executable.
func (t *Tracer) foldInto(p *process) {
	f := t.folded[p.exe]
	if f == nil {
		f = newProcess(0)
		f.exe, f.cgroup, f.exited = p.exe, p.cgroup, true
		t.folded[p.exe] = f
	}
	if f.cgroup != p.cgroup {
		f.cgroup = ""
	}
	f.folded++
	for k, c := range p.stacks {
		if k.stack != 0 {
			// Frames are known by the first hash of each distinct stack; the
			// image's own hashes are no longer needed.
			first := t.retired.distinct[stackKeyOf(t.retired.byHash[k.stack])]
			if first != k.stack {
				delete(t.retired.byHash, k.stack)
			}
			k.stack = first
		}
		fc := f.stacks[k]
		if fc == nil {
			fc = new(Counts)
			f.stacks[k] = fc
		}
		fc.add(*c)
		fc.LeakedObjects += c.LeakedObjects
		fc.LeakedBytes += c.LeakedBytes
	}
	f.own.add(p.own)
	for i := range f.sizes {
		f.sizes[i] += p.sizes[i]
		f.lifetimes[i] += p.lifetimes[i]
	}
}
