// Package workload runs an allocation-bound workload command and reads
// what one op cost it. A workload, given OPS as its last argument, prints
// "ready", waits for a line on stdin, does OPS allocations and frees, and
// prints ns_per_op=N: testdata/bench.c, or mtrace's built-in one (mtrace
// bench-workload).
//
// It starts only the command it is given and traces nothing itself.
package workload
