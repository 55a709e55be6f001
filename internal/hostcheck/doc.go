// Package hostcheck says, one check per feature, whether this host can run
// mtrace and why not: the kernel, its BPF features, the capabilities mtrace
// holds, whether its BPF programs load, and which allocators it would probe
// in a given process. It is what mtrace check prints and what the tracer's
// Preflight reads.
//
// It loads programs only to unload them and attaches nothing; of a process
// it reads only its mappings and the files they name, through descriptors.
package hostcheck
