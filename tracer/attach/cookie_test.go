package attach

import (
	"testing"

	"github.com/mtrace/mtrace/bpf"
)

// TestProbeCookie checks each field lands where bpf/cookie.h reads it, and
// that a value too wide for its field is refused rather than truncated.
func TestProbeCookie(t *testing.T) {
	p := plannedProbe{allocFunc: allocFunc{kind: kindMalloc}, leaf: true, handoff: true, depth: 24}
	c, err := probeCookie(p, 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := c & cookieMaxProbe; got != 7 {
		t.Errorf("probe id %d, want 7", got)
	}
	if got := uint8(c >> cookieKindShift); bpf.AllocKind(got) != kindMalloc {
		t.Errorf("kind %d, want %d", got, kindMalloc)
	}
	if c&uint64(bpf.AllocCookieFlagCOOKIE_LEAF) == 0 || c&uint64(bpf.AllocCookieFlagCOOKIE_HANDOFF) == 0 {
		t.Errorf("flags missing in %#x", c)
	}
	if got := c >> cookieDepthShift; got != 24 {
		t.Errorf("depth %d, want 24", got)
	}
	for _, bad := range []struct {
		p  plannedProbe
		id int
	}{
		{plannedProbe{allocFunc: allocFunc{kind: kindMalloc}}, maxProbes},
		{plannedProbe{allocFunc: allocFunc{kind: kindMalloc}}, -1},
		{plannedProbe{allocFunc: allocFunc{kind: 256}}, 0},
		{plannedProbe{allocFunc: allocFunc{kind: kindMalloc}, handoff: true, depth: 1 << 32}, 0},
	} {
		if c, err := probeCookie(bad.p, bad.id); err == nil {
			t.Errorf("probeCookie(%+v, %d) = %#x, want an error", bad.p, bad.id, c)
		}
	}
}
