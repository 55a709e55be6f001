package policy

import "time"

// Limits bound the kernel memory, work and time one run of mtrace may use.
type Limits struct {
	RingBufferBytes uint32        `toml:"ring_buffer_bytes"` // size of the BPF ring buffer of events
	MaxLive         uint32        `toml:"max_live"`          // allocations remembered in the kernel until they are freed
	MaxStacks       uint32        `toml:"max_stacks"`        // distinct user stacks remembered in the kernel
	MaxTargets      uint32        `toml:"max_targets"`       // processes traced at once by pid
	MaxDuration     time.Duration `toml:"max_duration"`      // longest run; --duration may not exceed it
	// MaxEventsPerSecond bounds the allocation events traced per second;
	// beyond it sampling takes over and reports say so.
	MaxEventsPerSecond uint64 `toml:"max_events_per_second"`
	// MaxCPUPercent bounds mtrace's CPU use, its BPF programs' included, as a
	// share of one CPU; over it sampling increases, then mtrace stops.
	MaxCPUPercent float64 `toml:"max_cpu_percent"`
	// MaxOutputBytes bounds the size of one report. A report past it keeps
	// each process's largest stacks and sums the rest into one.
	MaxOutputBytes int64 `toml:"max_output_bytes"`
	// MaxExitedProcesses bounds the exited process images kept one by one;
	// past it, the oldest are folded, per executable, into one that sums them.
	MaxExitedProcesses uint32 `toml:"max_exited_processes"`
}

// DefaultLimits are the limits of a run that sets none.
func DefaultLimits() Limits {
	return Limits{
		RingBufferBytes: 8 << 20,
		MaxLive:         1 << 20,
		MaxStacks:       16384,
		MaxTargets:      4096,
		MaxDuration:     24 * time.Hour,

		MaxEventsPerSecond: 500000,
		MaxCPUPercent:      50,
		MaxOutputBytes:     256 << 20,
		MaxExitedProcesses: 4096,
	}
}

// Validate checks that every limit is usable.
func (l Limits) Validate() error {
	if l.RingBufferBytes < 4096 || l.RingBufferBytes&(l.RingBufferBytes-1) != 0 {
		return badField("limits.ring_buffer_bytes", l.RingBufferBytes, "must be a power of two of at least 4096")
	}
	for _, f := range []struct {
		name string
		v    uint32
	}{{"limits.max_live", l.MaxLive}, {"limits.max_stacks", l.MaxStacks}, {"limits.max_targets", l.MaxTargets},
		{"limits.max_exited_processes", l.MaxExitedProcesses}} {
		if f.v == 0 {
			return badField(f.name, nil, "must be at least 1")
		}
	}
	if l.MaxEventsPerSecond == 0 {
		return badField("limits.max_events_per_second", nil, "must be at least 1")
	}
	if l.MaxOutputBytes <= 0 {
		return badField("limits.max_output_bytes", l.MaxOutputBytes, "must be positive")
	}
	if l.MaxCPUPercent <= 0 {
		return badField("limits.max_cpu_percent", l.MaxCPUPercent, "must be positive")
	}
	if l.MaxDuration <= 0 {
		return badField("limits.max_duration", l.MaxDuration, "must be positive")
	}
	return nil
}
