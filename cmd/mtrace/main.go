// Command mtrace traces heap allocations of unmodified Linux programs with
// eBPF uprobes and reports, per code path, how much they allocate and leak.
//
// It holds the command line only: flags, help texts, exit codes and the
// wiring of the library packages. Rules come from policy, tracing from
// tracer, outputs from sink, and the steps of a recording and the
// self-tests from internal/; it decides none of them itself.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr, true))
}
