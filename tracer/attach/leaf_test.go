package attach

import (
	"os"
	"testing"

	"github.com/mtrace/mtrace/symbolize"
)

// TestGlibcLeaves plans the probes of this machine's C library: its malloc
// and calloc are leaves (their code neither branches to a probe site nor
// calls through a pointer), nothing else is, and libc_malloc_debug, whose
// malloc wraps glibc's, has none.
func TestGlibcLeaves(t *testing.T) {
	for path, want := range map[string][]string{
		"/lib/x86_64-linux-gnu/libc.so.6":                  {"malloc", "calloc"},
		"/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0": nil,
	} {
		planned, _, ok := planInstalled(t, path)
		if !ok && want == nil {
			continue
		}
		var leaves []string
		for _, p := range planned {
			if p.leaf {
				leaves = append(leaves, p.symbol)
			}
		}
		if len(leaves) != len(want) || (len(want) > 0 && (leaves[0] != want[0] || leaves[1] != want[1])) {
			t.Errorf("%s: leaves %v, want %v", path, leaves, want)
		}
	}
}

// planInstalled plans the probes of the library at path, if it is installed.
func planInstalled(t *testing.T, path string) (planned []plannedProbe, skipped map[string][]string, ok bool) {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		t.Logf("%s: not installed", path)
		return nil, nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mod, err := symbolize.OpenModule(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	planned, skipped = planProbes(f, mod)
	return planned, skipped, true
}
