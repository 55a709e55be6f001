package probesite

import "testing"

// asm assembles pieces of machine code at address 0x1000; a piece with a
// target is a call (0xe8) or jump (0xe9) to it.
type piece struct {
	code   []byte
	target uint64
}

func asm(pieces ...piece) []byte {
	var code []byte
	for _, p := range pieces {
		if p.target == 0 {
			code = append(code, p.code...)
			continue
		}
		d := uint32(p.target - (0x1000 + uint64(len(code)) + 5))
		code = append(code, p.code[0], byte(d), byte(d>>8), byte(d>>16), byte(d>>24))
	}
	return code
}

// TestHandoff checks Handoff on hand-assembled code at 0x1000 whose
// carriers are the function at 0x2000 and the pointer at 0x3000: how far
// below the entry stack pointer the carrier starts, or that it cannot tell.
func TestHandoff(t *testing.T) {
	var (
		endbr    = piece{code: []byte{0xf3, 0x0f, 0x1e, 0xfa}}
		pushRbx  = piece{code: []byte{0x53}}
		pushRbp  = piece{code: []byte{0x55}}
		movRbx   = piece{code: []byte{0x48, 0x89, 0xfb}}       // mov %rdi,%rbx
		frame    = piece{code: []byte{0x48, 0x89, 0xe5}}       // mov %rsp,%rbp
		sub8     = piece{code: []byte{0x48, 0x83, 0xec, 0x08}} // sub $8,%rsp
		align    = piece{code: []byte{0x48, 0x83, 0xe4, 0xf0}} // and $-16,%rsp
		test     = piece{code: []byte{0x48, 0x85, 0xff}}       // test %rdi,%rdi
		jne      = piece{code: []byte{0x75, 0x00}}
		cmov     = piece{code: []byte{0x48, 0x0f, 0x45, 0xc7}} // cmovne %rdi,%rax
		ret      = piece{code: []byte{0xc3}}
		carrier  = piece{code: []byte{0xe8}, target: 0x2000}
		other    = piece{code: []byte{0xe8}, target: 0x4000}
		tail     = piece{code: []byte{0xe9}, target: 0x2000}
		elsewise = piece{code: []byte{0xe9}, target: 0x4000}
	)
	slot := piece{code: []byte{0xff, 0x15, 0, 0, 0, 0}} // call *0x3000(%rip), placed at 0x1001
	slot.code[2], slot.code[3] = 0xf9, 0x1f
	for name, tc := range map[string]struct {
		code  []byte
		depth uint64
		ok    bool
	}{
		"libstdc++ new":       {asm(endbr, test, pushRbx, cmov, movRbx, carrier, ret), 16, true},
		"tail call":           {asm(endbr, tail), 0, true},
		"through a pointer":   {asm(pushRbx, slot, ret), 16, true},
		"frame and locals":    {asm(pushRbp, frame, pushRbx, sub8, other, test, jne, carrier, ret), 32, true},
		"returns first":       {asm(test, jne, ret, carrier), 0, false},
		"jumps elsewhere":     {asm(pushRbx, elsewise, carrier), 0, false},
		"aligns its stack":    {asm(pushRbp, frame, align, carrier), 0, false},
		"tail call off frame": {asm(pushRbx, tail), 0, false},
		"undecodable":         {[]byte{0x53, 0xe8, 0x00}, 0, false},
		// push %rbx; test; jne L; sub $8,%rsp; call abort; L: call 0x2000: the
		// branch reaches the carrier 8 bytes higher than the straight walk
		"past a call that does not return": {asm(pushRbx, test, piece{code: []byte{0x75, 0x09}}, sub8, other, carrier), 0, false},
		"trap":                             {asm(pushRbx, piece{code: []byte{0x0f, 0x0b}}, carrier), 0, false}, // ud2
		"breakpoint":                       {asm(pushRbx, piece{code: []byte{0xcc}}, carrier), 0, false},       // int3
		"branch to the same depth":         {asm(pushRbx, test, piece{code: []byte{0x75, 0x03}}, movRbx, carrier), 16, true},
	} {
		depth, ok := Handoff(tc.code, 0x1000, func(e Exit) bool {
			return e.Target == 0x2000 && !e.Slot || e.Target == 0x3000 && e.Slot
		})
		if depth != tc.depth || ok != tc.ok {
			t.Errorf("%s: Handoff %d %v, want %d %v", name, depth, ok, tc.depth, tc.ok)
		}
	}
}

// TestPLTSlot decodes the PLT entries binutils writes: .plt.sec's
// endbr64; bnd jmp *slot(%rip), and the lazy .plt's jmp *slot(%rip).
func TestPLTSlot(t *testing.T) {
	for name, tc := range map[string]struct {
		stub []byte
		slot uint64
		ok   bool
	}{
		"plt.sec": {[]byte{0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0xf5, 0x0f, 0x00, 0x00}, 0x2000, true}, // slot = 0x100b + 0xff5
		"plt":     {[]byte{0xff, 0x25, 0xfa, 0x0f, 0x00, 0x00, 0x68, 0x00, 0x00, 0x00, 0x00}, 0x2000, true}, // slot = 0x1006 + 0xffa
		"code":    {[]byte{0x55, 0xff, 0x25, 0xfa, 0x0f, 0x00, 0x00}, 0, false},                             // push first: not a stub
		"jmp rel": {[]byte{0xe9, 0x00, 0x00, 0x00, 0x00}, 0, false},
	} {
		slot, ok := PLTSlot(tc.stub, 0x1000)
		if slot != tc.slot || ok != tc.ok {
			t.Errorf("%s: PLTSlot %#x %v, want %#x %v", name, slot, ok, tc.slot, tc.ok)
		}
	}
}
