package tracer

import "math"

// sampleSteps is SAMPLE_STEPS of bpf/mtrace.h; loading fails if they differ.
const sampleSteps = 1024

// sampleTable is the BPF byte sampler's table of g(x) = (1 - e^-x) / x at
// x = i/64, in units of 2^-31: the chance of keeping an allocation of S
// bytes is x·g(x) with x = S/SampleBytes.
func sampleTable() [sampleSteps + 1]uint32 {
	var g [sampleSteps + 1]uint32
	for i := range g {
		x := float64(i) / 64
		v := 1.0
		if x > 0 {
			v = -math.Expm1(-x) / x
		}
		g[i] = uint32(math.Round(v * (1 << 31)))
	}
	return g
}
