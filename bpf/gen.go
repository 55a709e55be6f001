// Package bpf holds the BPF C programs of mtrace and the Go bindings bpf2go
// generates from them. The generated files are committed so that a clone
// builds without clang; `make generate` reproduces them byte for byte.
//
// The programs send only metadata: sizes, counts, times, pids and the
// file and offset of each frame. They never read the memory an allocation
// returns or any byte of a target's data, and never send a raw address to
// user space except as the key of a live allocation, which the tracer
// walks and never keeps.
package bpf

// -cc and -cflags come from BPF2GO_CC and BPF2GO_CFLAGS, set once in the Makefile.
// -target amd64: the probes read x86-64 argument registers (__TARGET_ARCH_x86).
// -type event_header, alloc_event, file_event, fork_event, exit_event: the ring-buffer records from mtrace.h, one per kind of event.
// -type stack, op, kind, cookie_flag, cookie_field, event_flag, counter, cgroup_filter, frame: the stack record and the enums, as Go types and constants.
// -go-package bpf: the bindings live next to their sources.
//go:generate go tool bpf2go -target amd64 -type event_header -type alloc_event -type file_event -type fork_event -type exit_event -type stack -type op -type kind -type cookie_flag -type cookie_field -type event_flag -type counter -type cgroup_filter -type frame -go-package bpf Alloc alloc.c -- -I/usr/include/x86_64-linux-gnu
