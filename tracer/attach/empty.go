package attach

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/mtrace/mtrace/internal/kernel"
	"github.com/mtrace/mtrace/symbolize"
)

// EmptyProbes are programs that return at once, attached where mtrace would
// probe the allocators of one process, for that process only: what probing
// costs before mtrace does any work, the floor its overhead is measured from.
type EmptyProbes struct {
	prog  *ebpf.Program
	links []link.Link
	stats io.Closer // keeps the kernel counting runs (EmptyReturn)
}

// Empty attaches empty probes to every allocator pid maps, at the sites
// the planner chooses or, with atSymbol, at the functions' symbols.
func Empty(procRoot string, pid int, atSymbol bool) (_ *EmptyProbes, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the locked-memory limit: %w", err)
	}
	allocs, err := allocatorsOf(procRoot, pid)
	if err != nil {
		return nil, err
	}
	if len(allocs) == 0 {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrNoAllocator)
	}
	multi, _ := kernel.Links()
	e := &EmptyProbes{} // closed on failure; the result is then nil
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()
	if e.prog, err = ebpf.NewProgram(emptyProgram("mtrace_empty", multi)); err != nil {
		return nil, fmt.Errorf("load an empty program: %w", err)
	}
	for _, a := range allocs {
		if err := e.attach(pid, a, atSymbol, multi); err != nil {
			return nil, fmt.Errorf("attach empty probes to %s: %w", a.mapping.Path, err)
		}
	}
	return e, nil
}

// EmptyReturn attaches an empty return probe to the function symbol
// (malloc, say) of the first shared object pid maps that defines it, for
// pid only.
func EmptyReturn(procRoot string, pid int, symbol string) (*EmptyProbes, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the locked-memory limit: %w", err)
	}
	maps, err := symbolize.ReadMaps(procRoot, pid)
	if err != nil {
		return nil, err
	}
	exe, _ := os.Readlink(filepath.Join(procRoot, strconv.Itoa(pid), "exe"))
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("count probe runs: %w", err)
	}
	e := &EmptyProbes{stats: stats}
	if e.prog, err = ebpf.NewProgram(emptyProgram("mtrace_empty", false)); err != nil {
		return nil, errors.Join(fmt.Errorf("load an empty program: %w", err), e.Close())
	}
	tried := []error{fmt.Errorf("pid %d maps no shared object with a return probe on %s", pid, symbol)}
	for _, m := range maps {
		if m.Path == exe {
			continue // the program itself: a large symbol table, read by the search below for nothing
		}
		l, err := returnProbe(procRoot, pid, m, symbol, e.prog)
		if err == nil {
			e.links = append(e.links, l)
			return e, nil
		}
		tried = append(tried, fmt.Errorf("%s: %w", m.Path, err))
	}
	return nil, errors.Join(append(tried, e.Close())...)
}

// Fired reports whether the probes of EmptyReturn have run.
func (e *EmptyProbes) Fired() (bool, error) {
	s, err := e.prog.Stats()
	if err != nil {
		return false, fmt.Errorf("probe runs: %w", err)
	}
	return s.RunCount > 0, nil
}

// returnProbe attaches prog at the return of symbol in the file behind mapping m of pid, for pid only.
func returnProbe(procRoot string, pid int, m symbolize.Mapping, symbol string, prog *ebpf.Program) (link.Link, error) {
	f, err := symbolize.OpenMapped(procRoot, pid, m)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ex, err := link.OpenExecutable(fdPath(f))
	if err != nil {
		return nil, err
	}
	return ex.Uretprobe(symbol, prog, &link.UprobeOptions{PID: pid})
}

func (e *EmptyProbes) attach(pid int, a mappedAllocator, atSymbol, multi bool) error {
	f, mod, err := a.open(pid)
	if err != nil {
		return err
	}
	defer f.Close()
	var sites siteSets
	planned, _ := planProbes(f, mod)
	for _, p := range planned {
		addr := p.addr()
		if atSymbol {
			addr = p.off
		}
		sites.add(p, addr, 0, false)
	}
	links, err := attachSites(fdPath(f), sites, Programs{Enter: e.prog, Exit: e.prog}, multi, pid)
	e.links = append(e.links, links...)
	return err
}

// Close detaches the probes and unloads the program. It is safe to call on nil.
func (e *EmptyProbes) Close() error {
	if e == nil {
		return nil
	}
	err := CloseLinks(e.links)
	if e.prog != nil {
		err = errors.Join(err, e.prog.Close())
	}
	if e.stats != nil {
		err = errors.Join(err, e.stats.Close())
	}
	return err
}
