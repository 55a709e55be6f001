/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The attach cookie of an allocation probe, read through named accessors:
 * bits 0-15 the probe id, 16-23 its enum kind, 24-31 the flags of enum
 * cookie_flag, 32-63 the handoff depth (enum cookie_field). User space packs
 * it (tracer/attach/cookie.go).
 */
#ifndef COOKIE_H
#define COOKIE_H

#include "mtrace.h"

/* cookie_probe: the probe's id, by which user space knows its function. */
static __always_inline __u16 cookie_probe(__u64 cookie)
{
	return cookie & ((1U << COOKIE_KIND_SHIFT) - 1);
}

/* cookie_kind: how the function takes its arguments (enum kind). */
static __always_inline __u8 cookie_kind(__u64 cookie)
{
	return cookie >> COOKIE_KIND_SHIFT;
}

/* cookie_leaf: the function calls no other probed function (COOKIE_LEAF). */
static __always_inline int cookie_leaf(__u64 cookie)
{
	return (cookie & COOKIE_LEAF) != 0;
}

/* cookie_handoff: the function may throw, and the probed call it makes takes its call over (COOKIE_HANDOFF). */
static __always_inline int cookie_handoff(__u64 cookie)
{
	return (cookie & COOKIE_HANDOFF) != 0;
}

/* cookie_depth: with COOKIE_HANDOFF, how far below the entry's stack pointer the call it hands off to starts. */
static __always_inline __u64 cookie_depth(__u64 cookie)
{
	return cookie >> COOKIE_DEPTH_SHIFT;
}

#endif
