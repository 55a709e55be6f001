//go:build cgo

package main

// #cgo CFLAGS: -O2 -fno-omit-frame-pointer -DBENCH_LIBRARY
// #include "../../testdata/bench.c"
import "C"

// benchRun runs the loop of testdata/bench.c in this process: ops mallocs
// and frees through the C library, and returns the nanoseconds per op.
func benchRun(ops int64) (float64, error) {
	return float64(C.bench_run(C.long(ops))), nil
}
