package aggregate

import (
	"encoding/binary"

	"github.com/mtrace/mtrace/symbolize"
)

// retiredStacks holds the stacks of images that exec'd or exited, moved out
// of the kernel's map so that it only holds stacks still in use: a host
// running many short-lived processes would fill it otherwise.
type retiredStacks struct {
	byHash   map[uint64][]symbolize.Location
	distinct map[string]uint64 // the first hash of each distinct stack, whose frames all images that had it share
	folded   map[uint64]bool   // the first hashes the folded records hold: at most max_stacks
}

func newRetiredStacks() retiredStacks {
	return retiredStacks{byHash: make(map[uint64][]symbolize.Location), distinct: make(map[string]uint64), folded: make(map[uint64]bool)}
}

// otherStack stands, in a folded record, for the stacks past the max_stacks
// distinct ones the folded records hold; it has no frames.
const otherStack = ^uint64(0)

// retireStacks moves the stacks of an image that ended out of the kernel.
// The kernel hashes an image's stacks with its tgid and generation, so no
// later image can use them.
func (a *Aggregate) retireStacks(p *image) {
	for k := range p.stacks {
		if _, ok := a.retired.byHash[k.stack]; ok || k.stack == 0 {
			continue
		}
		locs := a.cfg.Stacks.Frames(k.stack)
		key := stackKeyOf(locs)
		if first, ok := a.retired.distinct[key]; ok {
			locs = a.retired.byHash[first]
		} else {
			a.retired.distinct[key] = k.stack
		}
		a.retired.byHash[k.stack] = locs
		a.cfg.Stacks.Forget(k.stack)
	}
}

// stackKeyOf returns a key that two stacks share only if they are equal.
func stackKeyOf(locs []symbolize.Location) string {
	b := make([]byte, 0, len(locs)*24)
	for _, l := range locs {
		b = binary.LittleEndian.AppendUint64(b, l.File.Dev)
		b = binary.LittleEndian.AppendUint64(b, l.File.Inode)
		b = binary.LittleEndian.AppendUint64(b, l.Offset)
	}
	return string(b)
}

// stack returns the frames stored under hash, reading each stack still in
// the kernel once per cache.
func (a *Aggregate) stack(hash uint64, cache map[uint64][]symbolize.Location) []symbolize.Location {
	if hash == 0 || hash == otherStack {
		return nil
	}
	if locs, ok := a.retired.byHash[hash]; ok {
		return locs
	}
	locs, ok := cache[hash]
	if !ok {
		locs = a.cfg.Stacks.Frames(hash)
		cache[hash] = locs
	}
	return locs
}
