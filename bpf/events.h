/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What leaves the kernel: the ring buffer of events and when it wakes the
 * reader, and the per-CPU counters of what could not be done or sent.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include "mtrace.h"

/* Wake the reader only once this much data waits, so it is not woken per event. */
const volatile __u64 wakeup_bytes = 256 << 10;

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

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		(*c)++;
}

/* init_event fills the header every event starts with: now, tgid and op, a weight of 1, the rest zero. */
static __always_inline void init_event(struct event *e, __u32 tgid, __u8 op)
{
	e->stack = 0;
	e->size = 0;
	e->ts = bpf_ktime_get_ns();
	e->age = 0;
	e->pid = tgid;
	e->probe = 0;
	e->op = op;
	e->flags = 0;
	e->weight = 1;
	e->gen = 0;
}

static __always_inline struct event *reserve(__u32 tgid, __u8 op)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(COUNTER_LOST_EVENTS);
		return NULL;
	}
	init_event(e, tgid, op);
	return e;
}

static __always_inline void submit(struct event *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* submit_now wakes the reader at once: it must look at a new process while it still runs. */
static __always_inline void submit_now(struct event *e)
{
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

#endif
