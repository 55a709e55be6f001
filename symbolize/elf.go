package symbolize

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/ianlancetaylor/demangle"
)

// Caps on what is read from one file: target binaries are untrusted, and a
// small file may declare huge (or huge once decompressed) sections.
const (
	maxSymbolTable = 64 << 20
	maxDebugInfo   = 256 << 20 // DWARF sections, once decompressed
	maxDebugData   = 16 << 20
	maxNote        = 4096
)

// Module is what one ELF file says about its code: function symbols, DWARF
// lines and inlining if present, and how to find its separate debug file.
type Module struct {
	syms   []symbol // sorted by value
	named  map[string]uint64
	loads  []elf.ProgHeader
	interp bool // names a program interpreter: a dynamic loader maps more objects
	golang bool // built by the Go toolchain

	BuildID   string // hex, from .note.gnu.build-id; "" if none
	debuglink string // .gnu_debuglink file name
	linkCRC   uint32
	debugdata []byte // .gnu_debugdata (MiniDebugInfo), xz-compressed ELF
	ownDWARF  uint64 // decompressed bytes of the file's own DWARF, as declared; 0: none within the caps
	dwarf     *dwarf.Data
	dwarfSize uint64 // bytes of dwarf's sections, counted against the symbolizer's budget while held
	index     *dwarfIndex
	debugFrom string // where DWARF or extra symbols came from, if not the file itself
	completed bool   // its DWARF, or its separate debug file, was looked for

	// mu guards what changes after loading: completion (DWARF read, a
	// debug file's symbols and DWARF merged in) and the DWARF index.
	// It is taken without the symbolizer's lock held, so that a slow debug
	// file search blocks only users of this module.
	mu sync.Mutex
}

type symbol struct {
	value, size uint64
	name        string
	rank        int  // lower is preferred among aliases
	debug       bool // from a separate debug file: it names code, it does not bound it (Code)
}

// OpenModule reads the ELF file in r. A malformed file yields an error,
// never a panic, and nothing larger than the caps above is read.
func OpenModule(r io.ReaderAt) (m *Module, err error) {
	defer recoverMalformed(&err)
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	m = &Module{named: make(map[string]uint64)}
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			m.loads = append(m.loads, p.ProgHeader)
		case elf.PT_INTERP:
			m.interp = true
		}
	}
	if err := m.addSymbols(f); err != nil {
		return nil, err
	}
	m.golang = f.Section(".go.buildinfo") != nil || f.Section(".gopclntab") != nil
	m.BuildID = buildID(f)
	if data := sectionData(f, ".gnu_debuglink", maxNote); len(data) > 4 {
		if i := bytes.IndexByte(data, 0); i > 0 {
			m.debuglink = string(data[:i])
			m.linkCRC = binary.LittleEndian.Uint32(data[len(data)-4:])
		}
	}
	m.debugdata = sectionData(f, ".gnu_debugdata", maxDebugData)
	_, m.ownDWARF = sectionsOfDWARF(f) // read when a frame first needs it (loadDWARF)
	return m, nil
}

// recoverMalformed turns a panic of debug/elf or debug/dwarf on a malformed
// file into an error.
func recoverMalformed(err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("parse ELF: malformed file: %v", p)
	}
}

// sectionData returns a section's contents, or nil if it is absent or larger than max.
func sectionData(f *elf.File, name string, max uint64) []byte {
	s := f.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS || s.Size > max {
		return nil
	}
	data, err := s.Data()
	if err != nil {
		return nil
	}
	return data
}

func buildID(f *elf.File) string {
	data := sectionData(f, ".note.gnu.build-id", maxNote)
	// Note header: namesz, descsz, type (3 = NT_GNU_BUILD_ID), then "GNU\0" and the id.
	if len(data) < 16 || binary.LittleEndian.Uint32(data[8:]) != 3 {
		return ""
	}
	namesz, descsz := binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:])
	start := 12 + (uint64(namesz)+3)&^3
	if start+uint64(descsz) > uint64(len(data)) || descsz == 0 {
		return ""
	}
	return hex.EncodeToString(data[start : start+uint64(descsz)])
}

func (m *Module) addSymbols(f *elf.File) error {
	for _, t := range []struct {
		section string
		read    func() ([]elf.Symbol, error)
	}{{".symtab", f.Symbols}, {".dynsym", f.DynamicSymbols}} {
		if s := f.Section(t.section); s == nil || s.Size > maxSymbolTable {
			continue
		}
		syms, err := t.read()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return fmt.Errorf("read %s: %w", t.section, err)
		}
		m.add(syms)
	}
	m.sortSymbols()
	return nil
}

// sortSymbols orders the symbols by address, the preferred alias first.
func (m *Module) sortSymbols() {
	sort.Slice(m.syms, func(i, j int) bool {
		a, b := m.syms[i], m.syms[j]
		if a.value != b.value {
			return a.value < b.value
		}
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		return a.name < b.name
	})
}

func (m *Module) add(syms []elf.Symbol) {
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if (typ != elf.STT_FUNC && typ != elf.STT_GNU_IFUNC) || s.Section == elf.SHN_UNDEF || s.Value == 0 {
			continue
		}
		name, _, _ := strings.Cut(s.Name, "@")
		if _, ok := m.named[name]; !ok {
			m.named[name] = s.Value
		}
		rank := len(name) - len(strings.TrimLeft(name, "_"))
		if elf.ST_BIND(s.Info) != elf.STB_GLOBAL {
			rank += 8
		}
		m.syms = append(m.syms, symbol{value: s.Value, size: s.Size, name: name, rank: rank})
	}
}

// merge takes what a separate debug file adds to a module without DWARF of
// its own: its symbols and its DWARF, with the budget it holds. Its symbols
// name code but do not count for Defines: probes attach only by the names
// the file itself holds.
func (m *Module) merge(dbg *Module, from string) {
	before := len(m.syms)
	for _, sym := range dbg.syms {
		sym.debug = true
		m.syms = append(m.syms, sym)
	}
	m.sortSymbols()
	if dbg.dwarf != nil {
		m.dwarf, m.dwarfSize = dbg.dwarf, dbg.dwarfSize
	}
	if len(m.syms) > before || dbg.dwarf != nil {
		m.debugFrom = from
	}
}

// Defines reports whether the module defines the function name.
func (m *Module) Defines(name string) bool {
	_, ok := m.named[name]
	return ok
}

// Address returns the link-time address of the function name.
func (m *Module) Address(name string) (uint64, bool) {
	a, ok := m.named[name]
	return a, ok
}

// Code reads from r, the module's file, the machine code of the function
// name: from its address to its end as its symbol gives it, cut at the next
// function's start and at limit bytes, all as the file's own symbol tables
// say. A function that starts inside another one (a symbol added to point
// into the middle of its instructions) has no code of its own: an error.
func (m *Module) Code(r io.ReaderAt, name string, limit uint64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	addr, ok := m.named[name]
	if !ok {
		return nil, fmt.Errorf("no function %s", name)
	}
	size, next := uint64(0), uint64(math.MaxUint64)
	for _, s := range m.syms {
		switch {
		case s.debug: // a debug file's symbols name code; the file's own bound it
		case s.value < addr && s.size > addr-s.value:
			return nil, fmt.Errorf("%s starts inside %s", name, s.name)
		case s.value == addr:
			size = max(size, s.size)
		case s.value > addr:
			next = min(next, s.value)
		}
	}
	if size == 0 {
		return nil, fmt.Errorf("%s: its symbol gives no size", name)
	}
	code, err := m.CodeAt(r, addr, min(size, next-addr, limit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return code, nil
}

// CodeAt reads from r, the module's file, size bytes at link-time address addr.
func (m *Module) CodeAt(r io.ReaderAt, addr, size uint64) ([]byte, error) {
	off, ok := m.fileOffset(addr, size)
	if !ok {
		return nil, fmt.Errorf("%#x+%d is not in a loaded segment", addr, size)
	}
	code := make([]byte, size)
	if _, err := r.ReadAt(code, int64(off)); err != nil {
		return nil, fmt.Errorf("read %#x: %w", addr, err)
	}
	return code, nil
}

// FileOffset returns where in the module's file the function name starts.
func (m *Module) FileOffset(name string) (uint64, bool) {
	addr, ok := m.named[name]
	if !ok {
		return 0, false
	}
	return m.fileOffset(addr, 1)
}

// fileOffset converts the link-time addresses [addr, addr+size) to a file
// offset, if one loaded segment holds them all.
func (m *Module) fileOffset(addr, size uint64) (uint64, bool) {
	for _, p := range m.loads {
		if addr >= p.Vaddr && addr+size >= addr && addr+size <= p.Vaddr+p.Filesz {
			return addr - p.Vaddr + p.Off, true
		}
	}
	return 0, false
}

// GoCode reports whether the function at link-time address addr is Go code,
// where goroutine stacks move: a return probe, which rewrites the return
// address on the stack, would corrupt them. In a Go binary, Go code lies
// between runtime.text and runtime.etext; without those symbols, all of it
// counts as Go code.
func (m *Module) GoCode(addr uint64) bool {
	if !m.golang {
		return false
	}
	start, ok := m.named["runtime.text"]
	end, ok2 := m.named["runtime.etext"]
	return !ok || !ok2 || (addr >= start && addr < end)
}

// Dynamic reports whether the module names a program interpreter (ld.so),
// which maps the shared objects it needs after exec.
func (m *Module) Dynamic() bool { return m.interp }

// HasDWARF reports whether the module's own file has DWARF line
// information within the caps (read only when a frame first needs it).
func (m *Module) HasDWARF() bool { return m.ownDWARF > 0 }

func (m *Module) symbolAt(addr uint64) (string, bool) {
	i := sort.Search(len(m.syms), func(i int) bool { return m.syms[i].value > addr }) - 1
	if i < 0 {
		return "", false
	}
	// Step back to the preferred alias at the same address.
	for i > 0 && m.syms[i-1].value == m.syms[i].value {
		i--
	}
	s := m.syms[i]
	if s.size != 0 && addr >= s.value+s.size {
		return "", false
	}
	return demangled(s.name), true
}

// indexDWARF indexes the module's DWARF once, and drops it, giving its
// bytes back to b, if it cannot be read. The caller holds mu.
func (m *Module) indexDWARF(b *budget) {
	if m.dwarf == nil || m.index != nil {
		return
	}
	var err error
	if m.index, err = newDwarfIndex(m.dwarf, b); err != nil {
		b.give(m.dwarfSize)
		m.dwarf, m.dwarfSize, m.index = nil, 0, nil
	}
}

// release gives back to b what the module's DWARF and index hold, and
// drops them: the module's file is being read again.
func (m *Module) release(b *budget) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b.give(m.held())
	m.dwarf, m.dwarfSize, m.index = nil, 0, nil
}

// held is what the module's DWARF and index hold of the budget. The caller
// holds mu, or is the module's only user.
func (m *Module) held() uint64 {
	if m.index == nil {
		return m.dwarfSize
	}
	return m.dwarfSize + m.index.held
}

// Lookup returns what is at file offset off, innermost first: the functions
// inlined there from DWARF with their source positions, once the
// symbolizer has read and indexed it (complete), or else the one function
// the symbol tables name. It never panics on malformed DWARF.
func (m *Module) Lookup(off uint64) (frames []inlineFrame) {
	m.mu.Lock()
	defer m.mu.Unlock()
	addr, ok := m.vaddr(off)
	if !ok {
		return nil
	}
	if m.index != nil {
		func() {
			var err error
			defer recoverMalformed(&err)
			frames, _ = m.index.lookup(addr)
		}()
		if len(frames) > 0 && frames[len(frames)-1].function != "" {
			return frames
		}
	}
	if name, ok := m.symbolAt(addr); ok {
		return []inlineFrame{{function: name}}
	}
	return nil
}

// vaddr converts a file offset to the virtual address the ELF file links it at.
func (m *Module) vaddr(off uint64) (uint64, bool) {
	for _, p := range m.loads {
		if off >= p.Off && off < p.Off+p.Filesz {
			return off - p.Off + p.Vaddr, true
		}
	}
	return 0, false
}

// demangled returns the C++ or Rust name as c++filt prints it, or the name itself.
func demangled(name string) string {
	return demangle.Filter(name)
}
