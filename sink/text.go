package sink

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
)

// WriteText writes the terminal report: totals, lost events, and per process
// the top stacks by bytes and by count.
func WriteText(w io.Writer, r *Report, top int) error {
	p := &printer{w: w}
	p.printf("mtrace: %d process(es) traced for %.2fs, lost events: %d", len(r.Processes), r.DurationSeconds, r.LostEvents)
	if r.LostEvents > 0 {
		p.printf(" (%d of them allocations)", r.LostAllocations)
	}
	p.printf("\n")
	if r.SampledOut > 0 {
		p.printf("sampled: %d allocations left out above the event-rate limit; counts are estimates\n", r.SampledOut)
	}
	if r.SampleBytes > 0 {
		p.printf("sampled by bytes, one in %d on average: %d allocations left out; counts are estimates\n", r.SampleBytes, r.Unsampled)
	}
	if r.SkippedProcesses > 0 {
		p.printf("skipped %d process(es) the policy does not allow tracing\n", r.SkippedProcesses)
	}
	if r.TrimmedStacks > 0 {
		p.printf("trimmed: %d smaller stacks summed into %s to fit max_output_bytes\n", r.TrimmedStacks, OtherStacks)
	}
	if r.FoldedProcesses > 0 {
		p.printf("folded: %d process(es) summed into the entries of their executables to bound mtrace's memory", r.FoldedProcesses)
		if r.FoldedStacks > 0 {
			p.printf(", %d of their stacks into %s past max_stacks", r.FoldedStacks, OtherStacks)
		}
		p.printf("\n")
	}
	if d := r.Dropped; d != (Dropped{}) {
		p.printf("dropped: live map full %d, stack map full %d, stack errors %d, calls full %d, malformed records %d",
			d.LiveMapFull, d.StackMapFull, d.StackErrors, d.CallsFull, d.Malformed)
		if d.TargetsFull > 0 {
			p.printf(", children not traced past max_targets %d", d.TargetsFull)
		}
		if d.Unheard > 0 {
			p.printf(", processes excluded for a lost fork or exec event %d", d.Unheard)
		}
		p.printf("\n")
	}
	for _, proc := range r.Processes {
		t := proc.Totals
		if proc.FoldedProcesses > 0 {
			p.printf("\n%d processes of %s, folded together (allocator %s", proc.FoldedProcesses, proc.Exe, proc.Allocator)
		} else {
			p.printf("\npid %d %s (argv[0] %s, allocator %s", proc.Pid, proc.Exe, proc.Argv0, proc.Allocator)
		}
		if proc.Cgroup != "" && proc.Cgroup != "/" {
			p.printf(", cgroup %s", proc.Cgroup)
		}
		if proc.Exited {
			p.printf(", exited")
		}
		p.printf(")\n")
		p.printf("  %d allocs (%s), %d frees (%s), live at end: %d objects (%s)\n",
			t.Allocs, Bytes(t.AllocBytes), t.Frees, Bytes(t.FreeBytes), t.LiveObjects, Bytes(t.LiveBytes))
		p.stacks("top stacks by bytes allocated", proc.Stacks, top, func(a, b Stack) bool { return a.AllocBytes > b.AllocBytes })
		p.stacks("top stacks by allocation count", proc.Stacks, top, func(a, b Stack) bool { return a.Allocs > b.Allocs })
		if t.LeakedObjects > 0 {
			var leaking []Stack
			for _, s := range proc.Stacks {
				if s.LeakedObjects > 0 {
					leaking = append(leaking, s)
				}
			}
			p.stacks(fmt.Sprintf("leaks: %d objects (%s) live and older than %.0fs", t.LeakedObjects, Bytes(t.LeakedBytes), r.LeakMinAgeSeconds),
				leaking, top, func(a, b Stack) bool { return a.LeakedBytes > b.LeakedBytes })
		}
	}
	return p.err
}

// printer remembers the first write error so the report reads straight,
// and escapes every string it prints: those are a target's names.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = Escape(s)
		}
	}
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) stacks(title string, stacks []Stack, top int, less func(a, b Stack) bool) {
	sorted := append([]Stack(nil), stacks...)
	sort.SliceStable(sorted, func(i, j int) bool { return less(sorted[i], sorted[j]) })
	if len(sorted) > top {
		sorted = sorted[:top]
	}
	p.printf("\n  %s\n", title)
	for _, s := range sorted {
		p.printf("    %s in %d allocs, live %s in %d\n", Bytes(s.AllocBytes), s.Allocs, Bytes(s.LiveBytes), s.LiveObjects)
		for _, f := range s.Frames {
			p.printf("      %s", f.Function)
			if f.Module != "" {
				p.printf(" (%s)", filepath.Base(f.Module))
			}
			if f.File != "" {
				p.printf(" %s:%d", f.File, f.Line)
			}
			if f.Inlined {
				p.printf(" [inlined]")
			}
			p.printf("\n")
		}
	}
}

// Bytes formats a byte count for people: 512 B, 1.5 KiB, 3.0 MiB.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
