/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Which allocations are kept, and with what weight: byte sampling
 * (--sample-bytes) and the per-CPU event-rate limit (rate_budget).
 */
#ifndef SAMPLE_H
#define SAMPLE_H

#include "mtrace.h"
#include "events.h"

/*
 * Allocation events each CPU may send per second at full fidelity (0: no
 * limit), spent per tenth of a second. Beyond it, each allocation is kept
 * with the chance that would have kept a budget's worth of the last
 * window's allocations, and a burst past that pace halves the chance for
 * each further budget kept; a kept allocation is weighted by the inverse of
 * its chance, so the weighted counts stay unbiased.
 * Not const: user space lowers it while tracing to keep within its CPU budget.
 */
volatile __u64 rate_budget = 0;
/*
 * Byte sampling (--sample-bytes, 0: off): an allocation of S bytes is kept
 * with chance 1 - e^(-S/sample_bytes), as if a Poisson process marked one
 * byte in sample_bytes, and weighted by the inverse of that chance. A left
 * out allocation costs no stack walk and no event. sample_bytes is at most
 * 2^28, so that S < 16 * sample_bytes fits S << 32.
 */
const volatile __u64 sample_bytes = 0;
/* (1 - e^-x) / x at x = i/64, in 2^-31: set by user space with sample_bytes. */
const volatile __u32 sample_g[SAMPLE_STEPS + 1];

/* The event-rate budget is spent per tenth of a second. */
#define RATE_WINDOWS 10
/* A burst halves the chance of keeping an allocation at most this many times (to 2^-16 of it). */
#define MAX_HALVINGS 16
#define NSEC_PER_SEC 1000000000ULL

struct rate {
	__u64 window; /* start of the current window */
	__u64 count;  /* allocations seen in it */
	__u64 kept;   /* allocations kept in it */
	__u64 keep;   /* chance of keeping one, in 2^-32 (0: all), from the last window's count */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate);
} rates SEC(".maps");

/*
 * byte_weight returns the weight, in 2^-16, of an allocation of size bytes
 * under byte sampling: the inverse of its chance, or 0 if it is left out.
 */
static __always_inline __u64 byte_weight(__u64 size)
{
	__u64 x, i, frac, g, p;

	if (!sample_bytes || size >= 16 * sample_bytes)
		return 1ULL << 16; /* kept: the chance is 1 - e^-16 or more */
	x = (size << 32) / sample_bytes; /* S/N in 2^-32, below 16 */
	i = x >> 26;                     /* in steps of 1/64 */
	frac = x & ((1ULL << 26) - 1);
	if (i >= SAMPLE_STEPS)
		return 1ULL << 16;
	g = sample_g[i] - (((__u64)(sample_g[i] - sample_g[i + 1]) * frac) >> 26);
	p = ((x >> 4) * g) >> 28; /* the chance, in 2^-31 */
	if (p >= 1ULL << 31)
		return 1ULL << 16;
	if (p == 0)
		p = 1;
	if ((bpf_get_prandom_u32() >> 1) >= p) {
		count(COUNTER_UNSAMPLED);
		return 0;
	}
	return (1ULL << 47) / p;
}

/*
 * admit returns the weight an allocation of size bytes is recorded with, 0
 * to leave it out: byte sampling first, then the event-rate limit.
 */
static __always_inline __u32 admit(__u64 size)
{
	__u32 zero = 0;
	struct rate *r;
	__u64 budget, m, now, w, tier = 0;

	w = byte_weight(size);
	if (!w)
		return 0;
	if (!rate_budget)
		goto weigh;
	r = bpf_map_lookup_elem(&rates, &zero);
	if (!r)
		goto weigh;
	budget = rate_budget / RATE_WINDOWS ?: 1;
	now = bpf_ktime_get_ns();
	if (now - r->window >= NSEC_PER_SEC / RATE_WINDOWS) {
		/* Keep about budget of as many as the last window saw. */
		r->keep = r->count <= budget ? 0 : (budget << 32) / r->count;
		r->window = now;
		r->count = 0;
		r->kept = 0;
	}
	r->count++;
	if (r->keep) {
		if (bpf_get_prandom_u32() >= r->keep)
			goto out;
		/*
		 * times 2^32 / keep. w is below 2^44 (a byte-sampled chance is at least
		 * 2^-28), and a CPU cannot allocate 2^19 times its budget in a window.
		 */
		m = (1ULL << 40) / r->keep;
		if (m > 1ULL << 27)
			m = 1ULL << 27;
		w = (w >> 8) * m;
	}
	/* A burst past the last window's pace: each further budget kept halves the chance. */
	if (r->kept >= budget) {
		tier = (r->kept - budget) / budget + 1;
		if (tier > MAX_HALVINGS)
			tier = MAX_HALVINGS;
		if (bpf_get_prandom_u32() & ((1U << tier) - 1))
			goto out;
	}
	r->kept++;
	w = w >> (63 - tier) ? ~0ULL : w << tier;
weigh:
	/* A whole weight whose mean is w / 2^16: the estimates stay unbiased. */
	if (w & 0xffff)
		w = (w >> 16) + ((bpf_get_prandom_u32() & 0xffff) < (w & 0xffff));
	else
		w >>= 16; /* already whole, as at full fidelity: no draw */
	return w > 0xffffffffULL ? 0xffffffffU : w;
out:
	count(COUNTER_SAMPLED_OUT);
	return 0;
}

#endif
