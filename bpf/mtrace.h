/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shared layout of everything that crosses the kernel/user boundary:
 * the ring-buffer records (a header, then one record type per kind of
 * event), the stack record, the live-allocation entry,
 * the operation and function enums, the counters and the map sizes.
 * The Go side uses the types bpf2go generates from this header.
 */
#ifndef MTRACE_H
#define MTRACE_H

#include <linux/types.h>

/*
 * Deepest user stack kept: the kernel's default limit (perf_event_max_stack,
 * 127) rounded up to a power of two, so that a mask bounds indexes.
 */
#define MAX_STACK_DEPTH 128

/* Default map sizes; the tracer may override them on the spec before load. */
#define MAX_TARGETS 4096
/* Processes excluded at once; past it a denied process's child is dropped in user space. */
#define MAX_EXCLUDED 65536
#define MAX_GENS 65536
#define MAX_FILES 16384
#define MAX_LIVE (1 << 20)
#define MAX_STACKS 16384
#define RINGBUF_BYTES (8 << 20)
/* Byte sampling's table of (1 - e^-x)/x: x in steps of 1/64 up to 16. */
#define SAMPLE_STEPS 1024
/* cgroups (v2) whose processes, and their descendants', are traced */
#define MAX_CGROUPS 8

/* What a record says happened; the first byte of every record, it says which record type follows. */
enum op {
	OP_ALLOC = 1, /* struct alloc_event: an allocation */
	OP_FREE = 2,  /* struct alloc_event: an allocation freed */
	OP_EXEC = 3,  /* struct file_event: the process replaced its image (the program it runs):
		       * what follows belongs to the new one, named by the record's file */
	OP_EXIT = 4,  /* struct exit_event: the last thread of the process exited */
	OP_FORK = 5,  /* struct fork_event: a traced process forked the process of the header's tgid */
	OP_FILE = 6,  /* struct file_event: a stack ran through a file not named before */
};

/*
 * How a probed function takes its arguments. The attach cookie of each probe
 * is (kind << COOKIE_KIND_SHIFT) | probe id, with the flags of enum
 * cookie_flag and the fields of enum cookie_field; user space knows which
 * function a probe id is.
 */
enum kind {
	KIND_MALLOC = 1,         /* ptr f(size, ...): malloc, valloc, pvalloc, operator new */
	KIND_CALLOC = 2,         /* ptr f(n, size) */
	KIND_REALLOC = 3,        /* ptr f(ptr, size) */
	KIND_REALLOCARRAY = 4,   /* ptr f(ptr, n, size) */
	KIND_MEMALIGN = 5,       /* ptr f(align, size): memalign, aligned_alloc */
	KIND_POSIX_MEMALIGN = 6, /* int f(ptr *out, align, size) */
	KIND_FREE = 7,           /* void f(ptr, ...): free, cfree, operator delete */
};

/* Flags in a probe's attach cookie, above its kind. */
enum cookie_flag {
	/*
	 * The function calls no other probed function: where uprobe sessions
	 * exist, a call that sampling leaves out need not be seen to return.
	 */
	COOKIE_LEAF = 1 << 24,
	/*
	 * The function may throw (operator new): its return is never probed,
	 * since a hijacked return address stops the unwinder, and a caught
	 * std::bad_alloc would end the program. Its call is handed off to the
	 * probed function it calls (malloc), whose return reports it.
	 */
	COOKIE_HANDOFF = 1 << 25,
};

/*
 * Fields of a probe's attach cookie: bits 0-15 the probe id, 16-23 the kind,
 * 24-31 the flags, 32-63 the depth.
 */
enum cookie_field {
	/* From this bit on, 8 bits: the probe's enum kind. Below it, 16 bits: its probe id. */
	COOKIE_KIND_SHIFT = 16,
	/*
	 * From this bit on, with COOKIE_HANDOFF: how far below the stack pointer
	 * at the function's entry, which its probe sees unmoved, the call it
	 * hands off to starts (0: a tail call).
	 */
	COOKIE_DEPTH_SHIFT = 32,
};

/* Flags of an alloc_event or a fork_event. */
enum event_flag {
	/* The allocation could not be remembered (live map full): its free will not be seen. */
	EVENT_UNTRACKED = 1 << 0,
	/* OP_FORK: the child was excluded at its fork, as its parent is. */
	EVENT_EXCLUDED = 1 << 1,
};

/* Per-CPU counters of what the kernel side could not do; index into the counters map. */
enum counter {
	COUNTER_LOST_EVENTS = 0, /* ring buffer full: event dropped */
	COUNTER_LIVE_FULL = 1,   /* live-allocation map full */
	COUNTER_STACKS_FULL = 2, /* stack map full: allocation kept without its stack */
	COUNTER_STACK_ERRORS = 3,/* user stack could not be walked, or not resolved yet (mmap lock busy) */
	COUNTER_CALLS_FULL = 4,  /* a thread's state could not be stored (no memory): call not traced */
	COUNTER_SAMPLED_OUT = 5, /* allocation left out by sampling above the event-rate limit */
	COUNTER_UNSAMPLED = 6,   /* allocation left out by byte sampling (--sample-bytes) */
	COUNTER_LOST_ALLOCS = 7, /* of the lost events, allocations (not remembered either) */
	COUNTER_TARGETS_FULL = 8,/* targets map full (max_targets): a traced process's child not traced */
	COUNTER_UNHEARD = 9,     /* a fork or exec event lost: the process (or its child) excluded, its image unchecked */
	COUNTER_MAX = 10,
};

/* What every ring-buffer record starts with: its kind, then whose it is. Metadata only. */
struct event_header {
	__u8 op;     /* enum op: which record type this is */
	__u8 pad[3];
	__u32 tgid;  /* thread group id of the process it is about */
};

/* An OP_ALLOC or OP_FREE record: 48 bytes, the one the allocation probes send. */
struct alloc_event {
	struct event_header hdr;
	__u64 ts;     /* CLOCK_MONOTONIC ns when it happened */
	__u64 stack;  /* hash of the allocating stack, key into the stacks map; 0 = unknown */
	__u64 size;   /* bytes requested (alloc) or bytes that were allocated (free) */
	__u64 age;    /* OP_FREE: ns the allocation lived; OP_ALLOC: 0 */
	__u32 weight; /* allocations this one stands for: 1, or more when sampled */
	__u16 probe;  /* probe id of the function that made the allocation */
	__u8 flags;   /* EVENT_UNTRACKED */
	__u8 pad;
};

/* An OP_FORK record. */
struct fork_event {
	struct event_header hdr; /* tgid: the child */
	__u32 parent;            /* the parent's tgid */
	__u8 flags;              /* EVENT_EXCLUDED */
	__u8 pad[3];
};

/* An OP_EXIT record. */
struct exit_event {
	struct event_header hdr;
	__u32 gen; /* generation of the image that ended */
};

/*
 * One frame of a user stack, resolved in the kernel when the stack is first
 * seen: the file mapped there and the offset into it. No absolute address
 * leaves the kernel, and a frame stays symbolizable after its process exits.
 * ino 0: no file is mapped there (anonymous or JIT code).
 */
struct frame {
	__u64 ino;
	__u32 dev; /* kernel dev_t: major << 20 | minor */
	__u32 off; /* offset of the return address into the file */
};

/* The path of a file, as names from the file up to the root of its mount tree. */
#define PATH_NAMES 16
#define PATH_NAME_LEN 64

/*
 * An OP_EXEC or OP_FILE record: a file by its identity and its path, which
 * user space may no longer find through /proc when it reads the record.
 */
struct file_event {
	struct event_header hdr;
	__u64 ino;
	__u64 cgroup; /* OP_EXEC: the process's cgroup v2 id; OP_FILE: 0 */
	__u32 dev;    /* kernel dev_t: major << 20 | minor */
	__u32 gen;    /* OP_EXEC: generation of the image that ended; OP_FILE: 0 */
	__u32 names;  /* valid entries of name */
	__u32 pad;
	char name[PATH_NAMES][PATH_NAME_LEN]; /* innermost (the file's own name) first */
};

/* A user stack, innermost frame (the allocation's direct caller) first. */
struct stack {
	__u32 len;
	__u32 pad;
	struct frame frames[MAX_STACK_DEPTH];
};

#endif
