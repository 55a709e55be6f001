package symbolize

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// maxSymbolTable caps the symbol table read from one file: target binaries are untrusted.
const maxSymbolTable = 64 << 20

// Module is the function symbol table of one ELF file.
type Module struct {
	syms   []symbol // sorted by value
	named  map[string]uint64
	loads  []elf.ProgHeader
	interp bool // names a program interpreter: a dynamic loader maps more objects
}

type symbol struct {
	value, size uint64
	name        string
	rank        int // lower is preferred among aliases
}

// OpenModule reads the function symbols of the ELF file in r.
// A malformed file yields an error, never a panic.
func OpenModule(r io.ReaderAt) (m *Module, err error) {
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("parse ELF: malformed file: %v", p)
		}
	}()
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
	for _, t := range []struct {
		section string
		read    func() ([]elf.Symbol, error)
	}{{".symtab", f.Symbols}, {".dynsym", f.DynamicSymbols}} {
		if s := f.Section(t.section); s == nil || s.Size > maxSymbolTable {
			continue
		}
		syms, err := t.read()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return nil, fmt.Errorf("read %s: %w", t.section, err)
		}
		m.add(syms)
	}
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
	return m, nil
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

// Dynamic reports whether the module names a program interpreter (ld.so),
// which maps the shared objects it needs after exec.
func (m *Module) Dynamic() bool { return m.interp }

// Function returns the function that contains the file offset off.
func (m *Module) Function(off uint64) (string, bool) {
	addr, ok := m.vaddr(off)
	if !ok {
		return "", false
	}
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
	return s.name, true
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
