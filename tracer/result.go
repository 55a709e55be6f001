package tracer

import (
	"fmt"
	"sort"
	"time"

	"github.com/mtrace/mtrace/bpf"
)

// Result is what one run of the tracer saw: aggregates per process and
// stack, and everything that was dropped.
type Result struct {
	Duration  time.Duration
	Dropped   Dropped
	Processes []Process
}

// Dropped counts what the tracer could not record. LostEvents are events the
// kernel had to drop because the ring buffer was full.
type Dropped struct {
	LostEvents  uint64 // ring buffer full
	LiveFull    uint64 // live-allocation map full: a later free cannot be matched
	StacksFull  uint64 // stack map full: allocations kept without their stack
	StackErrors uint64 // user stack could not be walked
	CallsFull   uint64 // in-flight call map full: calls not traced
	Malformed   uint64 // ring-buffer records that did not decode
}

// Process is one traced process and its allocation stacks, largest first.
type Process struct {
	Pid       int
	Exe       string
	Allocator string // path of the file whose malloc family was probed
	Stacks    []Stack
}

// Stack is the aggregate of one allocation function called from one stack.
type Stack struct {
	Function string   // allocation function called: malloc, calloc, realloc
	IPs      []uint64 // return addresses, innermost (the direct caller) first; empty if unknown
	Counts
}

// result gathers the aggregates and counters into a Result.
func (t *Tracer) result() (*Result, error) {
	r := &Result{Duration: time.Since(t.started)}
	if err := t.readCounters(&r.Dropped); err != nil {
		return nil, err
	}
	r.Dropped.Malformed = t.agg.malformed
	byPid := make(map[uint32]*Process)
	for k, c := range t.agg.stacks {
		p := byPid[k.pid]
		if p == nil {
			p = &Process{Pid: int(k.pid)}
			if tp := t.procs[k.pid]; tp != nil {
				p.Exe, p.Allocator = tp.exe, tp.allocator
			}
			byPid[k.pid] = p
		}
		s := Stack{Function: fnNames[k.fn], Counts: *c}
		if k.stack != 0 {
			var rec bpf.AllocStack
			if err := t.objs.Stacks.Lookup(k.stack, &rec); err == nil && int(rec.Len) <= len(rec.Ips) {
				s.IPs = append([]uint64(nil), rec.Ips[:rec.Len]...)
			}
		}
		p.Stacks = append(p.Stacks, s)
	}
	for _, p := range byPid {
		sort.Slice(p.Stacks, func(i, j int) bool {
			a, b := p.Stacks[i], p.Stacks[j]
			if a.AllocBytes != b.AllocBytes {
				return a.AllocBytes > b.AllocBytes
			}
			return a.Allocs > b.Allocs
		})
		r.Processes = append(r.Processes, *p)
	}
	sort.Slice(r.Processes, func(i, j int) bool { return r.Processes[i].Pid < r.Processes[j].Pid })
	return r, nil
}

// readCounters sums the kernel's per-CPU drop counters.
func (t *Tracer) readCounters(d *Dropped) error {
	for idx, dst := range map[bpf.AllocCounter]*uint64{
		bpf.AllocCounterCOUNTER_LOST_EVENTS:  &d.LostEvents,
		bpf.AllocCounterCOUNTER_LIVE_FULL:    &d.LiveFull,
		bpf.AllocCounterCOUNTER_STACKS_FULL:  &d.StacksFull,
		bpf.AllocCounterCOUNTER_STACK_ERRORS: &d.StackErrors,
		bpf.AllocCounterCOUNTER_CALLS_FULL:   &d.CallsFull,
	} {
		var perCPU []uint64
		if err := t.objs.Counters.Lookup(uint32(idx), &perCPU); err != nil {
			return fmt.Errorf("read counter %d: %w", idx, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return nil
}
