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
 * (to tell user space, which judges each new image); the munmap and
 * mmap system calls' tracepoints see a traced process unmap a file's code. Optionally
 * (--mmap) the raw system-call tracepoints count anonymous mmap and munmap
 * as a separate kind of allocation (x86-64 system-call numbers).
 *
 * Maps (key -> value; who deletes entries):
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
 *   tasks    task -> struct task_state  per thread: its process's verdict and generation, cached
 *                                       until the epoch changes, and its call in flight; the
 *                                       kernel frees it with the thread
 *   live     {tgid, gen, addr} -> struct live  allocations not freed yet; the free probe, realloc
 *   gens     tgid -> u32                the process image's generation, set at fork and exec;
 *                                       exit deletes it (with the tgid's targets entry)
 *   codegens tgid -> u32                the code epoch when the process last unmapped a file's
 *                                       code (dlclose); a stack's hash includes it, since the
 *                                       same addresses may later hold other code; exit deletes it
 *   stacks   hash -> struct stack       user stacks seen, as file offsets, hashed with their image's
 *                                       tgid and generation; user space deletes an image's stacks
 *                                       once it has exec'd or exited
 *   scratch  0 -> struct scratch        per-CPU buffers for walking and resolving a stack
 *   files    {ino, dev} -> u8           files whose path user space was sent; never deleted while tracing
 *   exec_scratch 0 -> struct exec_event per-CPU buffer for an exec event and its path
 *   counters enum counter -> u64        per-CPU counts of what was dropped
 *   rates    0 -> struct rate           per-CPU allocation counts of the current rate window
 *   events   ring buffer of struct event
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
#include "mtrace.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Uprobe session kfuncs (Linux 6.13); only alloc_session calls them. */
extern _Bool bpf_session_is_return(void) __ksym;

/* Wake the reader only once this much data waits, so it is not woken per event. */
const volatile __u64 wakeup_bytes = 256 << 10;
/* Trace every process (--all); otherwise only targets and cgroups. */
const volatile __u8 trace_all = 0;
/* Trace the children of traced processes. */
const volatile __u8 follow_forks = 0;
/*
 * Never see an allocation return in a process under seccomp: this kernel's
 * return probe makes it call a system call its filter may deny, which
 * would kill it (user space tried: mtrace check). Needs uprobe sessions,
 * and links that run this program in every process.
 */
const volatile __u8 spare_sandboxed = 0;
/* Number of valid entries in the cgroups map. */
const volatile __u32 cgroup_count = 0;
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
/*
 * Bumped by user space whenever it changes which processes are traced
 * (targets, excluded) and every poll, for moves between cgroups: a thread's
 * cached verdict from an older epoch is made again.
 */
volatile __u64 epoch = 1;
/* Bumped here whenever a traced process unmapped a file's code: threads read their codegens entry again. */
volatile __u64 code_epoch = 0;
/* mtrace's own process, never traced. */
const volatile __u32 self_tgid = 0;
/*
 * The policy may deny an image (a deny or allow rule, or the built-in deny
 * list): a process whose fork or exec event is lost is excluded, since user
 * space cannot judge an image it has not heard of.
 */
const volatile __u8 may_deny = 0;
/* Probe id 0 is reserved for anonymous mmap/munmap (--mmap); user space numbers the uprobes from 1. */
#define MMAP_PROBE 0

#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define VM_EXEC 0x4
#define MAX_ERRNO 4095
#define EBUSY 16
/* x86-64 system-call numbers */
#define NR_MMAP 9
#define NR_MUNMAP 11
#define PF_KTHREAD 0x00200000

/* The kernel types the tracepoints read, relocated by CO-RE. */
typedef struct {
	int counter;
} atomic_t;

struct signal_struct {
	atomic_t live;
} __attribute__((preserve_access_index));

struct seccomp {
	int mode;
} __attribute__((preserve_access_index));

struct task_struct {
	unsigned int flags;
	int pid;
	int tgid;
	struct signal_struct *signal;
	struct seccomp seccomp;
} __attribute__((preserve_access_index));

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));

struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct super_block {
	__u32 s_dev;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	struct path f_path;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
} __attribute__((preserve_access_index));

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_flags;
	unsigned long vm_pgoff;
	struct file *vm_file;
} __attribute__((preserve_access_index));

#define PAGE_SHIFT 12

struct scratch {
	__u64 ips[MAX_STACK_DEPTH];
	__u64 files[MAX_STACK_DEPTH]; /* struct file pointers of the frames, never sent */
	struct stack stack;
};

struct file_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* What bpf_find_vma's callback fills for one address. */
struct resolve {
	struct frame f;
	__u64 file;
};

struct cgroup_filter {
	__u64 id;
	__u32 level;
	__u32 pad;
};

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

/* The event-rate budget is spent per tenth of a second. */
#define RATE_WINDOWS 10
#define NSEC_PER_SEC 1000000000ULL

struct rate {
	__u64 window; /* start of the current window */
	__u64 count;  /* allocations seen in it */
	__u64 kept;   /* allocations kept in it */
	__u64 keep;   /* chance of keeping one, in 2^-32 (0: all), from the last window's count */
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
	__u8 handoff;    /* its function may throw: a nested call is to carry it to a return */
	__u8 carried;    /* a nested call carries it: stack was walked at its entry */
	__u8 pad2[6];
	__u64 carrier_sp; /* handoff: the stack pointer the call that carries it starts with */
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
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} exec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FILES);
	__type(key, struct file_key);
	__type(value, __u8);
} files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate);
} rates SEC(".maps");

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
const enum kind *unused_kind __attribute__((unused));
const enum cookie_flag *unused_cookie_flag __attribute__((unused));
const enum cookie_field *unused_cookie_field __attribute__((unused));
const enum event_flag *unused_flag __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const struct cgroup_filter *unused_cgroup_filter __attribute__((unused));
const struct frame *unused_frame __attribute__((unused));
const struct exec_event *unused_exec_event __attribute__((unused));

/* The attach cookie's parts (enum cookie_flag, enum cookie_field in mtrace.h). */
static __always_inline __u16 cookie_probe(__u64 cookie)
{
	return cookie & ((1U << COOKIE_KIND_SHIFT) - 1);
}

static __always_inline __u8 cookie_kind(__u64 cookie)
{
	return cookie >> COOKIE_KIND_SHIFT;
}

/* cookie_leaf: the function calls no other probed function (COOKIE_LEAF). */
static __always_inline int cookie_leaf(__u64 cookie)
{
	return (cookie & COOKIE_LEAF) != 0;
}

/* cookie_handoff: the function may throw, and the probed call it makes carries its call (COOKIE_HANDOFF). */
static __always_inline int cookie_handoff(__u64 cookie)
{
	return (cookie & COOKIE_HANDOFF) != 0;
}

/* cookie_depth: with COOKIE_HANDOFF, how far below the entry's stack pointer the carrying call starts. */
static __always_inline __u64 cookie_depth(__u64 cookie)
{
	return cookie >> COOKIE_DEPTH_SHIFT;
}

/* current_tgid is the calling thread's process id (its thread group id). */
static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		(*c)++;
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

/* The state of a walk up a path, between steps of bpf_loop; pointers are kernel addresses. */
struct path_walk {
	__u64 dentry, vfsmount, mount;
	__u32 n;
	__u32 pad;
};

/*
 * walk_step is one step of the walk from a file up through its directories
 * and the mounts they sit on, to the root of its mount tree, writing each
 * name into the per-CPU exec_scratch record. Kernel memory only: dentry
 * names. bpf_loop verifies it once, however many steps are taken.
 */
static long walk_step(__u32 i, void *ctx)
{
	struct path_walk *w = ctx;
	struct dentry *d = (void *)w->dentry, *parent;
	struct vfsmount *vm = (void *)w->vfsmount;
	struct mount *m = (void *)w->mount;
	struct exec_event *x;
	__u32 zero = 0;

	if (d == BPF_CORE_READ(vm, mnt_root)) {
		struct mount *up = BPF_CORE_READ(m, mnt_parent);

		if (up == m)
			return 1;
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mount = (__u64)up;
		w->vfsmount = (__u64)up + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	parent = BPF_CORE_READ(d, d_parent);
	x = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (parent == d || w->n >= PATH_NAMES || !x)
		return 1;
	bpf_probe_read_kernel_str(x->name[w->n & (PATH_NAMES - 1)], PATH_NAME_LEN, BPF_CORE_READ(d, d_name.name));
	w->n++;
	w->dentry = (__u64)parent;
	return 0;
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

/*
 * emit_path sends user space a record naming file f (identity and path),
 * which it may no longer be able to find through /proc when it reads it.
 * It returns 0 if the record was sent.
 */
static __always_inline long emit_path(__u32 tgid, __u8 op, struct file *f, __u64 aux, __u32 gen)
{
	__u32 zero = 0;
	struct path_walk w = {};
	struct exec_event *x = bpf_map_lookup_elem(&exec_scratch, &zero);
	long err;

	if (!x)
		return -1;
	init_event(&x->e, tgid, op);
	x->e.stack = BPF_CORE_READ(f, f_inode, i_ino);
	x->e.size = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	x->e.age = aux;
	x->e.gen = gen;
	w.dentry = (__u64)BPF_CORE_READ(f, f_path.dentry);
	w.vfsmount = (__u64)BPF_CORE_READ(f, f_path.mnt);
	w.mount = w.vfsmount - bpf_core_field_offset(struct mount, mnt);
	bpf_loop(PATH_NAMES + 8, walk_step, &w, 0);
	x->names = w.n;
	err = bpf_ringbuf_output(&events, x, sizeof(*x), BPF_RB_FORCE_WAKEUP);
	if (err)
		count(COUNTER_LOST_EVENTS);
	return err;
}

/*
 * announce_step sends the path of frame i's file the first time any stack
 * runs through it, so a library that is unloaded (dlclose) or a process
 * that exits before user space looks is still symbolized.
 */
static long announce_step(__u32 i, void *ctx)
{
	__u32 tgid = *(__u32 *)ctx, zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct file_key k = {};
	__u8 one = 1;

	if (!s)
		return 1;
	barrier_var(i);
	i &= MAX_STACK_DEPTH - 1;
	if (!s->files[i])
		return 0;
	k.ino = s->stack.frames[i].ino;
	k.dev = s->stack.frames[i].dev;
	if (bpf_map_lookup_elem(&files, &k) || bpf_map_update_elem(&files, &k, &one, BPF_NOEXIST))
		return 0;
	emit_path(tgid, OP_FILE, (struct file *)s->files[i], 0, 0);
	return 0;
}

/*
 * resolve_frame is bpf_find_vma's callback: it fills the frame of one
 * address, which comes in through f.ino (the inode goes out the same way).
 */
static long resolve_frame(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct resolve *r = data;
	struct file *file = BPF_CORE_READ(vma, vm_file);
	__u64 ip = r->f.ino;

	r->f.ino = 0;
	if (!file)
		return 0;
	r->file = (__u64)file;
	r->f.ino = BPF_CORE_READ(file, f_inode, i_ino);
	r->f.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	r->f.off = ip - BPF_CORE_READ(vma, vm_start) + (BPF_CORE_READ(vma, vm_pgoff) << PAGE_SHIFT);
	return 0;
}

/*
 * resolve_step resolves frame i of the stack in the per-CPU scratch buffer.
 * The mapping lock may be taken (EBUSY): then the stack is not stored, and
 * its next occurrence tries again.
 */
static long resolve_step(__u32 i, void *ctx)
{
	__u32 *busy = ctx, zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	struct resolve r = {};
	__u64 ip;

	if (!s)
		return 1;
	/* i < len <= MAX_STACK_DEPTH already: the mask is for the verifier, the barrier keeps it. */
	barrier_var(i);
	i &= MAX_STACK_DEPTH - 1;
	ip = s->ips[i];
	r.f.ino = ip;
	if (bpf_find_vma(bpf_get_current_task_btf(), ip, resolve_frame, &r, 0) == -EBUSY) {
		*busy = 1;
		return 1;
	}
	if (r.f.ino == ip)
		r.f.ino = 0; /* no mapping at all */
	s->stack.frames[i] = r.f;
	s->files[i] = r.f.ino ? r.file : 0;
	return 0;
}

/*
 * Walk the user stack of image {tgid, gen}, whose code last changed at codegen,
 * and return its hash. A stack not seen before is resolved to files and
 * offsets and stored under its hash; 0
 * if it could not be walked or stored (it is then reported as unknown, and
 * tried again next time). Called at a uretprobe: the instruction pointer is then the
 * return address in the allocation's direct caller, so the walk starts with
 * that caller. Called at a function's entry, ret is the return address at
 * the stack pointer: the walk skips the frame in the function and starts
 * with ret, as it would at the return; at a return, ret is 0.
 */
static __always_inline __u64 capture_stack(void *ctx, __u32 tgid, __u32 gen, __u32 codegen, __u64 ret)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	long n;
	__u32 len, busy = 0;
	__u64 h;

	if (!s)
		return 0;
	if (ret) {
		s->ips[0] = ret;
		n = bpf_get_stack(ctx, &s->ips[1], sizeof(s->ips) - sizeof(s->ips[0]),
				  BPF_F_USER_STACK | (1 & BPF_F_SKIP_FIELD_MASK) /* skip one frame */);
		if (n < 0) {
			count(COUNTER_STACK_ERRORS);
			n = 0; /* the caller alone */
		}
		n += sizeof(s->ips[0]);
	} else {
		n = bpf_get_stack(ctx, s->ips, sizeof(s->ips), BPF_F_USER_STACK);
	}
	if (n <= 0) {
		count(COUNTER_STACK_ERRORS);
		return 0;
	}
	len = n / sizeof(__u64);
	h = 0x9e3779b97f4a7c15ULL ^ ((__u64)gen << 32 | tgid);
	h ^= codegen;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 32;
	for (int i = 0; i < MAX_STACK_DEPTH; i++) {
		if (i >= len)
			break;
		h ^= s->ips[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	if (h == 0)
		h = 1;
	if (bpf_map_lookup_elem(&stacks, &h))
		return h;

	s->stack.len = len;
	if (bpf_loop(len, resolve_step, &busy, 0) < 0 || busy) {
		/*
		 * bpf_find_vma could not take the mmap lock (another thread of the
		 * process is mapping memory): the stack is not stored now, but the
		 * allocation keeps its hash, and the next one from the same stack
		 * stores it for both.
		 */
		count(COUNTER_STACK_ERRORS);
		return h;
	}
	if (bpf_map_update_elem(&stacks, &h, &s->stack, BPF_NOEXIST) && !bpf_map_lookup_elem(&stacks, &h)) {
		count(COUNTER_STACKS_FULL);
		return 0;
	}
	bpf_loop(len, announce_step, &tgid, 0);
	return h;
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

static __always_inline __u32 generation(__u32 tgid)
{
	__u32 *g = bpf_map_lookup_elem(&gens, &tgid);

	return g ? *g : 0;
}

/* new_generation starts a new image of tgid: its allocations are keyed apart. */
static __always_inline void new_generation(__u32 tgid)
{
	__u32 g = bpf_ktime_get_ns() >> 10;

	bpf_map_update_elem(&gens, &tgid, &g, BPF_ANY);
}

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
		if (tier > 16)
			tier = 16;
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

/* record_alloc records an allocation admit kept with weight, made at stack. */
static __always_inline void record_alloc(__u32 tgid, __u32 gen, __u64 addr, __u64 size, __u16 probe, __u32 weight,
					 __u64 stack)
{
	struct live v = { .size = size, .probe = probe, .weight = weight };
	struct live_key k = { .tgid = tgid, .gen = gen, .addr = addr };
	struct event *e;

	e = reserve(tgid, OP_ALLOC);
	if (!e) {
		count(COUNTER_LOST_ALLOCS);
		return;
	}
	e->weight = v.weight;
	v.ts = e->ts;
	v.stack = stack;
	e->stack = stack;
	e->size = size;
	e->probe = probe;
	if (bpf_map_update_elem(&live, &k, &v, BPF_ANY)) {
		count(COUNTER_LIVE_FULL);
		e->flags = EVENT_UNTRACKED;
	}
	submit(e);
}

/* emit_free reports the end of allocation a, already taken out of the live map. */
static __always_inline void emit_free(__u32 tgid, struct live *a)
{
	struct event *e = reserve(tgid, OP_FREE);

	if (!e)
		return;
	e->stack = a->stack;
	e->size = a->size;
	e->age = e->ts - a->ts;
	e->probe = a->probe;
	e->weight = a->weight;
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

enum { UNRELATED, CARRIES, PASSED };

/*
 * carrier says what a call of kind at sp, nested in c (a call of a function
 * that may throw), is to c: the call that carries it to a return; the same
 * call passed on to another such function (operator new[] tail-calls
 * operator new), which then names the call that carries it; or unrelated:
 * another call it makes, or c is stale, left by a call that threw before.
 * The call that carries c starts where the function makes it, at the stack
 * pointer user space planned, and returns the block.
 */
static __always_inline int carrier(struct call *c, __u64 sp, __u8 kind, __u64 cookie)
{
	if (sp != c->carrier_sp)
		return UNRELATED;
	if (cookie_handoff(cookie)) {
		c->carrier_sp = sp - cookie_depth(cookie);
		return PASSED;
	}
	return kind == KIND_MALLOC || kind == KIND_CALLOC || kind == KIND_MEMALIGN ? CARRIES : UNRELATED;
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
 * that may throw (COOKIE_HANDOFF: the probed call it makes carries it), and,
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
	if (spare_sandboxed && sandboxed())
		return 1;
	c = &ts->call;
	/*
	 * A call at or below the recorded call's stack pointer is nested in it (a tail
	 * call, as realloc(NULL, n) makes to malloc, reuses the frame); a call above
	 * it means that record is stale, left by a call that never returned. A
	 * session does not see a nested call return; return probes see each. A
	 * call of a function that may throw is recorded without its return, for
	 * the call it makes to carry (carrier).
	 */
	if (ts->in_call && sp <= c->sp) {
		if (!c->handoff) {
			if (session || cookie_handoff(cookie))
				return 1;
			c->depth++;
			return 0;
		}
		switch (carrier(c, sp, kind, cookie)) {
		case CARRIES:
			/* Left out by sampling, like a leaf's own call below. */
			if (!c->weight && session && cookie_leaf(cookie)) {
				ts->in_call = 0;
				return 1;
			}
			c->handoff = 0;
			c->carried = 1;
			return 0;
		case PASSED:
			return 1;
		}
		/* Not carried by this call: the record is stale, and the call is seen afresh. */
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
	c->carried = 0;
	c->handoff = 0;
	ts->in_call = 1;
	if (!cookie_handoff(cookie))
		return 0;
	c->handoff = 1;
	c->carrier_sp = sp - cookie_depth(cookie);
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
			     c->carried ? c->stack : capture_stack(ctx, tgid, ts->gen, ts->codegen, 0));
}

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
	struct event *e;
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
	e = reserve(ctgid, OP_FORK);
	if (e) {
		e->size = ptgid;
		e->flags = flags;
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
	struct event *e;
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
	e = reserve(tgid, OP_EXIT);
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

/* The arguments of the syscalls tracepoints, as their format files lay them out. */
struct syscall_enter_args {
	__u64 common;
	__s64 nr;
	__u64 args[6];
};

struct syscall_exit_args {
	__u64 common;
	__s64 nr;
	__s64 ret;
};

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
