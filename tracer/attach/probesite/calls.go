package probesite

import (
	"runtime"

	"golang.org/x/arch/x86/x86asm"
)

// Exit is a call or jump by which a function's code leaves it.
type Exit struct {
	Target uint64 // where it leads; for Slot, the pointer it goes through
	Slot   bool   // through the pointer at Target (call *f@GOTPCREL(%rip), as -fno-plt code calls)
	Call   bool   // a call, not a tail jump
}

// maxFrame bounds the stack a function may take before it hands its call off.
const maxFrame = 1 << 20

// Handoff walks the function whose machine code is code, at address start,
// from its first instruction straight on (branches not taken, calls
// returning), to its first call or jump that carries accepts. It returns
// how far below the stack pointer at the function's entry the called
// function's stack pointer is when it starts: what the function pushed and
// reserved, and the return address of a call; 0 for a tail jump. ok is
// false if the walk ends first: at a return, a trap, another jump, an
// instruction that cannot be decoded or that moves the stack pointer in a
// way not followed here, or where a branch seen on the way leads with the
// stack pointer elsewhere (past a call that does not return); and on every
// architecture but amd64.
func Handoff(code []byte, start uint64, carries func(Exit) bool) (depth uint64, ok bool) {
	if runtime.GOARCH != "amd64" {
		return 0, false
	}
	var pushed int64
	branched := make(map[int]int64) // where branches on the way lead in code, with pushed there
	for off, inst := range instructions(code) {
		if at, isTarget := branched[off]; isTarget && at != pushed {
			return 0, false
		}
		next := start + uint64(off+inst.Len)
		switch {
		case inst.Op == x86asm.CALL || inst.Op == x86asm.JMP:
			e, known := exit(inst, next)
			e.Call = inst.Op == x86asm.CALL
			if known && carries(e) {
				if e.Call {
					pushed += 8 // its return address
				} else if pushed != 0 {
					return 0, false // a tail call leaves no frame
				}
				if pushed < 0 || pushed > maxFrame {
					return 0, false
				}
				return uint64(pushed), true
			}
			if !e.Call {
				return 0, false
			}
		case isJcc(inst.Op):
			if rel, isRel := inst.Args[0].(x86asm.Rel); isRel {
				target := off + inst.Len + int(rel)
				if at, seen := branched[target]; seen && at != pushed {
					return 0, false
				}
				branched[target] = pushed
			}
		case inst.Op == x86asm.PUSH && isReg64(inst.Args[0]):
			pushed += 8
		case inst.Op == x86asm.POP && isReg64(inst.Args[0]) && inst.Args[0] != x86asm.RSP:
			pushed -= 8
		case (inst.Op == x86asm.SUB || inst.Op == x86asm.ADD) && inst.Args[0] == x86asm.RSP:
			imm, isImm := inst.Args[1].(x86asm.Imm)
			if !isImm {
				return 0, false
			}
			if inst.Op == x86asm.SUB {
				pushed += int64(imm)
			} else {
				pushed -= int64(imm)
			}
		case inst.Op == 0 || stops[inst.Op] || touches(inst, stackRegs) && !readsStack(inst):
			return 0, false // an undecodable instruction, a return, a trap, or one not followed
		}
	}
	return 0, false
}

// exit is where the call or jump inst, followed by address next, leads:
// relative, or through a pointer at a fixed address.
func exit(inst x86asm.Inst, next uint64) (Exit, bool) {
	switch arg := inst.Args[0].(type) {
	case x86asm.Rel:
		return Exit{Target: next + uint64(int64(arg))}, true
	case x86asm.Mem:
		if arg.Base == x86asm.RIP && arg.Index == 0 {
			return Exit{Target: next + uint64(arg.Disp), Slot: true}, true
		}
	}
	return Exit{}, false
}

// stops are the instructions that end Handoff's walk: those that move the
// stack pointer without naming it, other than push and pop of a general
// register, and those after which the code does not go on (returns, traps).
var stops = map[x86asm.Op]bool{
	x86asm.RET: true, x86asm.LRET: true, x86asm.IRETQ: true, x86asm.ENTER: true, x86asm.LEAVE: true,
	x86asm.PUSH: true, x86asm.POP: true, x86asm.PUSHFQ: true, x86asm.POPFQ: true, x86asm.PUSHF: true, x86asm.POPF: true,
	x86asm.UD2: true, x86asm.UD1: true, x86asm.HLT: true, x86asm.INT: true,
}

// readsStack reports whether inst only reads the stack pointer it names: it copies or compares it.
func readsStack(inst x86asm.Inst) bool {
	switch inst.Op {
	case x86asm.MOV, x86asm.CMP, x86asm.TEST:
		r, isReg := inst.Args[0].(x86asm.Reg)
		return inst.Op != x86asm.MOV || !isReg || !contains(stackRegs, r)
	}
	return false
}

// isReg64 reports whether a is a 64-bit general register.
func isReg64(a x86asm.Arg) bool {
	r, isReg := a.(x86asm.Reg)
	return isReg && r >= x86asm.RAX && r <= x86asm.R15
}

// touches reports whether any operand of inst is one of regs.
func touches(inst x86asm.Inst, regs []x86asm.Reg) bool {
	for _, a := range inst.Args {
		if r, isReg := a.(x86asm.Reg); isReg && contains(regs, r) {
			return true
		}
	}
	return false
}

// PLTSlot returns the pointer a PLT entry, whose code at address addr is
// stub, jumps through: its first instruction past endbr64 must be
// jmp *slot(%rip), as in .plt.sec and .plt.got entries and the lazy .plt's.
func PLTSlot(stub []byte, addr uint64) (uint64, bool) {
	for off, inst := range instructions(stub) {
		if inst.Op != x86asm.JMP {
			return 0, false
		}
		if e, known := exit(inst, addr+uint64(off+inst.Len)); known && e.Slot {
			return e.Target, true
		}
		return 0, false
	}
	return 0, false
}
