package attach

import (
	"fmt"
	"math"

	"github.com/mtrace/mtrace/bpf"
)

// Layout of a probe's attach cookie (enum cookie_field in bpf/mtrace.h):
// bits 0-15 the probe id, 16-23 the kind, 24-31 the flags (enum
// cookie_flag), 32-63 the handoff depth. bpf/cookie.h reads it back.
const (
	cookieKindShift  = uint64(bpf.AllocCookieFieldCOOKIE_KIND_SHIFT)
	cookieDepthShift = uint64(bpf.AllocCookieFieldCOOKIE_DEPTH_SHIFT)
	cookieMaxProbe   = 1<<cookieKindShift - 1
	cookieMaxKind    = math.MaxUint8
	cookieMaxDepth   = 1<<(64-cookieDepthShift) - 1
)

// probeCookie packs the attach cookie of probe id on p. A value that does
// not fit its field is an error, never truncated into its neighbour.
func probeCookie(p plannedProbe, id int) (uint64, error) {
	if id < 0 || uint64(id) > cookieMaxProbe {
		return 0, fmt.Errorf("probe cookie: probe id %d out of range", id)
	}
	if uint64(p.kind) > cookieMaxKind {
		return 0, fmt.Errorf("probe cookie: kind %d out of range", p.kind)
	}
	cookie := uint64(p.kind)<<cookieKindShift | uint64(id)
	if p.leaf {
		cookie |= uint64(bpf.AllocCookieFlagCOOKIE_LEAF)
	}
	if p.handoff {
		if p.depth > cookieMaxDepth {
			return 0, fmt.Errorf("probe cookie: handoff depth %d out of range", p.depth)
		}
		cookie |= uint64(bpf.AllocCookieFlagCOOKIE_HANDOFF) | p.depth<<cookieDepthShift
	}
	return cookie, nil
}
