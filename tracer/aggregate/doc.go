// Package aggregate is mtrace's counting core: the record of each process
// image from its first event or exec to its exec or exit, its counts per
// allocation function and stack, size and lifetime histograms and timeline,
// the folding that bounds the memory of exited and of many running images,
// leak counting, the metrics snapshot, and the report built from all of it.
//
// It is pure Go: it never touches the kernel, BPF maps or files. The tracer
// decodes the ring buffer and feeds it plain events, and says which images
// the policy denies; it reads stack frames through the small Stacks
// interface, and hands them, as file and offset locations, only to the
// symbolizer. No raw address enters it or leaves it.
package aggregate
