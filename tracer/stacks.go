package tracer

import (
	"errors"
	"log/slog"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/symbolize"
)

// kernelStacks are the stacks in the kernel's stack map, as the aggregate
// reads them (aggregate.Stacks).
type kernelStacks struct {
	objs *bpf.AllocObjects
	log  *slog.Logger
}

// Frames reads the stack stored under hash from the kernel; nil if it is
// not there.
func (s kernelStacks) Frames(hash uint64) []symbolize.Location {
	var rec bpf.AllocStack
	var locs []symbolize.Location
	if err := s.objs.Stacks.Lookup(hash, &rec); err == nil && int(rec.Len) <= len(rec.Frames) {
		for _, f := range rec.Frames[:rec.Len] {
			locs = append(locs, location(f))
		}
	}
	return locs
}

// Forget deletes the stack stored under hash from the kernel, whose
// images have ended: the kernel hashes an image's stacks with its tgid and
// generation, so no later image can use them.
func (s kernelStacks) Forget(hash uint64) {
	if err := s.objs.Stacks.Delete(hash); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		s.log.Warn("delete stack of ended process", "err", err)
	}
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
