package tracer

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mtrace/mtrace/policy"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestRunKeepsWhatItReadWhenTheRingFails closes the ring buffer under a run
// whose target has made its allocations: Run must say why it stopped and
// still return everything it had read.
func TestRunKeepsWhatItReadWhenTheRingFails(t *testing.T) {
	tracertest.RequireBPF(t)
	hold := tracertest.BuildC(t, "hold.c")
	const n = 1000
	tr, err := New(t.Context(), Config{
		Command: []string{hold, "1000", "30"},
		Policy:  resolve(t, policy.Default()),
		Stdout:  io.Discard,
		Stderr:  io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	type ran struct {
		r   *sink.Report
		err error
	}
	done := make(chan ran, 1)
	go func() {
		r, err := tr.Run(t.Context())
		done <- ran{r, err}
	}()
	// The block array (calloc) and the n blocks are allocated before hold sleeps.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if s := tr.Snapshot(t.Context()); s != nil && s.AllocationEvents >= n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the target's allocations were not seen")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tr.reader.Close()
	got := <-done
	if got.err == nil || !strings.Contains(got.err.Error(), "read ring buffer") {
		t.Errorf("Run returned %v, want the ring buffer's error", got.err)
	}
	if got.r == nil {
		t.Fatal("Run returned no result")
	}
	var allocs uint64
	for _, p := range got.r.Processes {
		for _, s := range p.Stacks {
			allocs += s.Allocs
		}
	}
	if got.r.AllocationEvents < n+1 || allocs != got.r.AllocationEvents {
		t.Errorf("result: %d allocation events, %d in stacks; want the %d seen before the failure", got.r.AllocationEvents, allocs, n+1)
	}
}

// TestLossAccounting traces a program that makes 5,001 allocations with a
// ring buffer of one page that nobody reads until the program has exited:
// most events are lost, and every allocation is accounted for all the same,
// as an event received, a lost allocation, or one sampled out.
func TestLossAccounting(t *testing.T) {
	tracertest.RequireBPF(t)
	hold := tracertest.BuildC(t, "hold.c")
	const made = 5000 + 1 // the blocks and the array holding them
	pol := policy.Default()
	pol.Limits.RingBufferBytes = 4096
	tr, err := New(t.Context(), Config{Command: []string{hold, "5000", "0"}, Policy: resolve(t, pol), Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	<-tr.cmdDone // the consumer starts only now
	r, err := tr.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d allocation events, %d lost (of %d events lost), %d sampled out, %d unsampled",
		r.AllocationEvents, r.LostAllocations, r.LostEvents, r.SampledOut, r.Unsampled)
	if r.LostAllocations == 0 || r.LostEvents < r.LostAllocations {
		t.Errorf("%d allocations lost of %d events lost: a page of ring cannot hold %d allocations", r.LostAllocations, r.LostEvents, made)
	}
	if got := r.AllocationEvents + r.LostAllocations + r.SampledOut + r.Unsampled; got != made {
		t.Errorf("events %d + lost %d + sampled out %d + unsampled %d = %d, want the %d allocations made",
			r.AllocationEvents, r.LostAllocations, r.SampledOut, r.Unsampled, got, made)
	}
}

// resolve is p without overrides.
func resolve(t *testing.T, p *policy.Policy) *policy.Effective {
	t.Helper()
	e, err := policy.Resolve(p, policy.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
