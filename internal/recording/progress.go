package recording

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mtrace/mtrace/tracer"
)

// showProgress keeps a one-line status of the run on w, a terminal, until
// ctx is done: elapsed time, events per second, processes, lost events.
// It returns a function that waits for the line to be finished.
func showProgress(ctx context.Context, w io.Writer, t *tracer.Tracer) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last uint64
		for {
			select {
			case <-ctx.Done():
				fmt.Fprint(w, "\r\033[K")
				return
			case <-tick.C:
			}
			s := t.Metrics()
			fmt.Fprintf(w, "\r\033[Kmtrace: %s, %d events/s, %d processes, %d lost events",
				time.Since(start).Round(time.Second), s.Events-last, s.Processes, s.Lost)
			last = s.Events
		}
	}()
	return func() { <-done }
}
