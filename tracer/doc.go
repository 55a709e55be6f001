// Package tracer loads mtrace's BPF programs, has tracer/attach put them on
// the allocator of each target process, reads the ring buffer of allocation events and
// hands them, decoded, to its aggregate (tracer/aggregate), whose report
// (sink.Report) and metrics (sink.Metrics) it returns.
//
// It owns every kernel resource of a run: programs, maps, links and the ring
// buffer reader are closed by Close on every path. It decides what the
// kernel side traces: the policy's verdict on each process image, the
// kernel's exclusions, symbol loading, cgroup lookup and probe attachment;
// the aggregate only records which images are denied. No raw address leaves
// it: the kernel resolves stacks to files and offsets (symbolize.Location),
// which the aggregate hands to the symbolizer only.
package tracer
