// Package kernel says what the running kernel offers mtrace: its version,
// the uprobe link kinds mtrace may use, and which cgroup hierarchies are
// mounted where.
//
// It also holds MTRACE_PRETEND_MISSING, a switch for tests only, which
// makes named features look absent so that the paths without them can be
// tested on a host that has them all. It never loads or attaches BPF
// programs, and it reads nothing of any process.
package kernel
