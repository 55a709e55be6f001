/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * User stacks: the walk (bpf_get_stack), the hash that names a stack in
 * its image, its resolution to files and offsets (bpf_find_vma), and the
 * records that send user space the path of each file a stack runs through
 * and of each new executable (emit_path).
 */
#ifndef STACK_H
#define STACK_H

#include "mtrace.h"
#include "kernel.h"
#include "events.h"

/*
 * A stack's hash: the image's tgid, generation and code generation, then
 * each return address, mixed by multiply and xor-shift (the golden ratio's
 * bits as the seed, murmur3's finalizer constant as the multiplier).
 */
#define STACK_HASH_SEED 0x9e3779b97f4a7c15ULL
#define STACK_HASH_MUL 0xff51afd7ed558ccdULL

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
	__type(value, struct file_event);
} file_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FILES);
	__type(key, struct file_key);
	__type(value, __u8);
} files SEC(".maps");

/* Mount points a walk up a path may cross besides its PATH_NAMES names: each crossing is a step of its own. */
#define PATH_MOUNTS 8

/* The state of a walk up a path, between steps of bpf_loop; pointers are kernel addresses. */
struct path_walk {
	__u64 dentry, vfsmount, mount;
	__u32 n;
	__u32 pad;
};

/*
 * walk_step is one step of the walk from a file up through its directories
 * and the mounts they sit on, to the root of its mount tree, writing each
 * name into the per-CPU file_scratch record. Kernel memory only: dentry
 * names. bpf_loop verifies it once, however many steps are taken.
 */
static long walk_step(__u32 i, void *ctx)
{
	struct path_walk *w = ctx;
	struct dentry *d = (void *)w->dentry, *parent;
	struct vfsmount *vm = (void *)w->vfsmount;
	struct mount *m = (void *)w->mount;
	struct file_event *x;
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
	x = bpf_map_lookup_elem(&file_scratch, &zero);
	if (parent == d || w->n >= PATH_NAMES || !x)
		return 1;
	bpf_probe_read_kernel_str(x->name[w->n & (PATH_NAMES - 1)], PATH_NAME_LEN, BPF_CORE_READ(d, d_name.name));
	w->n++;
	w->dentry = (__u64)parent;
	return 0;
}

/*
 * emit_path sends user space a record naming file f (identity and path),
 * which it may no longer be able to find through /proc when it reads it;
 * an OP_EXEC record also says the process's cgroup and the generation of
 * the image that ended (0 for OP_FILE). It returns 0 if the record was sent.
 */
static __always_inline long emit_path(__u32 tgid, __u8 op, struct file *f, __u64 cgroup, __u32 gen)
{
	__u32 zero = 0;
	struct path_walk w = {};
	struct file_event *x = bpf_map_lookup_elem(&file_scratch, &zero);
	long err;

	if (!x)
		return -1;
	header(&x->hdr, op, tgid);
	x->ino = BPF_CORE_READ(f, f_inode, i_ino);
	x->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	x->cgroup = cgroup;
	x->gen = gen;
	w.dentry = (__u64)BPF_CORE_READ(f, f_path.dentry);
	w.vfsmount = (__u64)BPF_CORE_READ(f, f_path.mnt);
	w.mount = w.vfsmount - bpf_core_field_offset(struct mount, mnt);
	bpf_loop(PATH_NAMES + PATH_MOUNTS, walk_step, &w, 0);
	x->names = w.n;
	x->pad = 0;
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
	h = STACK_HASH_SEED ^ ((__u64)gen << 32 | tgid);
	h ^= codegen;
	h *= STACK_HASH_MUL;
	h ^= h >> 32;
	for (int i = 0; i < MAX_STACK_DEPTH; i++) {
		if (i >= len)
			break;
		h ^= s->ips[i];
		h *= STACK_HASH_MUL;
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

#endif
