package main

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/internal/overhead"
	"github.com/mtrace/mtrace/sink"
	"github.com/mtrace/mtrace/tracer/tracertest"
)

// TestSampleBytes traces testdata/sizes.cc, which makes many small, fewer
// middling and a few large allocations with malloc from three functions,
// and objects with operator new, which calls malloc inside, under byte
// sampling: with uprobe sessions, where a left-out malloc is not seen to
// return, and with return probes. Per function the estimated allocations
// and bytes must be within four standard deviations of the exact counts the
// program reports (a nested malloc sampled on its own would double the
// objects); the frees, weighted like their allocations, must match the
// allocations exactly; and every allocation is either an event or counted
// as left out. How many allocations the process makes in all (libstdc++
// makes one of its own at startup) is counted by a run without sampling.
// The same holds under glibc's malloc debugging library.
func TestSampleBytes(t *testing.T) {
	tracertest.RequireBPF(t)
	bin := tracertest.BuildC(t, "sizes.cc")
	unlimited := writeFile(t, "policy.toml", overhead.Policy)
	full, _ := recordJSON(t, "--policy", unlimited, "--", bin)
	t.Run("sessions", func(t *testing.T) { checkSampleBytes(t, bin, full.AllocationEvents) })
	t.Run("return probes", func(t *testing.T) {
		t.Setenv(kernel.PretendMissingEnv, "uprobe_session")
		checkSampleBytes(t, bin, full.AllocationEvents)
	})
	// glibc's malloc debugging library wraps malloc: operator new's call
	// is carried by its malloc, which calls libc's inside.
	t.Run("malloc debug", func(t *testing.T) {
		t.Setenv("LD_PRELOAD", requireFile(t, libDir+"/libc_malloc_debug.so.0"))
		full, _ := recordJSON(t, "--policy", unlimited, "--", bin)
		checkSampleBytes(t, bin, full.AllocationEvents)
	})
}

// checkSampleBytes checks a sampled run of bin, which makes made allocations.
func checkSampleBytes(t *testing.T, bin string, made uint64) {
	const rate = 16384
	r, out := recordJSON(t, "--sample-bytes", strconv.Itoa(rate), "--", bin)
	if r.SampleBytes != rate {
		t.Errorf("report says sample_bytes %d, want %d", r.SampleBytes, rate)
	}
	tallies := parseTallies(t, out)
	if len(tallies) != 1 {
		t.Fatalf("%d processes tallied, want 1:\n%s", len(tallies), out)
	}
	var tallied uint64
	for _, pt := range tallies {
		for fn, want := range pt {
			tallied += want.Allocs
			var got sink.Counts
			for _, p := range r.Processes {
				for _, s := range p.Stacks {
					if slices.ContainsFunc(s.Frames, func(f sink.Frame) bool { return f.Function == fn }) {
						got.Add(s.Counts)
					}
				}
			}
			size := want.AllocBytes / want.Allocs
			p := -math.Expm1(-float64(size) / rate)
			// The estimate of n allocations kept with chance p each has variance
			// n(1-p)/p; rounding weights to whole numbers adds at most 1/4 per sample.
			sd := math.Sqrt(float64(want.Allocs)*(1-p)/p + float64(want.Allocs)*p/4)
			t.Logf("%s: %d allocations of %d bytes, chance %.4f: estimated %d (sd %.0f)", fn, want.Allocs, size, p, got.Allocs, sd)
			if d := math.Abs(float64(got.Allocs) - float64(want.Allocs)); d > 4*sd+1 {
				t.Errorf("%s: estimated %d allocations, made %d: off by %.1f sd", fn, got.Allocs, want.Allocs, d/sd)
			}
			if got.AllocBytes != got.Allocs*size {
				t.Errorf("%s: estimated %d bytes for %d allocations of %d", fn, got.AllocBytes, got.Allocs, size)
			}
			if got.Frees != got.Allocs || got.FreeBytes != got.AllocBytes || got.LiveObjects != 0 {
				t.Errorf("%s: estimated frees %d (%d B), allocations %d (%d B), live %d: all were freed",
					fn, got.Frees, got.FreeBytes, got.Allocs, got.AllocBytes, got.LiveObjects)
			}
		}
	}
	for _, p := range r.Processes {
		for _, s := range p.Stacks {
			if len(s.Frames) > 1 && s.Frames[0].Function == "malloc" && strings.HasPrefix(s.Frames[1].Function, "operator new") {
				t.Errorf("%d mallocs nested in operator new recorded on their own", s.Allocs)
			}
		}
	}
	if made < tallied || made > tallied+10 {
		t.Errorf("%d allocations in the run without sampling, the program counted %d of its own", made, tallied)
	}
	if seen := r.AllocationEvents + r.Unsampled + r.SampledOut + r.LostEvents; seen != made {
		t.Errorf("%d events + %d left out by byte sampling + %d sampled out + %d lost = %d, want the %d allocations made",
			r.AllocationEvents, r.Unsampled, r.SampledOut, r.LostEvents, seen, made)
	}
	if r.AllocationEvents >= made/10 {
		t.Errorf("%d events for %d allocations: byte sampling kept too many", r.AllocationEvents, made)
	}
}
