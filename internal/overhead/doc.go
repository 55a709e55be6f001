// Package overhead measures what tracing costs per allocation on this host
// (mtrace check --overhead): an allocation-bound workload runs untraced,
// under empty probes (at the symbols, then at the planned sites: the floor
// any eBPF allocation tracer pays), under mtrace record, and under the
// other tracers installed, interleaved over several rounds; it prints ns
// per op with the ratio of each to the floor measured in the same run.
//
// It probes and traces only the workload it starts, and writes only in a
// temporary directory of its own, which it removes.
package overhead
