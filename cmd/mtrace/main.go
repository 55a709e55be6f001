// Command mtrace traces heap allocations of unmodified Linux programs with
// eBPF uprobes and reports, per code path, how much they allocate and leak.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr, true))
}
