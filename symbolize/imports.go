package symbolize

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
)

// maxRelocations caps the relocation sections read for Imports.
const maxRelocations = 16 << 20

// Imports reads from r, an x86-64 ELF file, the functions it calls through
// its global offset table: the address of each slot the dynamic loader
// fills with a function's address (a PLT entry jumps through it, and code
// built with -fno-plt calls through it), and that function's name.
func Imports(r io.ReaderAt) (slots map[uint64]string, err error) {
	defer recoverMalformed(&err)
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("parse ELF: %w", err)
	}
	if f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		return nil, fmt.Errorf("imports of a %v %v file", f.Class, f.Machine)
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("read dynamic symbols: %w", err)
	}
	slots = make(map[uint64]string)
	for _, name := range []string{".rela.plt", ".rela.dyn"} {
		data := sectionData(f, name, maxRelocations)
		for ; len(data) >= 24; data = data[24:] {
			off, info := binary.LittleEndian.Uint64(data), binary.LittleEndian.Uint64(data[8:])
			typ, sym := elf.R_X86_64(info&0xffffffff), info>>32
			// Symbol 0 is the null symbol, which DynamicSymbols leaves out.
			if (typ == elf.R_X86_64_JMP_SLOT || typ == elf.R_X86_64_GLOB_DAT) && sym > 0 && sym <= uint64(len(syms)) {
				slots[off] = syms[sym-1].Name
			}
		}
	}
	return slots, nil
}
