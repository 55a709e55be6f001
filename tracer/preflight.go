package tracer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mtrace/mtrace/internal/hostcheck"
)

var (
	// ErrNotPermitted means mtrace lacks a capability it needs.
	ErrNotPermitted = errors.New("not permitted")
	// ErrUnsupportedKernel means the running kernel lacks a feature mtrace needs.
	ErrUnsupportedKernel = errors.New("unsupported kernel")
)

// Preflight checks that this process and kernel can trace: the required
// host checks of mtrace check, the first failure as the error.
func Preflight() error {
	for _, c := range hostcheck.Run("/proc", nil, false) {
		if c.OK || !c.Required {
			continue
		}
		kind := ErrUnsupportedKernel
		if strings.HasPrefix(c.Name, "cap_") {
			kind = ErrNotPermitted
		}
		return fmt.Errorf("%w: %s: %s (fix: %s)", kind, c.Name, c.Detail, c.Fix)
	}
	return nil
}
