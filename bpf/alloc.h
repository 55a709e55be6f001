/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The allocation probes' logic: each thread's state and its call in flight
 * (tasks), the live allocations (live), and what happens at a probed
 * function's entry (enter) and return (leave), in a uprobe/uretprobe pair
 * or a uprobe session, including realloc's old block and the handoff of a
 * call of a function that may throw (operator new) to the probed call it
 * makes (malloc), whose return reports it.
 */
#ifndef ALLOC_H
#define ALLOC_H

#include "mtrace.h"
#include "kernel.h"
#include "cookie.h"
#include "events.h"
#include "process.h"
#include "stack.h"
#include "sample.h"

/*
 * Leave processes under seccomp alone, never seeing an allocation of theirs
 * return: this kernel's return probe makes a process call a system call its
 * filter may deny, which would kill it (user space tried: mtrace check). Needs uprobe sessions,
 * and links that run this program in every process.
 */
const volatile __u8 avoid_sandboxed = 0;
/* Probe id 0 is reserved for anonymous mmap/munmap (--mmap); user space numbers the uprobes from 1. */
#define MMAP_PROBE 0

/*
 * An allocation is keyed by its process image: allocations an image left
 * behind are never matched by the frees of the next image of the same pid
 * (after exec) or of a new process that reuses the pid.
 */
struct live_key {
	__u32 tgid;
	__u32 gen;
	__u64 addr;
};

struct live {
	__u64 size;
	__u64 ts;
	__u64 stack;
	__u16 probe;
	__u16 pad;
	__u32 weight;
};

struct call {
	__u64 size;
	__u32 weight;    /* what it stands for (admit), 0: left out by sampling */
	__u32 pad;
	__u64 arg;       /* realloc's old pointer, posix_memalign's out-parameter */
	__u64 sp;        /* stack pointer at entry: a deeper call is nested in this one */
	struct live old; /* realloc: the old block, taken out of the live map until the call returns */
	__u32 depth;     /* nested calls of probed functions inside this one */
	__u16 probe;
	__u8 kind;
	__u8 has_old;
	__u8 handoff;    /* its function may throw: the probed call it makes is to take it over (handed_to) */
	__u8 taken_over; /* that call took it over: its return reports this call, with the stack walked at entry */
	__u8 pad2[6];
	__u64 handoff_sp; /* handoff: the stack pointer the call it hands off to starts with */
	__u64 stack;      /* handoff: the stack's hash, walked at entry */
};

/* What a thread knows about itself between probes. */
struct task_state {
	__u64 epoch;      /* the epoch traced and gen were found in; 0: find them again */
	__u64 code_epoch; /* the code_epoch codegen was found in */
	__u32 gen;        /* its process image's generation */
	__u32 codegen;    /* its process's codegens entry */
	__u8 traced;      /* its process is traced */
	__u8 in_call;     /* call holds a call in flight */
	__u8 changing_code;/* it is in an munmap or mmap that takes a file's code away */
	__u8 pad;
	struct call call;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_LIVE);
	__type(key, struct live_key);
	__type(value, struct live);
} live SEC(".maps");

/*
 * state returns the calling thread's state, with its process's verdict and
 * generation as of the current epoch: one lookup in the task instead of
 * three hash lookups per probe. NULL if it cannot be stored (no memory).
 */
static __always_inline struct task_state *state(__u32 tgid)
{
	struct task_state *ts = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	__u64 now = epoch, code = code_epoch;

	if (!ts) {
		count(COUNTER_CALLS_FULL);
		return NULL;
	}
	if (ts->epoch != now) {
		ts->traced = traced(tgid);
		ts->gen = generation(tgid);
		ts->epoch = now;
	}
	if (ts->code_epoch != code) {
		__u32 *n = bpf_map_lookup_elem(&codegens, &tgid);

		ts->codegen = n ? *n : 0;
		ts->code_epoch = code;
	}
	return ts;
}

/* record_alloc records an allocation admit kept with weight, made at stack. */
static __always_inline void record_alloc(__u32 tgid, __u32 gen, __u64 addr, __u64 size, __u16 probe, __u32 weight,
					 __u64 stack)
{
	struct live v = { .size = size, .probe = probe, .weight = weight };
	struct live_key k = { .tgid = tgid, .gen = gen, .addr = addr };
	struct alloc_event *e = reserve(sizeof(*e), OP_ALLOC, tgid);

	if (!e) {
		count(COUNTER_LOST_ALLOCS);
		return;
	}
	e->ts = bpf_ktime_get_ns();
	e->stack = stack;
	e->size = size;
	e->age = 0;
	e->weight = weight;
	e->probe = probe;
	e->flags = 0;
	e->pad = 0;
	v.ts = e->ts;
	v.stack = stack;
	if (bpf_map_update_elem(&live, &k, &v, BPF_ANY)) {
		count(COUNTER_LIVE_FULL);
		e->flags = EVENT_UNTRACKED;
	}
	submit(e);
}

/* emit_free reports the end of allocation a, already taken out of the live map. */
static __always_inline void emit_free(__u32 tgid, struct live *a)
{
	struct alloc_event *e = reserve(sizeof(*e), OP_FREE, tgid);

	if (!e)
		return;
	e->ts = bpf_ktime_get_ns();
	e->stack = a->stack;
	e->size = a->size;
	e->age = e->ts - a->ts;
	e->weight = a->weight;
	e->probe = a->probe;
	e->flags = 0;
	e->pad = 0;
	submit(e);
}

/*
 * take moves allocation addr out of the live map into a. Whoever deletes the
 * entry owns the free, so a free seen twice (operator delete calling free, a
 * racing double free) counts once.
 */
static __always_inline int take(__u32 tgid, __u32 gen, __u64 addr, struct live *a)
{
	struct live_key k = { .tgid = tgid, .gen = gen, .addr = addr };
	struct live *v = bpf_map_lookup_elem(&live, &k);

	if (!v)
		return 0; /* not allocated while traced */
	*a = *v;
	return bpf_map_delete_elem(&live, &k) == 0;
}

enum { UNRELATED, TAKES_OVER, PASSED_ON };

/*
 * handed_to says what a call of kind at sp, nested in c (a call of a
 * function that may throw), is to c: the call c is handed off to, which
 * takes it over, and whose return reports it; the same handoff passed on to
 * another such function (operator new[] tail-calls operator new), which then
 * hands c off in turn; or unrelated: another call it makes, or c is stale,
 * left by a call that threw before. The call c is handed off to starts
 * where the function makes it, at the stack pointer user space planned,
 * and returns the block.
 */
static __always_inline int handed_to(struct call *c, __u64 sp, __u8 kind, __u64 cookie)
{
	if (sp != c->handoff_sp)
		return UNRELATED;
	if (cookie_handoff(cookie)) {
		c->handoff_sp = sp - cookie_depth(cookie);
		return PASSED_ON;
	}
	return kind == KIND_MALLOC || kind == KIND_CALLOC || kind == KIND_MEMALIGN ? TAKES_OVER : UNRELATED;
}

/* sandboxed reports whether the calling thread runs under seccomp (strict or filter mode). */
static __always_inline int sandboxed(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return bpf_core_field_exists(task->seccomp.mode) && BPF_CORE_READ(task, seccomp.mode) != 0;
}

/*
 * enter sees a call of a probed function. It returns 1 when the call's
 * return need not be seen: a free, a call not traced, a call of a function
 * that may throw (COOKIE_HANDOFF: the probed call it makes takes it over), and,
 * in a session, a nested call or a leaf function's call that sampling leaves out.
 */
static __always_inline int enter(struct pt_regs *ctx, int session)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 tgid = current_tgid();
	__u8 kind = cookie_kind(cookie);
	__u64 sp = PT_REGS_SP(ctx), size, arg = 0;
	__u32 weight;
	struct task_state *ts;
	struct call *c;

	if (tgid == self_tgid)
		return 1;
	ts = state(tgid);
	if (!ts || !ts->traced)
		return 1;
	if (kind == KIND_FREE) {
		struct live a;
		__u64 addr = PT_REGS_PARM1(ctx);

		if (addr && take(tgid, ts->gen, addr, &a))
			emit_free(tgid, &a);
		return 1;
	}
	if (avoid_sandboxed && sandboxed())
		return 1;
	c = &ts->call;
	/*
	 * A call at or below the recorded call's stack pointer is nested in it (a tail
	 * call, as realloc(NULL, n) makes to malloc, reuses the frame); a call above
	 * it means that record is stale, left by a call that never returned. A
	 * session does not see a nested call return; return probes see each. A
	 * call of a function that may throw is recorded without its return, for
	 * the call it makes to take over (handed_to).
	 */
	if (ts->in_call && sp <= c->sp) {
		if (!c->handoff) {
			if (session || cookie_handoff(cookie))
				return 1;
			c->depth++;
			return 0;
		}
		switch (handed_to(c, sp, kind, cookie)) {
		case TAKES_OVER:
			/* Left out by sampling, like a leaf's own call below. */
			if (!c->weight && session && cookie_leaf(cookie)) {
				ts->in_call = 0;
				return 1;
			}
			c->handoff = 0;
			c->taken_over = 1;
			return 0;
		case PASSED_ON:
			return 1;
		}
		/* Not taken over by this call: the record is stale, and the call is seen afresh. */
		ts->in_call = 0;
	}
	switch (kind) {
	case KIND_MALLOC:
		size = PT_REGS_PARM1(ctx);
		break;
	case KIND_CALLOC:
		size = PT_REGS_PARM1(ctx) * PT_REGS_PARM2(ctx);
		break;
	case KIND_REALLOC:
		arg = PT_REGS_PARM1(ctx);
		size = PT_REGS_PARM2(ctx);
		break;
	case KIND_REALLOCARRAY:
		arg = PT_REGS_PARM1(ctx);
		size = PT_REGS_PARM2(ctx) * PT_REGS_PARM3(ctx);
		break;
	case KIND_MEMALIGN:
		size = PT_REGS_PARM2(ctx);
		break;
	case KIND_POSIX_MEMALIGN:
		arg = PT_REGS_PARM1(ctx);
		size = PT_REGS_PARM3(ctx);
		break;
	default:
		return 1;
	}
	weight = admit(size);
	/*
	 * A leaf function has no nested calls to tell apart, so a session need
	 * not see a call it leaves out return; any other call is recorded, left
	 * out or not, so that its nested calls are not sampled again.
	 */
	if (!weight && session && cookie_leaf(cookie))
		return 1;
	c->size = size;
	c->weight = weight;
	c->arg = arg;
	c->sp = sp;
	c->depth = 0;
	c->probe = cookie_probe(cookie);
	c->kind = kind;
	/* The old block of a realloc belongs to the call until it returns. */
	c->has_old = (kind == KIND_REALLOC || kind == KIND_REALLOCARRAY) && arg &&
		     take(tgid, ts->gen, arg, &c->old);
	c->taken_over = 0;
	c->handoff = 0;
	ts->in_call = 1;
	if (!cookie_handoff(cookie))
		return 0;
	c->handoff = 1;
	c->handoff_sp = sp - cookie_depth(cookie);
	c->stack = 0;
	if (weight) {
		/*
		 * The stack is walked now, as the return would see it: the frame
		 * in the function, which may keep no frame pointer, gives way to the
		 * return address at the stack pointer.
		 */
		__u64 ra;

		if (bpf_probe_read_user(&ra, sizeof(ra), (void *)sp))
			count(COUNTER_STACK_ERRORS);
		else
			c->stack = capture_stack(ctx, tgid, ts->gen, ts->codegen, ra);
	}
	return 1;
}

/* leave sees the return of the call enter recorded. */
static __always_inline void leave(struct pt_regs *ctx)
{
	__u32 tgid = current_tgid();
	__u64 ret = PT_REGS_RC(ctx);
	struct task_state *ts = bpf_task_storage_get(&tasks, bpf_get_current_task_btf(), 0, 0);
	struct call *c;

	if (!ts || !ts->in_call)
		return;
	c = &ts->call;
	if (c->depth) {
		c->depth--;
		return;
	}
	/* The call stays in place, read below: nothing else runs on this thread until we return. */
	ts->in_call = 0;

	if (c->kind == KIND_POSIX_MEMALIGN) {
		/* Returns 0 and the block through its out-parameter; read only that pointer. */
		if (ret != 0 || bpf_probe_read_user(&ret, sizeof(ret), (void *)c->arg))
			ret = 0;
	}
	if (c->has_old) {
		/*
		 * realloc(p, n) frees p when it returns a block, and realloc(p, 0)
		 * frees p when it returns NULL; on failure p stays allocated.
		 */
		if (ret || c->size == 0) {
			emit_free(tgid, &c->old);
		} else {
			struct live_key k = { .tgid = tgid, .gen = ts->gen, .addr = c->arg };

			bpf_map_update_elem(&live, &k, &c->old, BPF_ANY);
		}
	}
	if (ret && c->weight)
		record_alloc(tgid, ts->gen, ret, c->size, c->probe, c->weight,
			     c->taken_over ? c->stack : capture_stack(ctx, tgid, ts->gen, ts->codegen, 0));
}

#endif
