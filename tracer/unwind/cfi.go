package unwind

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/go-delve/delve/pkg/dwarf/frame"
)

// DWARF register numbers of x86-64 that rows depend on.
const (
	regRBP = 6
	regRSP = 7
	regRA  = 16
)

// maxStates bounds DW_CFA_remember_state nesting in one FDE.
const maxStates = 64

// The expressions real binaries give as a CFA and that rows support: the
// PLT entries binutils' ld describes, CFA = rsp + 8 + ((rip & 15) >= N ? 8 : 0)
// with N = 11 (lazy PLT), 10 (BND PLT) or 9 (IBT PLT), and glibc's
// __restore_rt, CFA = *(rsp + 160).
var (
	pltExpr    = []byte{0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a} // breg7 8; breg16 0; lit15; and
	pltExprEnd = []byte{0x2a, 0x33, 0x24, 0x22}             // ge; lit3; shl; plus (after litN)
	signalExpr = []byte{0x77, 0xa0, 0x01, 0x06}             // breg7 160; deref
)

// DW_OP_lit0 and DW_OP_lit15: the literals a PLT expression compares with.
const (
	opLit0  = 0x30
	opLit15 = 0x3f
)

// cfaKind is how the CFA is found in the interpreter's state.
type cfaKind uint8

const (
	cfaUnsupported cfaKind = iota
	cfaRSP
	cfaRBP
	cfaPLT
	cfaSignal
)

// regKind is the rule of one register that rows depend on (rbp, ra).
type regKind uint8

const (
	regSame      regKind = iota // not mentioned, same_value: the caller's value is still there
	regAt                       // saved at CFA+off
	regUndefined                // no value: for ra, the outermost frame
	regOther                    // a rule rows cannot say (register, expression, val_offset)
)

type regRule struct {
	kind regKind
	off  int64
}

// state is one row of the CFI table as the instructions build it.
type state struct {
	cfa    cfaKind
	cfaOff int64
	rbp    regRule
	ra     regRule
}

// locRow is a row at a virtual address, before its conversion to a file offset.
type locRow struct {
	loc uint64
	row Row
}

// interpreter runs the CFA instructions of one FDE, the x86-64 subset real
// binaries use, in one pass.
type interpreter struct {
	cie     *frame.CommonInformationEntry
	ehFrame bool
	signal  bool
	loc     uint64
	cur     state
	initial state // after the CIE's instructions, for DW_CFA_restore
	saved   []state
	rows    []locRow
	stopped bool // an instruction rows cannot follow: None from here on
}

// interpret returns the rows of one FDE at virtual addresses, the first at
// its beginning; an instruction it cannot follow makes the rest None. The
// rows are valid until the next call: one interpreter serves every FDE.
func (in *interpreter) interpret(fde *frame.FrameDescriptionEntry, ehFrame bool) []locRow {
	*in = interpreter{
		cie: fde.CIE, ehFrame: ehFrame, signal: isSignal(fde.CIE), loc: fde.Begin(),
		saved: in.saved[:0], rows: in.rows[:0],
	}
	in.cur.ra = regRule{kind: regOther} // until the CIE says where it is
	in.run(fde.CIE.InitialInstructions, true)
	in.initial = in.cur
	if !in.stopped {
		in.run(fde.Instructions, false)
	}
	in.emit()
	return in.rows
}

// emit records the current state as the row from the current location on.
func (in *interpreter) emit() {
	r := Row{}
	if !in.stopped {
		r = in.cur.row(in.signal)
	}
	if n := len(in.rows); n > 0 && in.rows[n-1].loc == in.loc {
		in.rows[n-1].row = r
		return
	}
	in.rows = append(in.rows, locRow{loc: in.loc, row: r})
}

// row says the state as a Row, None where a row cannot say it.
func (s state) row(signal bool) Row {
	if signal || s.cfa == cfaSignal {
		return Row{CFA: RuleSignal}
	}
	switch {
	case s.ra.kind == regUndefined:
		return Row{CFA: RuleEnd}
	case s.ra.kind != regAt || s.ra.off != -8:
		return Row{}
	}
	var r Row
	switch s.cfa {
	case cfaRSP:
		r.CFA = RuleRSP
	case cfaRBP:
		r.CFA = RuleRBP
	case cfaPLT:
		r.CFA = RulePLT
	default:
		return Row{}
	}
	if s.cfaOff < math.MinInt32 || s.cfaOff > math.MaxInt32 {
		return Row{}
	}
	r.CFAOffset = int32(s.cfaOff)
	switch s.rbp.kind {
	case regAt:
		if s.rbp.off == 0 || s.rbp.off < math.MinInt16 || s.rbp.off > math.MaxInt16 {
			return Row{}
		}
		r.RBPOffset = int16(s.rbp.off)
	case regOther:
		return Row{}
	}
	return r
}

// run executes instructions; in a CIE, locations do not advance.
func (in *interpreter) run(code []byte, cie bool) {
	c := cursor{b: code}
	caf, daf := int64(in.cie.CodeAlignmentFactor), in.cie.DataAlignmentFactor
	for len(c.b) > 0 && !c.bad && !in.stopped {
		op := c.byte()
		switch op & 0xc0 {
		case 0x40: // DW_CFA_advance_loc
			in.advance(uint64(op&0x3f), caf, cie)
			continue
		case 0x80: // DW_CFA_offset
			in.setReg(uint64(op&0x3f), regRule{regAt, int64(c.uleb()) * daf})
			continue
		case 0xc0: // DW_CFA_restore
			in.restore(uint64(op & 0x3f))
			continue
		}
		switch op {
		case 0x00: // DW_CFA_nop
		case 0x01: // DW_CFA_set_loc
			// Its encoding in .eh_frame is the CIE's pointer encoding,
			// which delve does not expose; GCC and LLVM never emit it.
			if in.ehFrame || cie {
				in.stop()
				break
			}
			to := c.u64()
			if to < in.loc {
				in.stop()
				break
			}
			in.emit()
			in.loc = to
		case 0x02: // DW_CFA_advance_loc1
			in.advance(uint64(c.byte()), caf, cie)
		case 0x03: // DW_CFA_advance_loc2
			in.advance(uint64(c.u16()), caf, cie)
		case 0x04: // DW_CFA_advance_loc4
			in.advance(uint64(c.u32()), caf, cie)
		case 0x05: // DW_CFA_offset_extended
			reg := c.uleb()
			in.setReg(reg, regRule{regAt, int64(c.uleb()) * daf})
		case 0x06: // DW_CFA_restore_extended
			in.restore(c.uleb())
		case 0x07: // DW_CFA_undefined
			in.setReg(c.uleb(), regRule{kind: regUndefined})
		case 0x08: // DW_CFA_same_value
			in.setReg(c.uleb(), regRule{kind: regSame})
		case 0x09: // DW_CFA_register
			reg := c.uleb()
			c.uleb()
			in.setReg(reg, regRule{kind: regOther})
		case 0x0a: // DW_CFA_remember_state
			if len(in.saved) == maxStates {
				in.stop()
				break
			}
			in.saved = append(in.saved, in.cur)
		case 0x0b: // DW_CFA_restore_state
			n := len(in.saved)
			if n == 0 {
				in.stop()
				break
			}
			in.cur, in.saved = in.saved[n-1], in.saved[:n-1]
		case 0x0c: // DW_CFA_def_cfa
			reg := c.uleb()
			in.defCFA(reg, int64(c.uleb()))
		case 0x0d: // DW_CFA_def_cfa_register
			in.defCFA(c.uleb(), in.cur.cfaOff)
		case 0x0e: // DW_CFA_def_cfa_offset
			in.defCFAOffset(int64(c.uleb()))
		case 0x0f: // DW_CFA_def_cfa_expression
			in.defCFAExpression(c.bytes(c.uleb()))
		case 0x10: // DW_CFA_expression
			reg := c.uleb()
			c.bytes(c.uleb())
			in.setReg(reg, regRule{kind: regOther})
		case 0x11: // DW_CFA_offset_extended_sf
			reg := c.uleb()
			in.setReg(reg, regRule{regAt, c.sleb() * daf})
		case 0x12: // DW_CFA_def_cfa_sf
			reg := c.uleb()
			in.defCFA(reg, c.sleb()*daf)
		case 0x13: // DW_CFA_def_cfa_offset_sf
			in.defCFAOffset(c.sleb() * daf)
		case 0x14: // DW_CFA_val_offset
			reg := c.uleb()
			c.uleb()
			in.setReg(reg, regRule{kind: regOther})
		case 0x15: // DW_CFA_val_offset_sf
			reg := c.uleb()
			c.sleb()
			in.setReg(reg, regRule{kind: regOther})
		case 0x16: // DW_CFA_val_expression
			reg := c.uleb()
			c.bytes(c.uleb())
			in.setReg(reg, regRule{kind: regOther})
		case 0x2e: // DW_CFA_GNU_args_size
			c.uleb()
		case 0x2f: // DW_CFA_GNU_negative_offset_extended
			reg := c.uleb()
			in.setReg(reg, regRule{regAt, -int64(c.uleb()) * daf})
		default:
			in.stop()
		}
	}
	if c.bad {
		in.stop()
	}
}

// stop ends the rows that the instructions can say: from the current
// location on, the FDE is None.
func (in *interpreter) stop() {
	in.stopped = true
	in.emit()
}

func (in *interpreter) advance(delta uint64, caf int64, cie bool) {
	if cie {
		return // a CIE's instructions describe the first location only
	}
	step := delta * uint64(caf)
	if caf <= 0 || (delta != 0 && step/delta != uint64(caf)) || in.loc+step < in.loc {
		in.stop()
		return
	}
	in.emit()
	in.loc += step
}

func (in *interpreter) setReg(reg uint64, r regRule) {
	switch reg {
	case regRBP:
		in.cur.rbp = r
	case regRA:
		in.cur.ra = r
	}
}

func (in *interpreter) restore(reg uint64) {
	switch reg {
	case regRBP:
		in.cur.rbp = in.initial.rbp
	case regRA:
		in.cur.ra = in.initial.ra
	}
}

func (in *interpreter) defCFA(reg uint64, off int64) {
	switch reg {
	case regRSP:
		in.cur.cfa = cfaRSP
	case regRBP:
		in.cur.cfa = cfaRBP
	default:
		in.cur.cfa = cfaUnsupported
	}
	in.cur.cfaOff = off
}

// defCFAOffset changes the offset of a register CFA; an expression CFA has
// none to change.
func (in *interpreter) defCFAOffset(off int64) {
	if in.cur.cfa != cfaRSP && in.cur.cfa != cfaRBP {
		in.cur.cfa = cfaUnsupported
	}
	in.cur.cfaOff = off
}

// defCFAExpression recognizes the PLT and signal-trampoline expressions;
// any other makes the CFA unsupported.
func (in *interpreter) defCFAExpression(expr []byte) {
	in.cur.cfa, in.cur.cfaOff = cfaUnsupported, 0
	switch {
	case bytes.Equal(expr, signalExpr):
		in.cur.cfa = cfaSignal
	case len(expr) == len(pltExpr)+1+len(pltExprEnd) &&
		bytes.HasPrefix(expr, pltExpr) && bytes.HasSuffix(expr, pltExprEnd) &&
		expr[len(pltExpr)] >= opLit0 && expr[len(pltExpr)] <= opLit15:
		in.cur.cfa = cfaPLT
		in.cur.cfaOff = int64(expr[len(pltExpr)] - opLit0)
	}
}

// cursor reads the operands of CFA instructions; reading past the end
// marks it bad and yields zeros.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) bytes(n uint64) []byte {
	if n > uint64(len(c.b)) {
		c.bad, c.b = true, nil
		return nil
	}
	out := c.b[:n]
	c.b = c.b[n:]
	return out
}

func (c *cursor) byte() byte {
	if b := c.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (c *cursor) u16() uint16 {
	if b := c.bytes(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if b := c.bytes(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (c *cursor) u64() uint64 {
	if b := c.bytes(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// uleb reads an unsigned LEB128 number; one longer than 64 bits is bad.
func (c *cursor) uleb() uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		b := c.byte()
		if c.bad || shift >= 64 {
			c.bad = true
			return 0
		}
		v |= uint64(b&0x7f) << shift
		if b&0x80 == 0 {
			return v
		}
	}
}

// sleb reads a signed LEB128 number; one longer than 64 bits is bad.
func (c *cursor) sleb() int64 {
	var v int64
	for shift := uint(0); ; shift += 7 {
		b := c.byte()
		if c.bad || shift >= 64 {
			c.bad = true
			return 0
		}
		v |= int64(b&0x7f) << shift
		if b&0x80 == 0 {
			if shift+7 < 64 && b&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
}
