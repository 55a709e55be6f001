package attach

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/mtrace/mtrace/symbolize"
)

// Describe says, one line per allocator pid maps, where its probes would
// go: its path, then the functions probed past their symbol, how many are
// probed at it, the leaf functions, those that hand their calls off, and
// those left unprobed, by why. It attaches nothing.
func Describe(procRoot string, pid int) ([]string, error) {
	allocs, err := allocatorsOf(procRoot, pid)
	if err != nil {
		return nil, err
	}
	var found []string
	for _, a := range allocs {
		found = append(found, a.mapping.Path+" "+describeSites(pid, a))
	}
	return found, nil
}

// mappedAllocator is an allocator a process maps.
type mappedAllocator struct {
	mapping symbolize.Mapping
	sym     *symbolize.Symbolizer
}

// open opens the allocator's file, in process pid, and returns it with the
// symbols read through it, from which its probes are planned.
func (a mappedAllocator) open(pid int) (*os.File, *symbolize.Module, error) {
	return a.sym.ModuleFile(pid, a.mapping)
}

// allocatorsOf lists the allocators pid maps.
func allocatorsOf(procRoot string, pid int) ([]mappedAllocator, error) {
	maps, err := symbolize.ReadMaps(procRoot, pid)
	if err != nil {
		return nil, err
	}
	sym, err := symbolize.New(procRoot)
	if err != nil {
		return nil, err
	}
	var found []mappedAllocator
	for _, m := range maps {
		if mod, err := sym.Module(pid, m); err == nil && isAllocator(mod) {
			found = append(found, mappedAllocator{m, sym})
		}
	}
	return found, nil
}

// describeSites says where in the allocator a the probes would go:
// the functions probed past their symbol, where the kernel emulates the
// instruction, and how many are probed at the symbol; and the leaf
// functions, whose calls sampling leaves out skip the return probe where
// the kernel has uprobe sessions.
func describeSites(pid int, a mappedAllocator) string {
	f, mod, err := a.open(pid)
	if err != nil {
		return "(sites unknown: " + err.Error() + ")"
	}
	defer f.Close()
	var moved, leaves, handoffs []string
	atSymbol := 0
	planned, skipped := planProbes(f, mod)
	for _, p := range planned {
		if p.leaf {
			leaves = append(leaves, p.symbol)
		}
		if p.handoff {
			handoffs = append(handoffs, p.symbol)
		}
		if p.site.Offset == 0 {
			atSymbol++
			continue
		}
		moved = append(moved, fmt.Sprintf("%s+%d", p.symbol, p.site.Offset))
	}
	desc := fmt.Sprintf("(probe sites: %s; %d at the symbol", strings.Join(moved, " "), atSymbol)
	if len(leaves) > 0 {
		desc += "; calls left out by sampling skip the return probe (with uprobe sessions): " + strings.Join(leaves, " ")
	}
	if len(handoffs) > 0 {
		desc += "; may throw, so no return probe: the probed call each makes takes it over: " + strings.Join(handoffs, " ")
	}
	for _, why := range slices.Sorted(maps.Keys(skipped)) {
		desc += "; not probed, " + why + ": " + strings.Join(skipped[why], " ")
	}
	return desc + ")"
}
