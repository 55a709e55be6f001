package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/mtrace/mtrace/bpf"
)

// liveBatch is how many live allocations one system call reads: a whole
// hash bucket must fit, and 4096 keeps a sweep of a million entries to a
// few hundred calls.
const liveBatch = 4096

// eachLive calls f for every allocation in the kernel's live map, read in
// batches. Entries added or deleted meanwhile may be seen or not.
func (t *Tracer) eachLive(f func(k bpf.AllocLiveKey, v bpf.AllocLive)) error {
	keys := make([]bpf.AllocLiveKey, liveBatch)
	values := make([]bpf.AllocLive, liveBatch)
	var cursor ebpf.MapBatchCursor
	for {
		n, err := t.objs.Live.BatchLookup(&cursor, keys, values, nil)
		for i := range n {
			f(keys[i], values[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read live allocations: %w", err)
		}
	}
}
