/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Which processes are traced, and which image each runs: the targets,
 * excluded and unheard maps and the cgroup filters; the verdicts selected,
 * watched and traced; the generation of each process image (gens) and of
 * its code (codegens), and the epochs that tell threads to look again.
 *
 * A process image (the Unix term) is the program a process runs, from its
 * fork or exec to its next exec or its exit: allocations, stacks and the
 * policy's verdict belong to an image, and a new generation tells one
 * image of a tgid from the next.
 */
#ifndef PROCESS_H
#define PROCESS_H

#include "mtrace.h"
#include "events.h"

/* Trace every process (--all); otherwise only targets and cgroups. */
const volatile __u8 trace_all = 0;
/* Trace the children of traced processes. */
const volatile __u8 follow_forks = 0;
/* Number of valid entries in the cgroups map. */
const volatile __u32 cgroup_count = 0;
/* mtrace's own process, never traced. */
const volatile __u32 self_tgid = 0;
/*
 * The policy may deny an image (a deny or allow rule, or the built-in deny
 * list): a process whose fork or exec event is lost is excluded, since user
 * space cannot judge an image it has not heard of.
 */
const volatile __u8 may_deny = 0;
/*
 * Bumped by user space whenever it changes which processes are traced
 * (targets, excluded) and every poll, for moves between cgroups: a thread's
 * cached verdict from an older epoch is made again.
 */
volatile __u64 epoch = 1;
/* Bumped here whenever a traced process unmapped a file's code: threads read their codegens entry again. */
volatile __u64 code_epoch = 0;

struct cgroup_filter {
	__u64 id;
	__u32 level;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_EXCLUDED);
	__type(key, __u32);
	__type(value, __u8);
} excluded SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_EXCLUDED);
	__type(key, __u32);
	__type(value, __u8);
} unheard SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct cgroup_filter);
} cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_GENS);
	__type(key, __u32);
	__type(value, __u32);
} gens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_GENS);
	__type(key, __u32);
	__type(value, __u32);
} codegens SEC(".maps");

/* current_tgid is the calling thread's process id (its thread group id). */
static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/* selected reports whether the targets, cgroups or --all select tgid. */
static __always_inline int selected(__u32 tgid)
{
	if (trace_all || bpf_map_lookup_elem(&targets, &tgid))
		return 1;
	for (__u32 i = 0; i < MAX_CGROUPS; i++) {
		struct cgroup_filter *f;
		__u32 idx = i;

		if (i >= cgroup_count)
			break;
		f = bpf_map_lookup_elem(&cgroups, &idx);
		if (f && bpf_get_current_ancestor_cgroup_id(f->level) == f->id)
			return 1;
	}
	return 0;
}

/* watched reports whether user space hears of tgid's fork, exec and exit: selected, and not mtrace. */
static __always_inline int watched(__u32 tgid)
{
	return tgid != self_tgid && selected(tgid);
}

/*
 * traced reports whether the current process is traced: watched, not
 * excluded by the policy, and running an image user space has heard of.
 * Every process that maps a probed library gets here, so the exclusions
 * are looked up only for the few selected.
 */
static __always_inline int traced(__u32 tgid)
{
	return watched(tgid) && !bpf_map_lookup_elem(&excluded, &tgid) &&
	       !bpf_map_lookup_elem(&unheard, &tgid);
}

static __always_inline __u32 generation(__u32 tgid)
{
	__u32 *g = bpf_map_lookup_elem(&gens, &tgid);

	return g ? *g : 0;
}

/*
 * A generation is the clock when the image started, in units of 2^GEN_SHIFT
 * ns (about a microsecond), cut to 32 bits: two images of one tgid share
 * one only if they start within that unit, or 2^42 ns (73 minutes) apart
 * to the unit.
 */
#define GEN_SHIFT 10

/* new_generation starts a new image of tgid: its allocations are keyed apart. */
static __always_inline void new_generation(__u32 tgid)
{
	__u32 g = bpf_ktime_get_ns() >> GEN_SHIFT;

	bpf_map_update_elem(&gens, &tgid, &g, BPF_ANY);
}

/*
 * not_heard excludes a watched process user space was not told of, its
 * fork or exec event lost, while the policy may deny its image: until an
 * exec of it is sent (and judged), or it exits, none of its events are
 * sent. User space never lifts it, so that it cannot readmit an image it
 * judged just before an exec it did not hear of.
 */
static __always_inline void not_heard(__u32 tgid)
{
	__u8 one = 1;

	if (may_deny && !bpf_map_update_elem(&unheard, &tgid, &one, BPF_ANY))
		count(COUNTER_UNHEARD);
}

#endif
