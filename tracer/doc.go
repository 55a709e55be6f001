// Package tracer loads mtrace's BPF programs, has tracer/attach put them on
// the allocator of each target process, reads the ring buffer of allocation
// events and aggregates them per process and stack.
//
// It owns every kernel resource of a run: programs, maps, links and the ring
// buffer reader are closed by Close on every path. It passes raw return
// addresses to symbolize and to its caller only, never to an output.
package tracer
