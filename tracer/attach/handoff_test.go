package attach

import (
	"slices"
	"testing"
)

// TestThrowingNewPlanned plans the allocators on this machine: libstdc++'s
// throwing forms of operator new hand their calls off (it calls malloc or
// aligned_alloc through its PLT, operator new[] tail-calls operator new),
// and get no return probe; so do jemalloc's aligned forms, which call its
// aligned_alloc. jemalloc's other forms, tcmalloc's and mimalloc's allocate
// by themselves, and are not probed at all. No other function is either.
func TestThrowingNewPlanned(t *testing.T) {
	libstdcxx := []string{"_Znwm", "_Znam", "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t"}
	for path, want := range map[string]struct {
		handoff, skipped []string
		depths           []uint64 // where the calls that take theirs over start, checked with objdump
	}{
		// push %rbx, call malloc; jmp _Znwm; push %rbp, push %rbx, sub $8, call aligned_alloc; jmp
		"/usr/lib/x86_64-linux-gnu/libstdc++.so.6": {handoff: libstdcxx, depths: []uint64{16, 0, 32, 0}},
		// push %rbx, call aligned_alloc; the same
		"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2":       {handoff: libstdcxx[2:], skipped: libstdcxx[:2], depths: []uint64{16, 16}},
		"/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4":       {skipped: []string{"_Znwm", "_ZnwmSt11align_val_t"}},
		"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2":       {skipped: []string{"_Znwm", "_ZnwmSt11align_val_t"}},
		"/lib/x86_64-linux-gnu/libc.so.6":                  {},
		"/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0": {},
	} {
		planned, skipped, ok := planInstalled(t, path)
		if !ok {
			continue
		}
		var handoff []string
		var depths []uint64
		sites := make(map[string]bool)
		for _, p := range planned {
			if p.handoff {
				handoff = append(handoff, p.symbol)
				depths = append(depths, p.depth)
				if !throwing[p.symbol] {
					t.Errorf("%s: %s hands off", path, p.symbol)
				}
			}
			var s siteSets
			s.add(p, p.addr(), 0, false)
			sites[p.symbol] = len(s.exit.symbols) > 0
		}
		if !slices.Equal(handoff, want.handoff) || !slices.Equal(depths, want.depths) {
			t.Errorf("%s: hand off %v at depths %v, want %v at %v", path, handoff, depths, want.handoff, want.depths)
		}
		if got := skipped[whyNotThrowing]; !slices.Equal(got, want.skipped) || len(skipped) > min(len(got), 1) {
			t.Errorf("%s: skipped %v, want %v", path, skipped, want.skipped)
		}
		for symbol := range throwing {
			if sites[symbol] {
				t.Errorf("%s: %s gets a return probe", path, symbol)
			}
		}
	}
}
