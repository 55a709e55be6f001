package attach

import (
	"io"

	"github.com/mtrace/mtrace/bpf"
	"github.com/mtrace/mtrace/symbolize"
	"github.com/mtrace/mtrace/tracer/attach/probesite"
)

// throwing are the forms of operator new that throw std::bad_alloc. Their
// return is never probed: a return probe replaces the return address on the
// stack with the kernel's trampoline, which the C++ unwinder cannot step
// over, so a std::bad_alloc the program catches would end it instead. An
// operator new that calls a probed allocation function (libstdc++'s calls
// malloc) hands its call to it (COOKIE_HANDOFF); one that allocates by
// itself (jemalloc's, tcmalloc's, mimalloc's) is not probed.
var throwing = map[string]bool{
	"_Znwm":                true,
	"_Znam":                true,
	"_ZnwmSt11align_val_t": true,
	"_ZnamSt11align_val_t": true,
}

// whyNotThrowing is logged for the throwing functions left unprobed.
const whyNotThrowing = "operator new that allocates by itself (or in code mtrace cannot follow): a return probe would turn a std::bad_alloc the program catches into std::terminate, so its allocations are not counted"

// takesOverKind reports whether a function of kind can take over a
// throwing function's call: it returns the block (not realloc, whose old
// block is its own, nor posix_memalign, which returns a status).
func takesOverKind(kind bpf.AllocKind) bool {
	return kind == kindMalloc || kind == kindCalloc || kind == kindMemalign
}

// takesOverName reports whether symbol names a probed function that can take over a throwing function's call.
func takesOverName(symbol string) bool {
	for _, f := range allocFuncs {
		if f.symbol == symbol {
			return takesOverKind(f.kind)
		}
	}
	return false
}

// takeovers finds whether a throwing function can hand its call to a probed
// allocation function it calls or tail-calls, in one module, and from
// where.
type takeovers struct {
	file    io.ReaderAt
	mod     *symbolize.Module
	entries map[uint64]bool   // where the calls of the functions that take over in mod enter: their symbols and sites
	imports map[uint64]string // mod's global offset table, read on first use
}

// add makes the function at addr, probed at site, one that takes over calls.
func (c *takeovers) add(addr uint64, site uint64) {
	c.entries[addr] = true
	c.entries[addr+site] = true
}

// leadsTo reports whether the call or jump e leads to a function that
// takes over the call: one in
// the module, or one it imports by name through its PLT or its global
// offset table.
func (c *takeovers) leadsTo(e probesite.Exit) bool {
	slot := e.Target
	if !e.Slot {
		if c.entries[e.Target] {
			return true
		}
		stub, err := c.mod.CodeAt(c.file, e.Target, 16)
		if err != nil {
			return false
		}
		var isStub bool
		if slot, isStub = probesite.PLTSlot(stub, e.Target); !isStub {
			return false
		}
	}
	if c.imports == nil {
		if c.imports, _ = symbolize.Imports(c.file); c.imports == nil {
			c.imports = map[uint64]string{} // unreadable: nothing is imported
		}
	}
	name := c.imports[slot]
	a, defined := c.mod.Address(name)
	return takesOverName(name) || (defined && c.entries[a])
}
