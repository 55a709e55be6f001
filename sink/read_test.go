package sink

import (
	"io"
	"testing"
)

// FuzzParseReport feeds arbitrary saved reports (JSON or pprof) to the
// report reader and renders what it accepts in every format: nothing may
// panic.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(`{"schema":1,"processes":[{"pid":1,"exe":"/bin/x","stacks":[{"frames":[{"function":"malloc","module":"libc.so.6"}],"allocs":2,"alloc_bytes":64}],"size_histogram":[{"below":64,"count":2}]}]}`))
	f.Add([]byte(`{"schema":1,"processes":[{"pid":0,"folded_processes":3,"timeline":[{"seconds":1,"live_bytes":5}]}]}`))
	f.Add([]byte("\x1f\x8b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data, 1<<20)
		if err != nil {
			return
		}
		for _, format := range Formats {
			if err := WriterFor(r, format, 10)(io.Discard); err != nil {
				t.Logf("%s: %v", format, err)
			}
		}
	})
}
