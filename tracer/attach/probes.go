package attach

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/symbolize"
	"github.com/mtrace/mtrace/tracer/attach/probesite"
)

// allocFunc is one function mtrace probes and how it takes its arguments.
type allocFunc struct {
	symbol string
	name   string // as reports show it
	kind   bpf.AllocKind
}

const (
	kindMalloc        = bpf.AllocKindKIND_MALLOC
	kindCalloc        = bpf.AllocKindKIND_CALLOC
	kindRealloc       = bpf.AllocKindKIND_REALLOC
	kindReallocarray  = bpf.AllocKindKIND_REALLOCARRAY
	kindMemalign      = bpf.AllocKindKIND_MEMALIGN
	kindPosixMemalign = bpf.AllocKindKIND_POSIX_MEMALIGN
	kindFree          = bpf.AllocKindKIND_FREE
)

// allocFuncs are the C and C++ allocation functions, as glibc, libstdc++,
// jemalloc, tcmalloc, mimalloc and static executables define them. Each
// form of operator new comes before its new[], which may tail-call it
// (planProbes).
var allocFuncs = []allocFunc{
	{"malloc", "malloc", kindMalloc},
	{"calloc", "calloc", kindCalloc},
	{"realloc", "realloc", kindRealloc},
	{"reallocarray", "reallocarray", kindReallocarray},
	{"posix_memalign", "posix_memalign", kindPosixMemalign},
	{"aligned_alloc", "aligned_alloc", kindMemalign},
	{"memalign", "memalign", kindMemalign},
	{"valloc", "valloc", kindMalloc},
	{"pvalloc", "pvalloc", kindMalloc},
	{"free", "free", kindFree},
	{"cfree", "cfree", kindFree},
	{"_Znwm", "operator new(unsigned long)", kindMalloc},
	{"_Znam", "operator new[](unsigned long)", kindMalloc},
	{"_ZnwmRKSt9nothrow_t", "operator new(unsigned long, std::nothrow_t const&)", kindMalloc},
	{"_ZnamRKSt9nothrow_t", "operator new[](unsigned long, std::nothrow_t const&)", kindMalloc},
	{"_ZnwmSt11align_val_t", "operator new(unsigned long, std::align_val_t)", kindMalloc},
	{"_ZnamSt11align_val_t", "operator new[](unsigned long, std::align_val_t)", kindMalloc},
	{"_ZnwmSt11align_val_tRKSt9nothrow_t", "operator new(unsigned long, std::align_val_t, std::nothrow_t const&)", kindMalloc},
	{"_ZnamSt11align_val_tRKSt9nothrow_t", "operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)", kindMalloc},
	{"_ZdlPv", "operator delete(void*)", kindFree},
	{"_ZdaPv", "operator delete[](void*)", kindFree},
	{"_ZdlPvm", "operator delete(void*, unsigned long)", kindFree},
	{"_ZdaPvm", "operator delete[](void*, unsigned long)", kindFree},
	{"_ZdlPvSt11align_val_t", "operator delete(void*, std::align_val_t)", kindFree},
	{"_ZdaPvSt11align_val_t", "operator delete[](void*, std::align_val_t)", kindFree},
	{"_ZdlPvmSt11align_val_t", "operator delete(void*, unsigned long, std::align_val_t)", kindFree},
	{"_ZdaPvmSt11align_val_t", "operator delete[](void*, unsigned long, std::align_val_t)", kindFree},
	{"_ZdlPvRKSt9nothrow_t", "operator delete(void*, std::nothrow_t const&)", kindFree},
	{"_ZdaPvRKSt9nothrow_t", "operator delete[](void*, std::nothrow_t const&)", kindFree},
	{"_ZdlPvSt11align_val_tRKSt9nothrow_t", "operator delete(void*, std::align_val_t, std::nothrow_t const&)", kindFree},
	{"_ZdaPvSt11align_val_tRKSt9nothrow_t", "operator delete[](void*, std::align_val_t, std::nothrow_t const&)", kindFree},
}

// isAllocator reports whether a module is a heap allocator: it defines
// malloc and free, or the C++ operator new.
func isAllocator(mod *symbolize.Module) bool {
	return (mod.Defines("malloc") && mod.Defines("free")) || mod.Defines("_Znwm")
}

// maxProbes is the number of probe ids the 16-bit event field can carry.
const maxProbes = 1 << 16

// plannedProbe is an allocation function to probe, and where in it.
type plannedProbe struct {
	allocFunc
	site    probesite.Site
	off     uint64 // where the function starts in its file
	leaf    bool   // it calls no other probed function
	handoff bool   // it may throw: an entry probe only, and the probed call it makes takes its call over
	depth   uint64 // with handoff: how far below its stack pointer at entry that call starts
}

// addr is the probe's site as an offset into the function's file.
func (p plannedProbe) addr() uint64 { return p.off + p.site.Offset }

// leafCandidate reports whether mod's function symbol may be a leaf, one
// that enters no other probed function, so that a call of it has no nested
// calls to tell apart: glibc's malloc and calloc, whose helpers call no
// allocation function through its symbol, once their own code is checked
// (probesite.Leaf). Other allocators call back into their own malloc
// through the PLT, which the check cannot see, and are not leaves.
func leafCandidate(mod *symbolize.Module, symbol string) bool {
	return (symbol == "malloc" || symbol == "calloc") && mod.Defines("__libc_malloc")
}

// maxCode bounds the machine code read from one function to plan its site.
const maxCode = 64 << 10

// plan is what planProbes makes of one module, the symbols of one version of a file.
type plan struct {
	mod     *symbolize.Module
	probes  []plannedProbe
	skipped map[string][]string
}

// whyNotGo is logged for the functions in Go code, left unprobed.
const whyNotGo = "Go code: a return probe would corrupt its moving stacks"

// whyNotDecoded is logged for the functions whose code was not read and
// decoded from their file: a probe is only ever placed on an instruction of
// the function's own code.
const whyNotDecoded = "code not read or decoded from its file (no size, inside another function, or not an instruction)"

// planProbes lists the allocation functions mod defines, once per address
// (an alias probed twice would count its calls twice), each with the site
// its probe goes to, planned from its code in file. Functions in Go code
// are left out: a return probe there would corrupt the moving goroutine
// stacks, and an entry probe alone counts nothing; so are the throwing
// forms of operator new whose call no probed call can take over, and functions whose
// code could not be read from file and decoded there. skipped names them,
// by why they are left out. mod must have been read from file itself.
func planProbes(file io.ReaderAt, mod *symbolize.Module) (planned []plannedProbe, skipped map[string][]string) {
	skipped = make(map[string][]string)
	seen := make(map[uint64]bool)
	codes := make(map[string][]byte)
	for _, f := range allocFuncs {
		addr, ok := mod.Address(f.symbol)
		if !ok || seen[addr] {
			continue
		}
		seen[addr] = true
		off, inFile := mod.FileOffset(f.symbol)
		if !inFile {
			continue // outside the file's loaded segments: it never runs
		}
		if mod.GoCode(addr) {
			skipped[whyNotGo] = append(skipped[whyNotGo], f.symbol)
			continue
		}
		code, err := mod.Code(file, f.symbol, maxCode)
		var site probesite.Site
		if err == nil {
			site, err = probesite.Plan(code, f.needs())
		}
		if err != nil {
			skipped[whyNotDecoded] = append(skipped[whyNotDecoded], f.symbol)
			continue
		}
		codes[f.symbol] = code
		planned = append(planned, plannedProbe{allocFunc: f, site: site, off: off})
	}
	// A call enters a probe at the function's symbol and runs into its site.
	sites := make(map[uint64]bool)
	takers := takeovers{file: file, mod: mod, entries: make(map[uint64]bool)}
	for _, p := range planned {
		addr, _ := mod.Address(p.symbol)
		sites[addr], sites[addr+p.site.Offset] = true, true
		if takesOverKind(p.kind) && !throwing[p.symbol] {
			takers.add(addr, p.site.Offset)
		}
	}
	kept := planned[:0]
	for _, p := range planned {
		addr, _ := mod.Address(p.symbol)
		code := codes[p.symbol]
		if throwing[p.symbol] {
			depth, ok := probesite.Handoff(code, addr, takers.leadsTo)
			if !ok {
				skipped[whyNotThrowing] = append(skipped[whyNotThrowing], p.symbol)
				continue
			}
			p.handoff, p.depth = true, depth
			takers.add(addr, p.site.Offset) // operator new[] tail-calls operator new
		}
		if leafCandidate(mod, p.symbol) {
			p.leaf = probesite.Leaf(code, addr, sites)
		}
		kept = append(kept, p)
	}
	return kept, skipped
}

// needs is what the programs read at the function's probe: its arguments,
// and for an allocation the stack pointer and the return address, because
// a uretprobe shares the site.
func (f allocFunc) needs() probesite.Needs {
	args := 1 // malloc, free
	switch f.kind {
	case kindCalloc, kindRealloc, kindMemalign:
		args = 2
	case kindReallocarray, kindPosixMemalign:
		args = 3
	}
	return probesite.Needs{Args: args, Stack: f.kind != kindFree}
}

// attachModule attaches the entry and return programs to every allocation
// function mod defines, in the open file id, in every process or (pid not
// 0) in pid alone; module names the file in reports. mod must have been
// read from file (symbolize.Open): probes are planned from, and attached
// to, the bytes of that file alone. Each function gets a probe id, carried
// in its attach cookie with its kind. It returns the functions left
// unprobed, by why (planProbes).
func (a *Attacher) attachModule(file *os.File, id symbolize.FileID, module string, mod *symbolize.Module, pid int) (skipped map[string][]string, err error) {
	first := len(a.probes)
	defer func() {
		if err != nil {
			a.probes = a.probes[:first] // the ids of a failed attach are not in use
		}
	}()
	pl, ok := a.plans[id]
	if !ok || pl.mod != mod {
		pl.probes, pl.skipped = planProbes(file, mod)
		pl.mod = mod
		a.plans[id] = pl
	}
	var sites siteSets
	for _, p := range pl.probes {
		if len(a.probes) == maxProbes {
			return nil, fmt.Errorf("attach to %s: more than %d probes", module, maxProbes)
		}
		cookie, err := probeCookie(p, len(a.probes))
		if err != nil {
			return nil, fmt.Errorf("attach to %s: %w", module, err)
		}
		sites.add(p, p.addr(), cookie, a.cfg.Programs.Session != nil)
		a.probes = append(a.probes, probe{function: p.name, module: module})
		a.log.Debug("probe site", "module", module, "function", p.symbol, "offset", p.site.Offset, "why", p.site.Reason)
	}
	// Attach through the descriptor: no path can be swapped meanwhile.
	links, err := attachSites(fdPath(file), sites, a.cfg.Programs, a.cfg.Multi, pid)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", module, err)
	}
	a.links = append(a.links, links...)
	a.log.Debug("probes attached", "module", module, "pid", pid, "functions", len(pl.probes), "sessions", len(sites.session.symbols))
	return pl.skipped, nil
}

// siteSets are the sites of one file's entry probes, return probes and session probes.
type siteSets struct{ enter, exit, session probeSet }

// add adds a function's probe at addr, an offset into its file, with
// cookie: for a free or a function that hands its call off an entry probe;
// for an allocation a session probe, or without sessions an entry probe and
// a return probe at the same site.
func (s *siteSets) add(p plannedProbe, addr, cookie uint64, session bool) {
	switch {
	case p.kind == kindFree || p.handoff:
		s.enter.add(p.symbol, addr, cookie)
	case session:
		s.session.add(p.symbol, addr, cookie)
	default:
		s.enter.add(p.symbol, addr, cookie)
		s.exit.add(p.symbol, addr, cookie)
	}
}

// attachSites attaches the programs at the sites of the file at path, in
// every process or only in pid.
func attachSites(path string, sites siteSets, progs Programs, multi bool, pid int) (links []link.Link, err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, CloseLinks(links))
			links = nil
		}
	}()
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	in, err := attachSet(ex, sites.enter, progs.Enter, false, multi, pid)
	links = append(links, in...)
	if err != nil {
		return links, fmt.Errorf("uprobes: %w", err)
	}
	out, err := attachSet(ex, sites.exit, progs.Exit, true, multi, pid)
	links = append(links, out...)
	if err != nil {
		return links, fmt.Errorf("uretprobes: %w", err)
	}
	if len(sites.session.addrs) > 0 {
		l, err := attachSession(path, sites.session, progs.Session, pid)
		if err != nil {
			return links, fmt.Errorf("uprobe sessions: %w", err)
		}
		links = append(links, l)
	}
	return links, nil
}

// probeSet is what one program is attached to: functions, the offset of
// each one's site in their file, and their cookies.
type probeSet struct {
	symbols []string
	addrs   []uint64
	cookies []uint64
}

func (s *probeSet) add(symbol string, addr, cookie uint64) {
	s.symbols = append(s.symbols, symbol)
	s.addrs = append(s.addrs, addr)
	s.cookies = append(s.cookies, cookie)
}

// attachSet attaches prog to every site of set, in every process or only
// in pid: with one uprobe_multi link where the kernel has them (Linux 6.6),
// else one link per site.
func attachSet(ex *link.Executable, set probeSet, prog *ebpf.Program, ret, multi bool, pid int) ([]link.Link, error) {
	if len(set.symbols) == 0 {
		return nil, nil
	}
	if multi {
		opts := &link.UprobeMultiOptions{Addresses: set.addrs, Cookies: set.cookies, PID: uint32(pid)}
		attach := ex.UprobeMulti
		if ret {
			attach = ex.UretprobeMulti
		}
		l, err := attach(nil, prog, opts)
		if err != nil {
			return nil, err
		}
		return []link.Link{l}, nil
	}
	attach := ex.Uprobe
	if ret {
		attach = ex.Uretprobe
	}
	var links []link.Link
	for i, sym := range set.symbols {
		l, err := attach(sym, prog, &link.UprobeOptions{Address: set.addrs[i], Cookie: set.cookies[i], PID: pid})
		if err != nil {
			return links, fmt.Errorf("attach %s: %w", sym, err)
		}
		links = append(links, l)
	}
	return links, nil
}
