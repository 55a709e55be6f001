package tracer

import (
	"testing"

	"github.com/mtrace/mtrace/bpf"
)

var (
	opAlloc  = uint8(bpf.AllocOpOP_ALLOC)
	opFree   = uint8(bpf.AllocOpOP_FREE)
	fnMalloc = uint8(bpf.AllocFnFN_MALLOC)
)

func TestAggregatorCountsPerStack(t *testing.T) {
	a := newAggregator()
	events := []bpf.AllocEvent{
		// A free can arrive before the allocation it frees: the result is the same.
		{Pid: 1, Op: opFree, Fn: fnMalloc, Stack: 10, Size: 16},
		{Pid: 1, Op: opAlloc, Fn: fnMalloc, Stack: 10, Size: 16},
		{Pid: 1, Op: opAlloc, Fn: fnMalloc, Stack: 10, Size: 32},
		{Pid: 1, Op: opAlloc, Fn: uint8(bpf.AllocFnFN_CALLOC), Stack: 10, Size: 8},
		{Pid: 2, Op: opAlloc, Fn: fnMalloc, Stack: 10, Size: 64},
	}
	for i := range events {
		a.add(&events[i])
	}
	want := map[stackKey]Counts{
		{pid: 1, fn: fnMalloc, stack: 10}:                    {Allocs: 2, AllocBytes: 48, Frees: 1, FreeBytes: 16},
		{pid: 1, fn: uint8(bpf.AllocFnFN_CALLOC), stack: 10}: {Allocs: 1, AllocBytes: 8},
		{pid: 2, fn: fnMalloc, stack: 10}:                    {Allocs: 1, AllocBytes: 64},
	}
	if len(a.stacks) != len(want) {
		t.Fatalf("%d aggregates, want %d", len(a.stacks), len(want))
	}
	for k, w := range want {
		if got := a.stacks[k]; got == nil || *got != w {
			t.Errorf("%+v: got %+v, want %+v", k, got, w)
		}
	}
	c := want[stackKey{pid: 1, fn: fnMalloc, stack: 10}]
	if c.LiveObjects() != 1 || c.LiveBytes() != 32 {
		t.Errorf("live %d objects %d bytes, want 1 and 32", c.LiveObjects(), c.LiveBytes())
	}
}

func TestAggregatorCountsMalformed(t *testing.T) {
	a := newAggregator()
	for _, e := range []bpf.AllocEvent{
		{Pid: 1, Op: 0, Fn: fnMalloc},
		{Pid: 1, Op: opAlloc, Fn: 200},
	} {
		a.add(&e)
	}
	if a.malformed != 2 || len(a.stacks) != 0 {
		t.Fatalf("malformed %d, aggregates %d; want 2 and 0", a.malformed, len(a.stacks))
	}
}

func TestAggregatorAllocatesNothingForKnownStacks(t *testing.T) {
	a := newAggregator()
	e := bpf.AllocEvent{Pid: 1, Op: opAlloc, Fn: fnMalloc, Stack: 5, Size: 1}
	a.add(&e)
	if n := testing.AllocsPerRun(1000, func() { a.add(&e) }); n != 0 {
		t.Fatalf("add allocates %v times per event", n)
	}
}
