package recording

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
)

// TestFitReportHalvesUntilItFits trims a report of 64 stacks written to a
// stream output of a small limit: it fits once few enough stacks are kept,
// what is written then is whole, and a limit no trimming meets is said.
func TestFitReportHalvesUntilItFits(t *testing.T) {
	report := func() *sink.Report {
		p := sink.Process{Pid: 1}
		for i := range 64 {
			p.Stacks = append(p.Stacks, sink.Stack{Frames: []sink.Frame{{Function: fmt.Sprintf("f%d", i)}},
				Counts: sink.Counts{Allocs: 1, AllocBytes: uint64(i + 1)}})
		}
		return &sink.Report{Schema: sink.Schema, Processes: []sink.Process{p}}
	}
	for _, tc := range []struct {
		limit int64
		fits  bool
	}{{4000, true}, {10, false}} {
		r := report()
		write := func(w io.Writer) error { return sink.WriteJSON(w, r) }
		var out bytes.Buffer
		o := sink.StreamOutput(&out, policy.File{MaxBytes: tc.limit})
		if err := o.Fits(write); err == nil {
			t.Fatalf("limit %d: the untrimmed report fits", tc.limit)
		}
		if got := fitReport(r, func() error { return o.Fits(write) }); got != tc.fits {
			t.Fatalf("limit %d: fitReport says %v, want %v", tc.limit, got, tc.fits)
		}
		if !tc.fits {
			continue
		}
		if err := o.Write(write); err != nil || int64(out.Len()) > tc.limit {
			t.Errorf("limit %d: wrote %d bytes, %v", tc.limit, out.Len(), err)
		}
		if n := len(r.Processes[0].Stacks); n >= 64 || r.Processes[0].Stacks[n-1].Frames[0].Function != sink.OtherStacks || r.TrimmedStacks == 0 {
			t.Errorf("limit %d: %d stacks kept, %d trimmed", tc.limit, n, r.TrimmedStacks)
		}
	}
}
