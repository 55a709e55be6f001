package tracer

import (
	"encoding/binary"
	"errors"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/bpf"
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

// otherStack stands, in a folded record, for the stacks past the max_stacks
// distinct ones the folded records hold; it has no frames.
const otherStack = ^uint64(0)

// retireStacks moves the stacks of an image that ended into user space.
// The kernel hashes an image's stacks with its tgid and generation, so no
// later image can use them.
func (t *Tracer) retireStacks(p *process) {
	if t.retired.byHash == nil {
		t.retired = retiredStacks{byHash: make(map[uint64][]symbolize.Location), distinct: make(map[string]uint64), folded: make(map[uint64]bool)}
	}
	for k := range p.stacks {
		if _, ok := t.retired.byHash[k.stack]; ok || k.stack == 0 {
			continue
		}
		locs := t.readStack(k.stack)
		key := stackKeyOf(locs)
		if first, ok := t.retired.distinct[key]; ok {
			locs = t.retired.byHash[first]
		} else {
			t.retired.distinct[key] = k.stack
		}
		t.retired.byHash[k.stack] = locs
		if err := t.objs.Stacks.Delete(k.stack); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			t.log.Warn("delete stack of ended process", "pid", p.pid, "err", err)
		}
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

// stack returns the frames stored under hash, reading each stack from the
// kernel once per cache.
func (t *Tracer) stack(hash uint64, cache map[uint64][]symbolize.Location) []symbolize.Location {
	if hash == 0 || hash == otherStack {
		return nil
	}
	if locs, ok := t.retired.byHash[hash]; ok {
		return locs
	}
	locs, ok := cache[hash]
	if !ok {
		locs = t.readStack(hash)
		cache[hash] = locs
	}
	return locs
}

// readStack reads the stack stored under hash from the kernel; nil if it
// is not there.
func (t *Tracer) readStack(hash uint64) []symbolize.Location {
	var rec bpf.AllocStack
	var locs []symbolize.Location
	if err := t.objs.Stacks.Lookup(hash, &rec); err == nil && int(rec.Len) <= len(rec.Frames) {
		for _, f := range rec.Frames[:rec.Len] {
			locs = append(locs, location(f))
		}
	}
	return locs
}

// location converts a frame the kernel resolved, whose device number is in
// the kernel's internal encoding (major << 20 | minor).
func location(f bpf.AllocFrame) symbolize.Location {
	if f.Ino == 0 {
		return symbolize.Location{}
	}
	return symbolize.Location{
		File:   symbolize.FileID{Dev: unix.Mkdev(f.Dev>>20, f.Dev&0xfffff), Inode: f.Ino},
		Offset: uint64(f.Off),
	}
}
