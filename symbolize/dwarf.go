package symbolize

import (
	"debug/dwarf"
	"errors"
	"fmt"
	"slices"
	"sort"
	"unsafe"
)

// dwarfIndex answers which functions, inlined into each other, and which
// source line an address belongs to. Compile units are parsed on first use.
// What it keeps is counted against the symbolizer's budget, like the DWARF
// it reads: past it, a unit keeps what it had read so far.
type dwarfIndex struct {
	d      *dwarf.Data
	units  []unitSpan // sorted by low
	parsed map[dwarf.Offset]*unit
	budget *budget
	held   uint64 // bytes taken from budget
}

// Sizes of what the index keeps, as counted against the budget.
const (
	unitSpanBytes = uint64(unsafe.Sizeof(unitSpan{}))
	lineRowBytes  = uint64(unsafe.Sizeof(lineRow{}))
	scopeBytes    = uint64(unsafe.Sizeof(scope{})) + 8 // and the pointer to it
	rangeBytes    = 16
)

var errIndexOverBudget = errors.New("index DWARF: over the symbolizer's budget")

// take counts n more bytes the index keeps; false if they do not fit.
func (x *dwarfIndex) take(n uint64) bool {
	if !x.budget.take(n) {
		return false
	}
	x.held += n
	return true
}

type unitSpan struct {
	low, high uint64
	off       dwarf.Offset
}

// unit is one parsed compile unit: its functions and its line table,
// sorted by address (sequences need not be in order: GCC puts main's
// .text.startup after .text, which dwarf.LineReader.SeekPC cannot handle).
type unit struct {
	funcs []*scope
	files []*dwarf.LineFile
	rows  []lineRow
}

type lineRow struct {
	addr uint64
	file string
	line int
	end  bool // first address after a sequence
}

// maxLineRows bounds the line table read from one unit.
const maxLineRows = 1 << 22

// scope is a function or an inlined call: where it is, and for an inlined
// call, the source position of the call in the enclosing scope.
type scope struct {
	name               string
	ranges             [][2]uint64
	callFile, callLine int
	inlined            []*scope
}

// maxScopeDepth bounds the nesting of DIEs followed: input is untrusted.
const maxScopeDepth = 64

// reader wraps dwarf.Reader so that malformed DWARF ends a walk instead of
// looping: debug/dwarf can return the same entry forever, and its
// SkipChildren then never returns. Every entry must lie past the last.
type reader struct {
	*dwarf.Reader
	last dwarf.Offset
	n    int
}

// maxEntries bounds the DIEs read from one module.
const maxEntries = 1 << 24

var errNoProgress = errors.New("malformed DWARF: entries do not advance")

func (r *reader) next() (*dwarf.Entry, error) {
	e, err := r.Next()
	if err != nil || e == nil {
		return e, err
	}
	r.n++
	if r.n > maxEntries {
		return nil, errNoProgress
	}
	if e.Tag == 0 {
		return e, nil // a null entry ends a list of children and carries no offset
	}
	if r.n > 1 && e.Offset <= r.last {
		return nil, errNoProgress
	}
	r.last = e.Offset
	return e, nil
}

// skip passes the children of the entry just read.
func (r *reader) skip() error {
	for depth := 1; depth > 0; {
		e, err := r.next()
		if err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		if e.Tag == 0 {
			depth--
		} else if e.Children {
			depth++
		}
	}
	return nil
}

// newDwarfIndex indexes the compile units of d, what it keeps counted in b;
// on an error it gives back what it took.
func newDwarfIndex(d *dwarf.Data, b *budget) (_ *dwarfIndex, err error) {
	x := &dwarfIndex{d: d, parsed: make(map[dwarf.Offset]*unit), budget: b}
	defer func() {
		if err != nil {
			b.give(x.held)
		}
	}()
	defer recoverMalformed(&err)
	r := &reader{Reader: d.Reader()}
	for {
		e, err := r.next()
		if err != nil {
			return nil, fmt.Errorf("read DWARF units: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit || e.Tag == dwarf.TagPartialUnit {
			ranges, _ := d.Ranges(e)
			for _, rg := range ranges {
				if len(x.units) == cap(x.units) && !x.take(unitSpanBytes*uint64(max(cap(x.units), 16))) {
					return nil, errIndexOverBudget
				}
				x.units = append(x.units, unitSpan{low: rg[0], high: rg[1], off: e.Offset})
			}
		}
		if e.Children {
			if err := r.skip(); err != nil {
				return nil, fmt.Errorf("read DWARF units: %w", err)
			}
		}
	}
	sort.Slice(x.units, func(i, j int) bool { return x.units[i].low < x.units[j].low })
	return x, nil
}

// inlineFrame is one level of what an address is: innermost first.
type inlineFrame struct {
	function string
	file     string
	line     int
}

// lookup returns the chain of functions at pc, innermost (the most deeply
// inlined) first, with source positions; false if DWARF does not cover pc.
func (x *dwarfIndex) lookup(pc uint64) ([]inlineFrame, bool) {
	// The unit is among the last few starting at or before pc (spans rarely overlap).
	i := sort.Search(len(x.units), func(i int) bool { return x.units[i].low > pc }) - 1
	for steps := 0; i >= 0 && pc >= x.units[i].high; steps++ {
		if steps == 64 {
			return nil, false
		}
		i--
	}
	if i < 0 {
		return nil, false
	}
	u, err := x.unit(x.units[i].off)
	if err != nil {
		return nil, false
	}
	var chain []*scope
	for _, f := range u.funcs {
		if f.contains(pc) {
			chain = append(chain, f)
			break
		}
	}
	if len(chain) == 0 {
		return nil, false
	}
	for cur := chain[0]; len(chain) < maxScopeDepth; {
		var next *scope
		for _, in := range cur.inlined {
			if in.contains(pc) {
				next = in
				break
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		cur = next
	}
	frames := make([]inlineFrame, len(chain))
	frames[0].file, frames[0].line = u.line(pc)
	for k := range chain {
		s := chain[len(chain)-1-k]
		frames[k].function = s.name
		if k > 0 {
			inner := chain[len(chain)-k]
			frames[k].file, frames[k].line = u.file(inner.callFile), inner.callLine
		}
	}
	return frames, true
}

func (s *scope) contains(pc uint64) bool {
	for _, r := range s.ranges {
		if pc >= r[0] && pc < r[1] {
			return true
		}
	}
	return false
}

// line returns the source position of pc from the unit's line table.
func (u *unit) line(pc uint64) (string, int) {
	i := sort.Search(len(u.rows), func(i int) bool { return u.rows[i].addr > pc }) - 1
	if i < 0 || u.rows[i].end {
		return "", 0
	}
	return u.rows[i].file, u.rows[i].line
}

func (u *unit) file(i int) string {
	if i >= 0 && i < len(u.files) && u.files[i] != nil {
		return u.files[i].Name
	}
	return ""
}

// unit parses the compile unit at off on first use.
// A unit is parsed once, even when it turns out malformed: a unit that makes
// debug/dwarf panic is kept empty (what it took of the budget stays taken).
func (x *dwarfIndex) unit(off dwarf.Offset) (u *unit, err error) {
	if u, ok := x.parsed[off]; ok {
		return u, nil
	}
	r := &reader{Reader: x.d.Reader()}
	r.Seek(off)
	cu, err := r.next()
	if err != nil || cu == nil {
		return nil, fmt.Errorf("read DWARF unit at %#x: %w", off, errors.Join(err, errNoProgress))
	}
	u = &unit{}
	x.parsed[off] = u
	defer func() {
		if p := recover(); p != nil {
			*u = unit{}
			err = fmt.Errorf("read DWARF unit at %#x: malformed: %v", off, p)
		}
	}()
	if lr, err := x.d.LineReader(cu); err == nil && lr != nil {
		var e dwarf.LineEntry
		for len(u.rows) < maxLineRows && lr.Next(&e) == nil {
			if len(u.rows) == cap(u.rows) {
				// Each array the rows grow into is counted in full; those
				// left behind are garbage until collected.
				grown := max(2*cap(u.rows), 256)
				if !x.take(lineRowBytes * uint64(grown)) {
					break
				}
				u.rows = slices.Grow(u.rows, grown-len(u.rows))
			}
			row := lineRow{addr: e.Address, line: e.Line, end: e.EndSequence}
			if e.File != nil {
				row.file = e.File.Name
			}
			u.rows = append(u.rows, row)
		}
		// At an address where one sequence ends and another starts, the start wins.
		sort.SliceStable(u.rows, func(i, j int) bool {
			a, b := u.rows[i], u.rows[j]
			return a.addr < b.addr || (a.addr == b.addr && a.end && !b.end)
		})
		u.files = lr.Files()
	}
	if cu.Children {
		u.funcs, err = x.children(r, 1)
	}
	return u, err
}

// children reads the DIEs below the current one and returns the functions
// and inlined calls among them; other DIEs (lexical blocks) are looked into.
func (x *dwarfIndex) children(r *reader, depth int) ([]*scope, error) {
	var out []*scope
	for {
		e, err := r.next()
		if err != nil {
			return out, err
		}
		if e == nil || e.Tag == 0 {
			return out, nil
		}
		switch e.Tag {
		case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine:
			s := &scope{name: x.name(e, 0)}
			s.ranges, _ = x.d.Ranges(e)
			if !x.take(scopeBytes + uint64(len(s.name)) + rangeBytes*uint64(len(s.ranges))) {
				return out, errIndexOverBudget
			}
			if f, ok := e.Val(dwarf.AttrCallFile).(int64); ok {
				s.callFile = int(f)
			}
			if l, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
				s.callLine = int(l)
			}
			if e.Children && depth < maxScopeDepth {
				if s.inlined, err = x.children(r, depth+1); err != nil {
					return out, err
				}
			} else if e.Children {
				if err := r.skip(); err != nil {
					return out, err
				}
			}
			if len(s.ranges) > 0 {
				out = append(out, s)
			}
		default:
			if e.Children && depth < maxScopeDepth && (e.Tag == dwarf.TagLexDwarfBlock || e.Tag == dwarf.TagNamespace || e.Tag == dwarf.TagClassType || e.Tag == dwarf.TagStructType) {
				inner, err := x.children(r, depth+1)
				out = append(out, inner...)
				if err != nil {
					return out, err
				}
			} else if e.Children {
				if err := r.skip(); err != nil {
					return out, err
				}
			}
		}
	}
}

// name returns a function's name as addr2line -C prints it: the demangled
// linkage name, else the plain name, found through abstract origins and
// specifications.
func (x *dwarfIndex) name(e *dwarf.Entry, depth int) string {
	for _, a := range []dwarf.Attr{dwarf.AttrLinkageName, dwarf.Attr(0x2007) /* DW_AT_MIPS_linkage_name */} {
		if s, ok := e.Val(a).(string); ok && s != "" {
			return demangled(s)
		}
	}
	if s, ok := e.Val(dwarf.AttrName).(string); ok && s != "" {
		return s
	}
	if depth >= 4 {
		return ""
	}
	for _, a := range []dwarf.Attr{dwarf.AttrAbstractOrigin, dwarf.AttrSpecification} {
		if off, ok := e.Val(a).(dwarf.Offset); ok {
			r := x.d.Reader()
			r.Seek(off)
			if o, err := r.Next(); err == nil && o != nil {
				return x.name(o, depth+1)
			}
		}
	}
	return ""
}
