package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/mtrace/mtrace/symbolize"
)

// EmptyProbes are programs that return at once, attached where mtrace would
// probe the allocators of one process, for that process only: what probing
// costs before mtrace does any work, the floor its overhead is measured from.
type EmptyProbes struct {
	prog  *ebpf.Program
	links []link.Link
}

// AttachEmpty attaches empty probes to every allocator pid maps, at the sites
// the planner chooses or, with atSymbol, at the functions' symbols.
func AttachEmpty(procRoot string, pid int, atSymbol bool) (e *EmptyProbes, err error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raise the locked-memory limit: %w", err)
	}
	allocs, err := allocatorsOf(procRoot, pid)
	if err != nil {
		return nil, err
	}
	if len(allocs) == 0 {
		return nil, fmt.Errorf("pid %d: %w", pid, errNoAllocator)
	}
	multi, _ := linkKinds()
	e = &EmptyProbes{}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()
	if e.prog, err = ebpf.NewProgram(emptyProgram("mtrace_empty", multi)); err != nil {
		return nil, fmt.Errorf("load an empty program: %w", err)
	}
	for _, a := range allocs {
		if err := e.attach(procRoot, pid, a, atSymbol, multi); err != nil {
			return nil, fmt.Errorf("attach empty probes to %s: %w", a.mapping.Path, err)
		}
	}
	return e, nil
}

func (e *EmptyProbes) attach(procRoot string, pid int, a mappedAllocator, atSymbol, multi bool) error {
	f, err := symbolize.OpenMapped(procRoot, pid, a.mapping)
	if err != nil {
		return err
	}
	defer f.Close()
	var sites siteSets
	planned, _ := planProbes(f, a.mod)
	for _, p := range planned {
		addr := p.addr()
		if atSymbol {
			addr = p.off
		}
		sites.add(p, addr, 0, false)
	}
	links, err := attachSites(fdPath(f), sites, programs{enter: e.prog, exit: e.prog}, multi, pid)
	e.links = append(e.links, links...)
	return err
}

// Close detaches the probes and unloads the program.
func (e *EmptyProbes) Close() error {
	err := closeAll(e.links)
	if e.prog != nil {
		err = errors.Join(err, e.prog.Close())
	}
	return err
}
