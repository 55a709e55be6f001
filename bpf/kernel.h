/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel's side of things: the few fields of its types the programs
 * read, as CO-RE stubs that libbpf relocates against the running kernel's
 * BTF; the kernel constants they test (mmap flags, errno, x86-64 system-call
 * numbers); and the argument layouts of the syscalls tracepoints.
 */
#ifndef KERNEL_H
#define KERNEL_H

#include <linux/types.h>

/* Flags and limits of the kernel's ABI and internals, as of x86-64 Linux. */
#define MAP_FIXED 0x10     /* mmap flag: replace what is mapped at addr */
#define MAP_ANONYMOUS 0x20 /* mmap flag: no file behind the mapping */
#define VM_EXEC 0x4        /* vm_area_struct.vm_flags: the mapping is executable */
#define PF_KTHREAD 0x00200000 /* task_struct.flags: a kernel thread */
#define PAGE_SHIFT 12
/* System calls return -errno, from -1 to -MAX_ERRNO. */
#define MAX_ERRNO 4095
#define EBUSY 16
/* x86-64 system-call numbers */
#define NR_MMAP 9
#define NR_MUNMAP 11

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

#endif
