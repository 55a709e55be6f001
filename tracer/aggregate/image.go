package aggregate

import (
	"math/bits"

	"github.com/mtrace/mtrace/sink"
)

// stackKey identifies one aggregate of an image: the probe (allocation
// function in a module) called, and the stack it was called from.
type stackKey struct {
	probe uint16
	stack uint64
}

// image is one image of a process, from its first event or exec to its
// exec or exit, with its aggregates; or a folded record of several.
type image struct {
	pid uint32
	Names
	denied           bool // its events are dropped
	exited           bool
	folded           int          // images of its executable summed into it (see Fold); 0 for one image
	totals           *sink.Counts // of its executable, across its processes, for metrics
	stacks           map[stackKey]*sink.Counts
	own              sink.Counts  // this image's totals
	sizes, lifetimes [65]uint64   // allocations by log2 of size; frees by log2 of lifetime in ns
	timeline         []sink.Point // memory in use, once a second
}

func newImage(pid uint32) *image {
	return &image{pid: pid, stacks: make(map[stackKey]*sink.Counts)}
}

// maxTimeline bounds the points kept per image; past it, every other point
// is dropped and the timeline gets coarser.
const maxTimeline = 4096

// sample adds the memory p has in use now to its timeline.
func (p *image) sample(seconds float64) {
	if len(p.timeline) == maxTimeline {
		for i := 0; i < maxTimeline/2; i++ {
			p.timeline[i] = p.timeline[2*i]
		}
		p.timeline = p.timeline[:maxTimeline/2]
	}
	own := p.own
	own.SetLive()
	p.timeline = append(p.timeline, sink.Point{Seconds: seconds, LiveBytes: own.LiveBytes})
}

// add accounts one allocation or free, as many times as its sampling weight.
// It runs for every event: it touches only the counts an event changes.
func (p *image) add(e Event) {
	w := uint64(max(e.Weight, 1))
	if e.Free {
		p.lifetimes[bits.Len64(e.Age)] += w
	} else {
		p.sizes[bits.Len64(e.Size)] += w
	}
	k := stackKey{probe: e.Probe, stack: e.Stack}
	c := p.stacks[k]
	if c == nil {
		c = new(sink.Counts)
		p.stacks[k] = c
	}
	count(c, e.Free, w, e.Size*w)
	count(&p.own, e.Free, w, e.Size*w)
	if p.totals != nil {
		count(p.totals, e.Free, w, e.Size*w)
	}
}

// count adds n allocations or frees of size bytes in all to c.
func count(c *sink.Counts, free bool, n, size uint64) {
	if free {
		c.Frees += n
		c.FreeBytes += size
	} else {
		c.Allocs += n
		c.AllocBytes += size
	}
}
