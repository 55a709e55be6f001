package probesite

import (
	"runtime"

	"golang.org/x/arch/x86/x86asm"
)

// Leaf reports whether the function whose whole machine code is code, at
// address start, can be seen not to enter another probed function: no
// branch of it, relative or through a pointer, may lead to one of sites
// (the addresses where probes fire, its own included), and it calls and
// jumps through no pointer (glibc's malloc did, to its hooks, before 2.34).
// Code that cannot be decoded to its end, and every architecture but amd64,
// is not a leaf. Calls to functions that are not probed are not followed.
func Leaf(code []byte, start uint64, sites map[uint64]bool) bool {
	if runtime.GOARCH != "amd64" {
		return false
	}
	for off, inst := range instructions(code) {
		if inst.Op == 0 {
			return false
		}
		if inst.Op != x86asm.CALL && inst.Op != x86asm.JMP && !isJcc(inst.Op) {
			continue
		}
		rel, isRel := inst.Args[0].(x86asm.Rel)
		if !isRel {
			return false // through a pointer: it may lead anywhere
		}
		if sites[start+uint64(int64(off+inst.Len)+int64(rel))] {
			return false
		}
	}
	return true
}

// isJcc reports whether op is a conditional jump.
func isJcc(op x86asm.Op) bool {
	switch op {
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE, x86asm.JL,
		x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO, x86asm.JP, x86asm.JS,
		x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ:
		return true
	}
	return false
}
