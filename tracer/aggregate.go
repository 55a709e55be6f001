package tracer

import "github.com/mtrace/mtrace/bpf"

// stackKey identifies one aggregate: a process, the allocation function it
// called and the stack it called it from.
type stackKey struct {
	pid   uint32
	fn    uint8
	stack uint64
}

// Counts are the totals of one aggregate.
type Counts struct {
	Allocs, AllocBytes uint64
	Frees, FreeBytes   uint64
}

// LiveObjects is the number of allocations not freed.
func (c Counts) LiveObjects() uint64 { return c.Allocs - c.Frees }

// LiveBytes is the number of bytes allocated and not freed.
func (c Counts) LiveBytes() uint64 { return c.AllocBytes - c.FreeBytes }

func (c *Counts) add(o Counts) {
	c.Allocs += o.Allocs
	c.AllocBytes += o.AllocBytes
	c.Frees += o.Frees
	c.FreeBytes += o.FreeBytes
}

// aggregator keeps counts per (process, function, stack). Frees arrive with
// the stack and size of the allocation they free (matched in the kernel), so
// the order in which events arrive does not matter.
type aggregator struct {
	stacks    map[stackKey]*Counts
	malformed uint64
}

func newAggregator() *aggregator {
	return &aggregator{stacks: make(map[stackKey]*Counts)}
}

// add accounts one event. It allocates only for a stack it has not seen.
func (a *aggregator) add(e *bpf.AllocEvent) {
	var d Counts
	switch e.Op {
	case uint8(bpf.AllocOpOP_ALLOC):
		d.Allocs, d.AllocBytes = 1, e.Size
	case uint8(bpf.AllocOpOP_FREE):
		d.Frees, d.FreeBytes = 1, e.Size
	default:
		a.malformed++
		return
	}
	k := stackKey{pid: e.Pid, fn: e.Fn, stack: e.Stack}
	c := a.stacks[k]
	if c == nil {
		if _, ok := fnNames[e.Fn]; !ok {
			a.malformed++
			return
		}
		c = new(Counts)
		a.stacks[k] = c
	}
	c.add(d)
}
