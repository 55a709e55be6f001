package hostcheck

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mtrace/mtrace/symbolize"
	"github.com/mtrace/mtrace/tracer/unwind"
)

// stacksCheck says, for each file pid maps as code, how its stacks can be
// walked: by unwind tables (call-frame information), by frame pointers,
// both, or neither. It is informational: a module with neither still has
// its allocations counted, with shorter stacks.
func stacksCheck(procRoot string, pid int) Check {
	c := Check{Name: fmt.Sprintf("stacks %d", pid), Fix: "build with -fasynchronous-unwind-tables (the distributions' default) or -fno-omit-frame-pointer"}
	maps, err := symbolize.ReadMaps(procRoot, pid)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	sym, err := symbolize.New(procRoot)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	seen := make(map[[2]uint64]bool)
	var modules []string
	for _, m := range maps {
		if seen[[2]uint64{m.Dev, m.Inode}] {
			continue
		}
		seen[[2]uint64{m.Dev, m.Inode}] = true
		modules = append(modules, filepath.Base(m.Path)+": "+describeStacks(sym, pid, m))
	}
	c.OK = len(modules) > 0
	c.Detail = strings.Join(modules, "; ")
	return c
}

// describeStacks says how the stacks through one mapped file can be walked.
func describeStacks(sym *symbolize.Symbolizer, pid int, m symbolize.Mapping) string {
	f, mod, err := sym.ModuleFile(pid, m)
	if err != nil {
		return "unreadable (" + err.Error() + ")"
	}
	defer f.Close()
	var ways []string
	table, err := unwind.Build(f, unwind.Limits{})
	switch {
	case err == nil:
		ways = append(ways, fmt.Sprintf("unwind tables (%s, %d rows, %d KiB)", table.Source, len(table.Rows), (len(table.Rows)+1)*12>>10))
	case errors.Is(err, unwind.ErrNoCFI):
		ways = append(ways, "no unwind tables")
	default:
		ways = append(ways, "no usable unwind tables ("+err.Error()+")")
	}
	with, read := mod.FramePointers(f)
	ways = append(ways, fmt.Sprintf("frame pointers in %d of %d functions read", with, read))
	return strings.Join(ways, ", ")
}
