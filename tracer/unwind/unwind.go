package unwind

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/go-delve/delve/pkg/dwarf/frame"
)

// Rule says how a row finds the canonical frame address (CFA) of its frame,
// the value of rsp before the call that made the frame.
type Rule uint8

// The rules of a row; the values are the BPF enum cfa_rule's.
const (
	// RuleNone: no information (a gap between functions, or a rule mtrace
	// does not support); the walk stops here.
	RuleNone Rule = iota
	// RuleRSP: CFA = rsp + CFAOffset.
	RuleRSP
	// RuleRBP: CFA = rbp + CFAOffset.
	RuleRBP
	// RulePLT: the PLT expression, CFA = rsp + 8 + ((rip & 15) >= CFAOffset ? 8 : 0),
	// CFAOffset being 11, 10 or 9 in the PLTs binutils' ld makes.
	RulePLT
	// RuleSignal: a signal trampoline; the interrupted frame's rbp, rsp and
	// rip are in the ucontext at rsp+120, rsp+160 and rsp+168.
	RuleSignal
	// RuleEnd: the outermost frame, whose return address is undefined.
	RuleEnd
)

// Row says how to unwind code from file offset Offset up to the next row's.
// The return address is at CFA-8; the caller's rbp is at CFA+RBPOffset, or
// still in rbp when RBPOffset is 0.
type Row struct {
	Offset    uint32
	CFAOffset int32
	RBPOffset int16
	CFA       Rule
}

// Table is the unwind table of one file: its rows sorted by Offset, and the
// section they came from (".eh_frame" or ".debug_frame").
type Table struct {
	Rows   []Row
	Source string
}

// Limits bound what Build reads and makes from one file; a zero field takes
// its default.
type Limits struct {
	MaxRows         int   // rows in the table, counted before equal rows merge; default DefaultMaxRows
	MaxSectionBytes int64 // bytes of the CFI section, once decompressed; default DefaultMaxSectionBytes
}

// Defaults of Limits.
const (
	DefaultMaxRows         = 4 << 20
	DefaultMaxSectionBytes = 64 << 20
)

// Errors of Build that callers count apart; any other error means a
// malformed file.
var (
	// ErrNoCFI: the file has neither .eh_frame nor .debug_frame.
	ErrNoCFI = errors.New("no .eh_frame or .debug_frame")
	// ErrOverLimit: the file's table would pass one of the Limits, which the error names.
	ErrOverLimit = errors.New("over the limit")
)

// Build reads the unwind table of the ELF file f, which the caller holds
// open. Over a limit is an error naming it; a malformed file yields an
// error, never a panic.
func Build(f io.ReaderAt, l Limits) (t *Table, err error) {
	defer func() {
		if p := recover(); p != nil {
			// debug/elf and delve's parser panic on some malformed input.
			t, err = nil, fmt.Errorf("read unwind table: malformed file: %v", p)
		}
	}()
	if l.MaxRows <= 0 {
		l.MaxRows = DefaultMaxRows
	}
	if l.MaxSectionBytes <= 0 {
		l.MaxSectionBytes = DefaultMaxSectionBytes
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	if ef.Machine != elf.EM_X86_64 || ef.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("read unwind table: unsupported machine %v", ef.Machine)
	}
	code, err := codeSegments(ef)
	if err != nil {
		return nil, err
	}
	sec := ef.Section(".eh_frame")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		sec = ef.Section(".debug_frame")
	}
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, ErrNoCFI
	}
	data, err := sectionData(sec, l.MaxSectionBytes)
	if err != nil {
		return nil, err
	}
	var ehFrameAddr uint64
	if sec.Name == ".eh_frame" {
		// delve tells .eh_frame from .debug_frame by a nonzero address.
		ehFrameAddr = max(sec.Addr, 1)
	}
	fdes, err := frame.Parse(data, binary.LittleEndian, 0, 8, ehFrameAddr)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", sec.Name, err)
	}
	rows, err := buildRows(fdes, code, ehFrameAddr != 0, l.MaxRows)
	if err != nil {
		return nil, fmt.Errorf("build rows of %s: %w", sec.Name, err)
	}
	return &Table{Rows: rows, Source: sec.Name}, nil
}

// sectionData reads a section, decompressed, refusing more than max bytes.
func sectionData(s *elf.Section, max int64) ([]byte, error) {
	if s.Size > uint64(max) {
		return nil, fmt.Errorf("read %s: %d bytes: %w MaxSectionBytes (%d)", s.Name, s.Size, ErrOverLimit, max)
	}
	data, err := io.ReadAll(io.LimitReader(s.Open(), max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("read %s: %w MaxSectionBytes (%d)", s.Name, ErrOverLimit, max)
	}
	return data, nil
}

// segment is an executable PT_LOAD: virtual addresses [vaddr, vaddr+size)
// are file offsets [off, off+size).
type segment struct{ vaddr, off, size uint64 }

// codeSegments returns the executable PT_LOAD segments of a file; their
// file offsets must fit in 32 bits.
func codeSegments(f *elf.File) ([]segment, error) {
	var code []segment
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || p.Flags&elf.PF_X == 0 {
			continue
		}
		if p.Off > math.MaxUint32 || p.Filesz > math.MaxUint32-p.Off {
			return nil, fmt.Errorf("read unwind table: code at file offset %#x past 4 GiB", p.Off)
		}
		code = append(code, segment{vaddr: p.Vaddr, off: p.Off, size: p.Filesz})
	}
	return code, nil
}

// fileRange converts the virtual addresses [begin, end) of one function to
// file offsets, if they lie in one executable segment.
func fileRange(code []segment, begin, end uint64) (uint32, uint32, bool) {
	for _, s := range code {
		if begin >= s.vaddr && begin < end && end-s.vaddr <= s.size {
			return uint32(begin - s.vaddr + s.off), uint32(end - s.vaddr + s.off), true
		}
	}
	return 0, 0, false
}

// function is one FDE's rows, all[first:first+n] of buildRows, in file
// offsets from begin, ending at end.
type function struct {
	first, n   int
	begin, end uint32
}

// buildRows interprets every FDE once and joins their rows into one sorted
// table: a function that overlaps an earlier one is dropped, each function's
// end gets a None row unless the next begins there, and adjacent equal rows
// are merged.
func buildRows(fdes frame.FrameDescriptionEntries, code []segment, ehFrame bool, maxRows int) ([]Row, error) {
	var (
		funcs []function
		all   []Row
		in    interpreter
	)
	for _, fde := range fdes {
		if fde == nil || fde.CIE == nil {
			continue
		}
		begin, end, ok := fileRange(code, fde.Begin(), fde.End())
		if !ok {
			continue
		}
		fn := function{first: len(all), begin: begin, end: end}
		for _, r := range in.interpret(fde, ehFrame) {
			if r.loc < fde.End() { // the first is at fde.Begin()
				r.row.Offset = uint32(r.loc-fde.Begin()) + begin
				all = append(all, r.row)
			}
		}
		fn.n = len(all) - fn.first
		if len(all)+len(funcs) > maxRows { // each function's rows and its end
			return nil, fmt.Errorf("%w MaxRows (%d)", ErrOverLimit, maxRows)
		}
		funcs = append(funcs, fn)
	}
	slices.SortStableFunc(funcs, func(a, b function) int { return cmp.Compare(a.begin, b.begin) })
	out := make([]Row, 0, len(all)+len(funcs))
	var prevEnd uint32
	for _, fn := range funcs {
		if fn.begin < prevEnd {
			continue
		}
		for _, r := range all[fn.first : fn.first+fn.n] {
			out = appendRow(out, r) // the first replaces the previous end's None at the same offset
		}
		out = appendRow(out, Row{Offset: fn.end})
		prevEnd = fn.end
	}
	return out, nil
}

// appendRow appends r unless it says what the last row says; a row at the
// same offset as the last replaces it.
func appendRow(rows []Row, r Row) []Row {
	n := len(rows)
	if n > 0 && rows[n-1].Offset == r.Offset {
		rows = rows[:n-1]
		n--
	}
	if n > 0 && sameRule(rows[n-1], r) {
		return rows
	}
	return append(rows, r)
}

func sameRule(a, b Row) bool {
	return a.CFA == b.CFA && a.CFAOffset == b.CFAOffset && a.RBPOffset == b.RBPOffset
}

// isSignal reports whether a CIE marks signal trampolines.
func isSignal(cie *frame.CommonInformationEntry) bool {
	return strings.HasPrefix(cie.Augmentation, "z") && strings.ContainsRune(cie.Augmentation, 'S')
}
