// Package probesite chooses where in a function a uprobe goes. The kernel
// emulates a few x86 instructions at a probe (jumps, calls, push, nop) and
// must single-step every other one out of line, which costs several times
// more; a probe a few bytes past the symbol, on an emulated instruction, sees
// the same arguments for a fraction of the cost.
//
// It only decodes the instructions it is given (from a file the caller
// holds open); it never attaches a probe or reads a process's memory.
package probesite

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"strings"

	"golang.org/x/arch/x86/x86asm"
)

// Needs is what the programs at a probe read when it fires.
type Needs struct {
	Args  int  // argument registers read, from the first: rdi, rsi, rdx
	Stack bool // the stack pointer is read, or a uretprobe shares the site: rsp and [rsp] as at entry
}

// Site is where a probe goes in a function, and why there.
type Site struct {
	Offset uint64 // bytes from the function's first instruction
	Reason string
}

// maxPrologue bounds how far into a function a site is looked for.
const maxPrologue = 64

var endbr = [][]byte{{0xf3, 0x0f, 0x1e, 0xfa}, {0xf3, 0x0f, 0x1e, 0xfb}}

// argRegs are the System V argument registers in order, each with its aliases.
var argRegs = [][]x86asm.Reg{
	{x86asm.RDI, x86asm.EDI, x86asm.DI, x86asm.DIB},
	{x86asm.RSI, x86asm.ESI, x86asm.SI, x86asm.SIB},
	{x86asm.RDX, x86asm.EDX, x86asm.DX, x86asm.DL, x86asm.DH},
}

var stackRegs = []x86asm.Reg{x86asm.RSP, x86asm.ESP, x86asm.SP, x86asm.SPB}

// Plan returns the site for a probe in the function whose machine code is
// code, from its first byte to its end (or as much of it as is known). The
// site is the first instruction boundary where the kernel emulates the
// instruction, provided every instruction before it only writes flags or
// registers the programs do not read, touches no memory but to read it, and
// does not branch, and no branch in code leads back into the skipped bytes.
// Anything else, and every architecture but amd64, gets offset 0. Code whose
// first instruction does not decode has no site: an error, and no probe.
func Plan(code []byte, needs Needs) (Site, error) {
	if runtime.GOARCH != "amd64" {
		return Site{0, "not amd64: at the symbol"}, nil
	}
	return plan(code, needs)
}

func plan(code []byte, needs Needs) (Site, error) {
	if len(code) == 0 {
		return Site{}, errors.New("plan a probe site: no code")
	}
	for off, inst := range instructions(code) {
		if off >= maxPrologue {
			break
		}
		if inst.Op == 0 && off == 0 {
			return Site{}, errors.New("plan a probe site: its first instruction does not decode")
		}
		if inst.Op == 0 {
			return Site{0, fmt.Sprintf("at the symbol: undecodable instruction at +%d", off)}, nil
		}
		if what, ok := emulated(code[off:off+inst.Len], inst); ok {
			if off > 0 {
				if why := branchInto(code, off); why != "" {
					return Site{0, "at the symbol: " + why}, nil
				}
			}
			return Site{uint64(off), what + " is emulated"}, nil
		}
		if why := unsafeBefore(inst, needs); why != "" {
			if off == 0 {
				return Site{0, fmt.Sprintf("at the symbol: %s is single-stepped", opName(inst))}, nil
			}
			return Site{0, fmt.Sprintf("at the symbol: %s at +%d %s", opName(inst), off, why)}, nil
		}
	}
	return Site{0, "at the symbol: no emulated instruction in the prologue"}, nil
}

// instructions yields the instructions of code with their offsets, from its
// start to its end, stepping over endbr64. An instruction it cannot decode
// (x86asm decodes a bad or cut-short one as a bare prefix, without an
// error) is yielded with Op 0, and ends the walk.
func instructions(code []byte) iter.Seq2[int, x86asm.Inst] {
	return func(yield func(int, x86asm.Inst) bool) {
		for off := 0; off < len(code); {
			if isEndbr(code[off:]) {
				off += len(endbr[0])
				continue
			}
			inst, err := x86asm.Decode(code[off:], 64)
			if err != nil {
				inst = x86asm.Inst{}
			}
			if !yield(off, inst) || inst.Op == 0 {
				return
			}
			off += inst.Len
		}
	}
}

func isEndbr(b []byte) bool {
	for _, e := range endbr {
		if bytes.HasPrefix(b, e) {
			return true
		}
	}
	return false
}

func opName(inst x86asm.Inst) string {
	if inst.Op == 0 {
		return "instruction"
	}
	return inst.Op.String()
}

// emulated reports whether the kernel emulates raw, decoded as inst, at a
// uprobe: relative jumps, conditional jumps and calls (the kernel refuses an
// operand-size prefix; any prefix is refused here), push of a general
// register, and the one-byte nop. Every kernel mtrace supports (5.17 on)
// emulates these: push since 4.17, the rest since uprobes came to x86.
func emulated(raw []byte, inst x86asm.Inst) (string, bool) {
	switch {
	case bytes.Equal(raw, []byte{0x90}) || bytes.Equal(raw, []byte{0x66, 0x90}):
		return "nop", true
	case len(raw) == 1 && raw[0] >= 0x50 && raw[0] <= 0x57,
		len(raw) == 2 && raw[0] == 0x41 && raw[1] >= 0x50 && raw[1] <= 0x57:
		return "push", true
	case raw[0] == 0xeb || raw[0] == 0xe9 || raw[0] == 0xe8 || raw[0] >= 0x70 && raw[0] <= 0x7f,
		len(raw) > 1 && raw[0] == 0x0f && raw[1] >= 0x80 && raw[1] <= 0x8f:
		return strings.ToLower(inst.Op.String()), true
	}
	return "", false
}

// flagsOnly are instructions that read their operands and write only flags.
var flagsOnly = map[x86asm.Op]bool{x86asm.TEST: true, x86asm.CMP: true, x86asm.BT: true}

// writesFirst are instructions that write their first operand (and flags) and nothing else.
var writesFirst = map[x86asm.Op]bool{
	x86asm.MOV: true, x86asm.MOVZX: true, x86asm.MOVSX: true, x86asm.MOVSXD: true, x86asm.LEA: true,
	x86asm.ADD: true, x86asm.SUB: true, x86asm.AND: true, x86asm.OR: true, x86asm.XOR: true,
	x86asm.SHL: true, x86asm.SHR: true, x86asm.SAR: true, x86asm.INC: true, x86asm.DEC: true,
	x86asm.NEG: true, x86asm.NOT: true,
}

// unsafeBefore says why inst may not run before the probe fires, or "" if it may.
func unsafeBefore(inst x86asm.Inst, needs Needs) string {
	if flagsOnly[inst.Op] {
		return ""
	}
	if !writesFirst[inst.Op] {
		return "is not known to be harmless"
	}
	reg, ok := inst.Args[0].(x86asm.Reg)
	if !ok {
		return "writes memory"
	}
	for i := 0; i < needs.Args && i < len(argRegs); i++ {
		if contains(argRegs[i], reg) {
			return "writes argument register " + argRegs[i][0].String()
		}
	}
	if contains(stackRegs, reg) {
		return "moves the stack pointer"
	}
	return ""
}

func contains(regs []x86asm.Reg, r x86asm.Reg) bool {
	for _, x := range regs {
		if x == r {
			return true
		}
	}
	return false
}

// branchInto decodes all of code and says why a probe at site is unsafe: a
// relative branch leads into bytes 1 to site (the probe would then fire in
// the middle of a call, or twice), or code cannot be decoded to its end.
// It returns "" when neither is so.
func branchInto(code []byte, site int) string {
	for off, inst := range instructions(code) {
		if inst.Op == 0 {
			return fmt.Sprintf("cannot check the branches: undecodable instruction at +%d", off)
		}
		if rel, isRel := inst.Args[0].(x86asm.Rel); isRel {
			if target := off + inst.Len + int(rel); target > 0 && target <= site {
				return fmt.Sprintf("a branch at +%d leads to +%d", off, target)
			}
		}
	}
	return ""
}
