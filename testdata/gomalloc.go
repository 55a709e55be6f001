// gomalloc: a pure Go program that happens to define functions named malloc
// and free (through go:linkname), and calls them from goroutines whose
// stacks grow and move meanwhile.
package main

import (
	"fmt"
	"sync"
	_ "unsafe"
)

var sink []byte

//go:linkname goMalloc malloc
//go:noinline
func goMalloc(n int) []byte { return make([]byte, n) }

//go:linkname goFree free
//go:noinline
func goFree(b []byte) { sink = b }

// deep recurses, so the goroutine's stack grows and is copied, calling
// malloc and free on the way down and back up.
func deep(d int) int {
	b := goMalloc(64)
	defer goFree(b)
	if d == 0 {
		return len(b)
	}
	var pad [256]byte
	pad[d%256] = byte(d)
	return deep(d-1) + int(pad[d%256]&0)
}

func main() {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				deep(200)
			}
		}()
	}
	wg.Wait()
	fmt.Println("done")
}
