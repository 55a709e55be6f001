package symbolize

import "io"

// framePointerSample bounds the functions FramePointers reads.
const framePointerSample = 2000

// FramePointers reads, from r (the module's file), the start of up to a
// sample of the module's functions, and returns how many of the read ones
// set up a frame pointer first (push %rbp; mov %rsp,%rbp, after an
// optional endbr64), and how many were read.
func (m *Module) FramePointers(r io.ReaderAt) (with, read int) {
	step := max(len(m.syms)/framePointerSample, 1)
	for i := 0; i < len(m.syms) && read < framePointerSample; i += step {
		s := m.syms[i]
		if s.size < 8 || s.debug {
			continue
		}
		code, err := m.CodeAt(r, s.value, 8)
		if err != nil {
			continue
		}
		read++
		if framePointerPrologue(code) {
			with++
		}
	}
	return with, read
}

// framePointerPrologue reports whether code begins with push %rbp; mov
// %rsp,%rbp (either encoding), after an optional endbr64.
func framePointerPrologue(code []byte) bool {
	if len(code) >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa {
		code = code[4:]
	}
	return len(code) >= 4 && code[0] == 0x55 && code[1] == 0x48 && (code[2] == 0x89 && code[3] == 0xe5 || code[2] == 0x8b && code[3] == 0xec)
}
