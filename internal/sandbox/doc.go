// Package sandbox tries whether, on this kernel, a return probe kills a
// process whose seccomp filter denies the uretprobe system call (mtrace
// check's "sandboxes" check and the tracer's Config.SandboxRisk), and puts
// the built-in workload under such a filter for that try.
//
// It probes only the workload it starts, for that workload only, and
// never a target.
package sandbox
