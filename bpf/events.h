/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What leaves the kernel: the ring buffer of records (laid out in mtrace.h)
 * and when it wakes the reader, and the per-CPU counters of what could not
 * be done or sent.
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

/* header fills the header every record starts with. */
static __always_inline void header(struct event_header *h, __u8 op, __u32 tgid)
{
	h->op = op;
	h->pad[0] = 0;
	h->pad[1] = 0;
	h->pad[2] = 0;
	h->tgid = tgid;
}

/*
 * reserve takes size bytes of the ring buffer for a record of op about tgid
 * and fills its header; NULL, counted, if the ring buffer is full.
 */
static __always_inline void *reserve(__u64 size, __u8 op, __u32 tgid)
{
	struct event_header *h = bpf_ringbuf_reserve(&events, size, 0);

	if (!h) {
		count(COUNTER_LOST_EVENTS);
		return NULL;
	}
	header(h, op, tgid);
	return h;
}

static __always_inline void submit(void *e)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* submit_now wakes the reader at once: it must look at a new process while it still runs. */
static __always_inline void submit_now(void *e)
{
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

#endif
