package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/mtrace/mtrace/bpf"
)

// pollInterval is how often the reader looks at the ring buffer when the
// kernel has not woken it: the BPF side wakes it only once enough data waits.
const pollInterval = 100 * time.Millisecond

// Run reads and aggregates events until every target has exited or ctx is
// done, then drains what is left in the ring buffer and returns the result.
func (t *Tracer) Run(ctx context.Context) (*Result, error) {
	allExited := make(chan struct{})
	go func() { t.exited.Wait(); close(allExited) }()

	var rec ringbuf.Record
	var e bpf.AllocEvent
	stopping := false
	for {
		deadline := time.Now().Add(pollInterval)
		if stopping {
			deadline = time.Now() // read what is in the ring, then stop
		}
		t.reader.SetDeadline(deadline)
		for {
			err := t.reader.ReadInto(&rec)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read ring buffer: %w", err)
			}
			if decodeEvent(rec.RawSample, &e) != nil {
				t.agg.malformed++
				continue
			}
			t.handle(&e)
		}
		if stopping {
			return t.result()
		}
		select {
		case <-ctx.Done():
			stopping = true
		case <-allExited:
			stopping = true
		default:
		}
	}
}

// handle accounts one event; the first event of a process refreshes its
// mappings, which may have grown since it was attached.
func (t *Tracer) handle(e *bpf.AllocEvent) {
	if p := t.procs[e.Pid]; p != nil && !p.seen {
		p.seen = true
		if err := t.cfg.Symbolizer.Snapshot(int(e.Pid)); err != nil {
			t.log.Debug("refresh mappings", "pid", e.Pid, "err", err)
		}
	}
	t.agg.add(e)
}
