//go:build ignore
// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Heap-allocation probes: uprobes on the entry and uretprobes on the return
 * of malloc, calloc and realloc, and a uprobe on free.
 *
 * Maps (key -> value; who deletes entries):
 *   targets  tgid -> u8                 traced processes; user space adds and removes
 *   calls    pid_tgid -> struct call    a call in flight from entry to return; the return probe
 *   live     {tgid, addr} -> struct live allocations not freed yet; the free probe
 *   stacks   hash -> struct stack       user stacks seen; never deleted while tracing
 *   scratch  0 -> struct stack          per-CPU buffer for walking a stack
 *   counters enum counter -> u64        per-CPU counts of what was dropped
 *   events   ring buffer of struct event
 *
 * Only metadata is read: argument registers, return values, and the return
 * addresses the kernel's frame-pointer walk yields. No user memory is read.
 * Needs Linux 5.8 (ring buffer).
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "mtrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Wake the reader only once this much data waits, so it is not woken per event. */
const volatile __u64 wakeup_bytes = 256 << 10;

struct call {
	__u64 size;
	__u64 old;   /* realloc's old pointer */
	__u32 depth; /* nested calls of probed functions inside this one */
	__u8 fn;
	__u8 pad[3];
};

struct live_key {
	__u32 tgid;
	__u32 pad;
	__u64 addr;
};

struct live {
	__u64 size;
	__u64 ts;
	__u64 stack;
	__u8 fn;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_CALLS);
	__type(key, __u64);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_LIVE);
	__type(key, struct live_key);
	__type(value, struct live);
} live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_STACKS);
	__type(key, __u64);
	__type(value, struct stack);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RINGBUF_BYTES);
} events SEC(".maps");

/* Keep the shared types in BTF so bpf2go can generate their Go declarations. */
const struct event *unused_event __attribute__((unused));
const enum op *unused_op __attribute__((unused));
const enum fn *unused_fn __attribute__((unused));
const enum event_flag *unused_flag __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		(*c)++;
}

static __always_inline int traced(__u32 tgid)
{
	return bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

/*
 * Walk the user stack and return its hash, storing the stack under it.
 * Called at a uretprobe: the instruction pointer is then the return address
 * in the allocation's direct caller, so the walk starts with that caller.
 */
static __always_inline __u64 capture_stack(void *ctx, __u32 tgid)
{
	__u32 zero = 0;
	struct stack *s = bpf_map_lookup_elem(&scratch, &zero);
	long n;
	__u64 h;

	if (!s)
		return 0;
	n = bpf_get_stack(ctx, s->ips, sizeof(s->ips), BPF_F_USER_STACK);
	if (n <= 0) {
		count(COUNTER_STACK_ERRORS);
		return 0;
	}
	s->len = n / sizeof(__u64);
	h = 0x9e3779b97f4a7c15ULL ^ tgid;
	for (int i = 0; i < MAX_STACK_DEPTH; i++) {
		if (i >= s->len)
			break;
		h ^= s->ips[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	if (h == 0)
		h = 1;
	if (bpf_map_lookup_elem(&stacks, &h))
		return h;
	if (bpf_map_update_elem(&stacks, &h, s, BPF_NOEXIST) && !bpf_map_lookup_elem(&stacks, &h)) {
		count(COUNTER_STACKS_FULL);
		return 0;
	}
	return h;
}

static __always_inline void submit(struct event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void record_alloc(void *ctx, __u32 tgid, __u64 addr, __u64 size, __u8 fn)
{
	struct live_key k = { .tgid = tgid, .addr = addr };
	struct live v = { .size = size, .fn = fn };
	struct event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_LOST_EVENTS);
		return;
	}
	v.ts = bpf_ktime_get_ns();
	v.stack = capture_stack(ctx, tgid);
	e->stack = v.stack;
	e->size = size;
	e->ts = v.ts;
	e->age = 0;
	e->pid = tgid;
	e->op = OP_ALLOC;
	e->fn = fn;
	e->flags = 0;
	if (bpf_map_update_elem(&live, &k, &v, BPF_ANY)) {
		count(COUNTER_LIVE_FULL);
		e->flags = EVENT_UNTRACKED;
	}
	submit(e);
}

static __always_inline void record_free(__u32 tgid, __u64 addr)
{
	struct live_key k = { .tgid = tgid, .addr = addr };
	struct live *v = bpf_map_lookup_elem(&live, &k);
	struct live a;
	struct event *e;

	if (!v)
		return; /* not allocated while traced */
	a = *v;
	/* Whoever deletes the entry reports the free, so a racing double free counts once. */
	if (bpf_map_delete_elem(&live, &k))
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_LOST_EVENTS);
		return;
	}
	e->stack = a.stack;
	e->size = a.size;
	e->ts = bpf_ktime_get_ns();
	e->age = e->ts - a.ts;
	e->pid = tgid;
	e->op = OP_FREE;
	e->fn = a.fn;
	e->flags = 0;
	submit(e);
}

/*
 * Remember a call at its entry. A probed function called from inside another
 * (realloc(NULL, n) calling malloc) only deepens the outer call, so it is
 * counted once, as what the program called.
 */
static __always_inline int enter(__u8 fn, __u64 size, __u64 old)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c;
	struct call nc = { .size = size, .old = old, .fn = fn };

	if (!traced(id >> 32))
		return 0;
	c = bpf_map_lookup_elem(&calls, &id);
	if (c) {
		c->depth++;
		return 0;
	}
	if (bpf_map_update_elem(&calls, &id, &nc, BPF_ANY))
		count(COUNTER_CALLS_FULL);
	return 0;
}

static __always_inline int leave(void *ctx, __u64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct call *c = bpf_map_lookup_elem(&calls, &id);
	struct call cl;

	if (!c)
		return 0;
	if (c->depth) {
		c->depth--;
		return 0;
	}
	cl = *c;
	bpf_map_delete_elem(&calls, &id);

	/* realloc(p, n) frees p when it returns a new block, and realloc(p, 0) frees p. */
	if (cl.fn == FN_REALLOC && cl.old && (ret || cl.size == 0))
		record_free(tgid, cl.old);
	if (ret)
		record_alloc(ctx, tgid, ret, cl.size, cl.fn);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	return enter(FN_MALLOC, size, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(malloc_exit, __u64 ret)
{
	return leave(ctx, ret);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 n, __u64 size)
{
	return enter(FN_CALLOC, n * size, 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(calloc_exit, __u64 ret)
{
	return leave(ctx, ret);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, __u64 old, __u64 size)
{
	return enter(FN_REALLOC, size, old);
}

SEC("uretprobe")
int BPF_KRETPROBE(realloc_exit, __u64 ret)
{
	return leave(ctx, ret);
}

SEC("uprobe")
int BPF_KPROBE(free_enter, __u64 addr)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!addr || !traced(id >> 32))
		return 0;
	/* A free inside a probed call (realloc(p, 0)) is counted by that call's return. */
	if (bpf_map_lookup_elem(&calls, &id))
		return 0;
	record_free(id >> 32, addr);
	return 0;
}
