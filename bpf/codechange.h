/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Code that goes away: an munmap, or an mmap with MAP_FIXED, that takes a
 * file's code out of a traced process (dlclose) gives the process a new
 * code generation, so that its stacks hash anew and addresses that later
 * hold other code are not named after the old.
 */
#ifndef CODECHANGE_H
#define CODECHANGE_H

#include "mtrace.h"
#include "kernel.h"
#include "process.h"
#include "alloc.h"

/* A walk over the mappings of [addr, end), looking for a file's code. */
struct range_walk {
	__u64 addr, end;
	__u32 code;
	__u32 pad;
};

/* code_vma is bpf_find_vma's callback: it notes whether vma is a file's code, and moves past it. */
static long code_vma(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct range_walk *w = data;

	if (BPF_CORE_READ(vma, vm_file) && (BPF_CORE_READ(vma, vm_flags) & VM_EXEC))
		w->code = 1;
	w->addr = BPF_CORE_READ(vma, vm_end);
	return 0;
}

static long range_step(__u32 i, void *ctx)
{
	struct range_walk *w = ctx;
	__u64 at = w->addr;

	if (w->code || at >= w->end)
		return 1;
	if (bpf_find_vma(bpf_get_current_task_btf(), at, code_vma, w, 0) || w->addr <= at) {
		/*
		 * A hole, or the mapping lock is busy (another thread maps
		 * memory): what lies further is unknown, so count it as code.
		 * Hashing stacks anew costs little; missing code unmapped would
		 * name a later library after this one.
		 */
		w->code = 1;
		return 1;
	}
	return 0;
}

/* MAX_RANGE_VMAS bounds the mappings looked at in one range: a library has a handful. */
#define MAX_RANGE_VMAS 32

/*
 * new_codegen gives process tgid the next code epoch, a value it never had
 * before (the epoch only grows, and the fetch makes each value one
 * caller's), so that an entry evicted or raced over never brings an old
 * hash back; the epoch moves on after the entry is written, so a thread
 * that sees the new epoch reads the new value.
 */
static __always_inline void new_codegen(__u32 tgid)
{
	__u32 n = __sync_fetch_and_add(&code_epoch, 1) + 1;

	bpf_map_update_elem(&codegens, &tgid, &n, BPF_ANY);
	__sync_fetch_and_add(&code_epoch, 1);
}

/*
 * changing_code runs as a system call that takes away the mappings of
 * [addr, addr+len) starts: if any may hold a file's code (dlclose), other
 * code may later be mapped at the same addresses, so the process's stacks
 * hash anew, from now on and again once the call is done (a stack walked
 * in between runs through code about to go). Mapping code (dlopen) changes
 * nothing: it only fills addresses no stack has run through.
 */
static __always_inline void changing_code(__u64 addr, __u64 len)
{
	__u32 tgid = current_tgid();
	struct range_walk w = { .addr = addr, .end = addr + len };
	struct task_state *ts;

	/* Every munmap on the host gets here: no thread state for untraced ones. */
	if (!len || !traced(tgid))
		return;
	ts = state(tgid);
	if (!ts)
		return;
	if (bpf_loop(MAX_RANGE_VMAS, range_step, &w, 0) >= MAX_RANGE_VMAS && w.addr < w.end)
		w.code = 1; /* more mappings than were looked at */
	ts->changing_code = w.code;
	if (w.code)
		new_codegen(tgid);
}

/* code_changed runs as the system call changing_code saw ends. */
static __always_inline void code_changed(long ret)
{
	struct task_state *ts = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);

	if (!ts || !ts->changing_code)
		return;
	ts->changing_code = 0;
	if ((unsigned long)ret < (unsigned long)-MAX_ERRNO)
		new_codegen(current_tgid());
}

#endif
