// gocgo: a Go program that allocates through C (cgo): allocBlock calls
// malloc from C code, called from Go goroutines whose stacks grow and move
// meanwhile. It says how many allocations it made and freed.
package main

/*
#include <stdlib.h>

__attribute__((noinline)) void *alloc_block(size_t n) { return malloc(n); }
__attribute__((noinline)) void free_block(void *p) { free(p); }
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
)

const goroutines, perGoroutine, size = 4, 500, 48

// deep recurses, so the goroutine's stack grows and is copied, allocating
// through C on the way.
func deep(d int) {
	p := C.alloc_block(size)
	defer C.free_block(p)
	if d > 0 {
		var pad [512]byte
		pad[d%512] = byte(d)
		deep(d - 1)
	}
}

func main() {
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perGoroutine/50; i++ {
				deep(49)
			}
		}()
	}
	wg.Wait()
	n := goroutines * perGoroutine
	fmt.Printf("tally pid=%d alloc_block allocs=%d alloc_bytes=%d frees=%d free_bytes=%d\n", os.Getpid(), n, n*size, n, n*size)
}
