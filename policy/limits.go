package policy

import "fmt"

// Limits bound the kernel memory and work one run of mtrace may use.
type Limits struct {
	RingBufferBytes uint32 // size of the BPF ring buffer of events
	MaxLive         uint32 // allocations remembered in the kernel until they are freed
	MaxStacks       uint32 // distinct user stacks remembered in the kernel
	MaxTargets      uint32 // processes traced at once
}

// DefaultLimits are the limits of a run that sets none.
func DefaultLimits() Limits {
	return Limits{
		RingBufferBytes: 8 << 20,
		MaxLive:         1 << 20,
		MaxStacks:       32768,
		MaxTargets:      4096,
	}
}

// Validate checks that every limit is usable.
func (l Limits) Validate() error {
	if l.RingBufferBytes < 4096 || l.RingBufferBytes&(l.RingBufferBytes-1) != 0 {
		return fmt.Errorf("ring buffer size %d: must be a power of two of at least 4096 bytes", l.RingBufferBytes)
	}
	for _, f := range []struct {
		name string
		v    uint32
	}{{"live allocations", l.MaxLive}, {"stacks", l.MaxStacks}, {"targets", l.MaxTargets}} {
		if f.v == 0 {
			return fmt.Errorf("%s limit: must be at least 1", f.name)
		}
	}
	return nil
}
