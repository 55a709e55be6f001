package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// maxDWARF bounds the DWARF all modules of a symbolizer hold, in
// decompressed section bytes reserved before a section is inflated or read,
// and the indexes built from it: past it, further modules are symbolized
// from their symbol tables only, without file:line.
const maxDWARF = 512 << 20

// budget counts the DWARF bytes held against a bound. It is safe for
// concurrent use.
type budget struct {
	mu          sync.Mutex
	used, limit uint64
}

// take reserves n bytes, if they fit.
func (b *budget) take(n uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit-b.used {
		return false
	}
	b.used += n
	return true
}

// give returns n bytes taken before.
func (b *budget) give(n uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// dwarfSections are the DWARF sections the index reads, named without their
// .debug_ (or legacy compressed .zdebug_) prefix; others (types, locations,
// call frames) are never read.
var dwarfSections = []string{"abbrev", "info", "str", "line", "ranges", "addr", "line_str", "str_offsets", "rnglists"}

// sizedSection is a DWARF section and its size once decompressed.
type sizedSection struct {
	name string // without prefix
	*elf.Section
	size uint64
}

// sectionsOfDWARF returns the file's DWARF sections the index reads, with
// their decompressed sizes as their headers declare them, and their total:
// nil if the file has no line information, a section holds no data in the
// file or is unreadable, or they take more than maxDebugInfo together.
// Nothing is inflated.
func sectionsOfDWARF(f *elf.File) ([]sizedSection, uint64) {
	if sectionOfDWARF(f, "info") == nil || sectionOfDWARF(f, "line") == nil {
		return nil, 0
	}
	var secs []sizedSection
	var total uint64
	for _, name := range dwarfSections {
		s := sectionOfDWARF(f, name)
		if s == nil {
			continue
		}
		size, err := decompressedSize(s)
		if err != nil || size > maxDebugInfo-total {
			return nil, 0
		}
		total += size
		secs = append(secs, sizedSection{name, s, size})
	}
	return secs, total
}

// sectionOfDWARF returns the section .debug_NAME, or else .zdebug_NAME.
func sectionOfDWARF(f *elf.File, name string) *elf.Section {
	if s := f.Section(".debug_" + name); s != nil {
		return s
	}
	return f.Section(".zdebug_" + name)
}

// decompressedSize returns what section s holds once decompressed, from its
// headers alone: an SHF_COMPRESSED section's compression header (Chdr), which
// debug/elf has read into Size; a legacy .zdebug_ section's "ZLIB" and 8-byte
// big-endian size; else its size in the file.
func decompressedSize(s *elf.Section) (uint64, error) {
	switch {
	case s.Type == elf.SHT_NOBITS:
		return 0, fmt.Errorf("section %s: no data in the file", s.Name)
	case s.Flags&elf.SHF_COMPRESSED != 0:
		return s.Size, nil
	case strings.HasPrefix(s.Name, ".zdebug_"):
		var hdr [12]byte
		if n, _ := s.ReadAt(hdr[:], 0); n == len(hdr) && string(hdr[:4]) == "ZLIB" {
			return binary.BigEndian.Uint64(hdr[4:]), nil
		}
	}
	return s.FileSize, nil
}

var errOverBudget = errors.New("read DWARF: over the symbolizer's budget")

// readDWARF reads the file's DWARF within the caps, its total size reserved
// in b before any section is inflated or read; the caller gives it back when
// it lets the result go. Relocations are not applied: mapped executables and
// shared objects need none in their DWARF.
func readDWARF(f *elf.File, b *budget) (d *dwarf.Data, size uint64, err error) {
	secs, total := sectionsOfDWARF(f)
	if secs == nil {
		return nil, 0, errors.New("read DWARF: no line information within the caps")
	}
	if !b.take(total) {
		return nil, 0, errOverBudget
	}
	defer func() {
		if err != nil {
			b.give(total)
		}
	}()
	defer recoverMalformed(&err)
	data := make(map[string][]byte)
	for _, s := range secs {
		buf := make([]byte, s.size)
		if _, err := io.ReadFull(s.Open(), buf); err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", s.Name, err)
		}
		data[s.name] = buf
	}
	d, err = dwarf.New(data["abbrev"], nil, nil, data["info"], data["line"], nil, data["ranges"], data["str"])
	if err != nil {
		return nil, 0, fmt.Errorf("read DWARF: %w", err)
	}
	for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists"} {
		if data[name] != nil {
			if err := d.AddSection(".debug_"+name, data[name]); err != nil {
				return nil, 0, fmt.Errorf("read DWARF: %w", err)
			}
		}
	}
	return d, total, nil
}

// loadDWARF reads the module's DWARF from r, its file, within b, unless it
// holds DWARF already or has none of its own. The caller holds mu.
func (m *Module) loadDWARF(r io.ReaderAt, b *budget) {
	if m.dwarf != nil || !m.HasDWARF() {
		return
	}
	var err error
	func() {
		defer recoverMalformed(&err)
		var f *elf.File
		if f, err = elf.NewFile(r); err == nil {
			m.dwarf, m.dwarfSize, err = readDWARF(f, b)
		}
	}()
	if err != nil {
		m.dwarf, m.dwarfSize = nil, 0
	}
}
