//go:build ignore
// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Heap-allocation probes. One entry program (alloc_enter) and one return
 * program (alloc_exit) serve every probed function: the attach cookie says
 * how the function takes its arguments (enum kind) and which probe it is.
 * Where the kernel has uprobe sessions (Linux 6.13), one session program
 * (alloc_session) is both for the allocation functions, and an entry may
 * decline to see its call return, which saves the return probe's trap.
 * Three BTF tracepoints follow process lifecycles: fork (to trace children
 * of traced processes, and exclude those of excluded ones), exec and exit
 * (to tell user space, which checks each new image against the policy); the munmap and
 * mmap system calls' tracepoints see a traced process unmap a file's code. Optionally
 * (--mmap) the raw system-call tracepoints count anonymous mmap and munmap
 * as a separate kind of allocation (x86-64 system-call numbers).
 *
 * The logic lives in headers by concern, each defining the maps and knobs
 * of its concern; this file holds the program entry points (SEC).
 *   mtrace.h      the layout shared with Go: records, stacks, enums, map sizes
 *   kernel.h      CO-RE stubs of the kernel types read, kernel constants, syscall arguments
 *   cookie.h      accessors of a probe's attach cookie
 *   events.h      the ring buffer, its wake-ups, and the drop counters
 *   process.h     which processes are traced (targets, excluded, unheard, cgroups) and
 *                 the generations of their images and code (gens, codegens)
 *   stack.h       stack walk, hash and resolution to files; paths of files and executables
 *   sample.h      byte sampling and the event-rate limit
 *   alloc.h       per-thread state, live allocations, and a probed call's entry and return
 *   codechange.h  munmap/mmap taking a file's code away (dlclose): new code generations
 *
 * Maps (key -> value; who deletes entries), under the header that defines them:
 *  events.h:
 *   counters enum counter -> u64        per-CPU counts of what was dropped
 *   events   ring buffer of records: struct alloc_event, file_event, fork_event, exit_event
 *  process.h:
 *   targets  tgid -> u8                 traced processes; user space, and fork for children
 *   excluded tgid -> u8                 processes the policy denies: set by user space and, for
 *                                       their children, at fork; kept across exec until user
 *                                       space lifts it; exit, and fork for another parent's
 *                                       child, delete it
 *   unheard  tgid -> u8                 processes whose image user space cannot judge, as their
 *                                       fork or exec event was lost (while the policy may deny),
 *                                       and their children, set at fork; never lifted by user
 *                                       space: an exec whose event is sent, exit, and fork for
 *                                       another parent's child delete it
 *   cgroups  index -> struct cgroup_filter  traced cgroup subtrees; user space, before tracing
 *   gens     tgid -> u32                the process image's generation, set at fork and exec;
 *                                       exit deletes it (with the tgid's targets entry)
 *   codegens tgid -> u32                the code epoch when the process last unmapped a file's
 *                                       code (dlclose); a stack's hash includes it, since the
 *                                       same addresses may later hold other code; exit deletes it
 *  stack.h:
 *   stacks   hash -> struct stack       user stacks seen, as file offsets, hashed with their image's
 *                                       tgid and generation; user space deletes an image's stacks
 *                                       once it has exec'd or exited
 *   scratch  0 -> struct scratch        per-CPU buffers for walking and resolving a stack
 *   files    {ino, dev} -> u8           files whose path user space was sent; never deleted while tracing
 *   file_scratch 0 -> struct file_event per-CPU buffer for a file record and its path
 *  sample.h:
 *   rates    0 -> struct rate           per-CPU allocation counts of the current rate window
 *  alloc.h:
 *   tasks    task -> struct task_state  per thread: its process's verdict and generation, cached
 *                                       until the epoch changes, and its call in flight; the
 *                                       kernel frees it with the thread
 *   live     {tgid, gen, addr} -> struct live  allocations not freed yet; the free probe, realloc
 *
 * Only metadata is read: argument registers, return values, the return
 * addresses the kernel's frame-pointer walk yields, posix_memalign's
 * result pointer from its out-parameter, and the return address at the
 * stack pointer when operator new is entered. No allocation contents are read.
 * Needs Linux 5.17 (ring buffer, attach cookies, BTF tracepoints, bpf_find_vma) and BTF.
 */
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
/* mtrace's headers expect the libbpf headers above; each includes the ones of the concerns it uses. */
#include "mtrace.h"
#include "kernel.h"
#include "cookie.h"
#include "events.h"
#include "process.h"
#include "stack.h"
#include "sample.h"
#include "alloc.h"
#include "codechange.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Uprobe session kfuncs (Linux 6.13); only alloc_session calls them. */
extern _Bool bpf_session_is_return(void) __ksym;

/* Keep the shared types in BTF so bpf2go can generate their Go declarations. */
const struct event_header *unused_event_header __attribute__((unused));
const struct alloc_event *unused_alloc_event __attribute__((unused));
const struct file_event *unused_file_event __attribute__((unused));
const struct fork_event *unused_fork_event __attribute__((unused));
const struct exit_event *unused_exit_event __attribute__((unused));
const enum op *unused_op __attribute__((unused));
const enum kind *unused_kind __attribute__((unused));
const enum cookie_flag *unused_cookie_flag __attribute__((unused));
const enum cookie_field *unused_cookie_field __attribute__((unused));
const enum event_flag *unused_flag __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const struct cgroup_filter *unused_cgroup_filter __attribute__((unused));
const struct frame *unused_frame __attribute__((unused));

SEC("uprobe")
int alloc_enter(struct pt_regs *ctx)
{
	enter(ctx, 0);
	return 0;
}

SEC("uretprobe")
int alloc_exit(struct pt_regs *ctx)
{
	leave(ctx);
	return 0;
}

/* At a function's entry and, unless the entry returns 1, at its return. */
SEC("uprobe.session")
int alloc_session(struct pt_regs *ctx)
{
	if (bpf_session_is_return()) {
		leave(ctx);
		return 0;
	}
	return enter(ctx, 1);
}

/*
 * Children of traced processes are traced from their first instruction, and
 * children of excluded ones excluded before their first: the hook runs
 * before the child is first scheduled. User space hears of both. Kernel
 * threads run no user code and are left out.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct fork_event *e;
	__u8 one = 1, flags = 0;

	if (ptgid == ctgid || (child->flags & PF_KTHREAD))
		return 0;
	/*
	 * A new process starts with its parent's verdict, never with that of a
	 * process that had its pid (user space may exclude a pid whose process
	 * has gone). If the map is full the child is traced in the kernel, but
	 * user space drops its events: it skips the children of a denied parent.
	 */
	if (!bpf_map_lookup_elem(&excluded, &ptgid))
		bpf_map_delete_elem(&excluded, &ctgid);
	else if (!bpf_map_update_elem(&excluded, &ctgid, &one, BPF_ANY))
		flags = EVENT_EXCLUDED;
	/* The child of a process running an image user space has not heard of runs it too. */
	if (!bpf_map_lookup_elem(&unheard, &ptgid))
		bpf_map_delete_elem(&unheard, &ctgid);
	else if (!bpf_map_update_elem(&unheard, &ctgid, &one, BPF_ANY))
		count(COUNTER_UNHEARD);
	if (!watched(ptgid))
		return 0;
	new_generation(ctgid);
	if (follow_forks && bpf_map_lookup_elem(&targets, &ptgid) &&
	    bpf_map_update_elem(&targets, &ctgid, &one, BPF_ANY))
		count(COUNTER_TARGETS_FULL);
	e = reserve(sizeof(*e), OP_FORK, ctgid);
	if (e) {
		e->parent = ptgid;
		e->flags = flags;
		e->pad[0] = 0;
		e->pad[1] = 0;
		e->pad[2] = 0;
		submit_now(e);
	} else if (!flags) {
		not_heard(ctgid);
	}
	return 0;
}

/*
 * The new executable's identity, path and cgroup go with the event: the
 * process may be gone before user space looks at it. An excluded process
 * stays excluded until user space has judged its new image; one whose
 * event cannot be sent is excluded until an exec of it is heard.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *p, __u32 old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid, old;
	struct task_state *ts = bpf_task_storage_get(&tasks, p, 0, 0);

	if (ts)
		ts->epoch = 0; /* a new image: its verdict and generation are found again */
	if (!watched(tgid))
		return 0;
	old = generation(tgid);
	new_generation(tgid);
	if (emit_path(tgid, OP_EXEC, BPF_CORE_READ(bprm, file), bpf_get_current_cgroup_id(), old))
		not_heard(tgid);
	else
		bpf_map_delete_elem(&unheard, &tgid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	struct exit_event *e;
	__u32 gen;

	if (p->signal->live.counter != 0)
		return 0;
	/* A new process that reuses the pid is neither traced nor excluded for this one's sake. */
	bpf_map_delete_elem(&excluded, &tgid);
	bpf_map_delete_elem(&unheard, &tgid);
	if (!traced(tgid))
		return 0;
	gen = generation(tgid);
	bpf_map_delete_elem(&targets, &tgid);
	bpf_map_delete_elem(&gens, &tgid);
	bpf_map_delete_elem(&codegens, &tgid);
	e = reserve(sizeof(*e), OP_EXIT, tgid);
	if (e) {
		e->gen = gen;
		submit(e);
	}
	return 0;
}

/* Anonymous mmap: an allocation of its length, kept apart by its probe id. */
SEC("tp_btf/sys_exit")
int BPF_PROG(mmap_exit, struct pt_regs *regs, long ret)
{
	__u32 tgid = current_tgid();
	struct task_state *ts;
	__u32 weight;

	if (regs->orig_rax != NR_MMAP || !(regs->r10 & MAP_ANONYMOUS) ||
	    (unsigned long)ret >= (unsigned long)-MAX_ERRNO || tgid == self_tgid)
		return 0;
	ts = state(tgid);
	if (ts && ts->traced && (weight = admit(regs->rsi)))
		record_alloc(tgid, ts->gen, ret, regs->rsi, MMAP_PROBE, weight,
			     capture_stack(ctx, tgid, ts->gen, ts->codegen, 0));
	return 0;
}

/* munmap of a whole anonymous mapping frees it; a partial one is not matched. */
SEC("tp_btf/sys_enter")
int BPF_PROG(munmap_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = current_tgid();
	struct task_state *ts;
	struct live a;

	if (id != NR_MUNMAP || tgid == self_tgid)
		return 0;
	ts = state(tgid);
	if (ts && ts->traced && take(tgid, ts->gen, regs->rdi, &a))
		emit_free(tgid, &a);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_munmap")
int code_unmap_enter(struct syscall_enter_args *a)
{
	changing_code(a->args[0], a->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_munmap")
int code_unmap_exit(struct syscall_exit_args *a)
{
	code_changed(a->ret);
	return 0;
}

/* mmap with MAP_FIXED replaces what was mapped there, code included. */
SEC("tracepoint/syscalls/sys_enter_mmap")
int code_map_enter(struct syscall_enter_args *a)
{
	if (a->args[3] & MAP_FIXED)
		changing_code(a->args[0], a->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mmap")
int code_map_exit(struct syscall_exit_args *a)
{
	code_changed(a->ret);
	return 0;
}
