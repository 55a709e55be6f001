package probesite

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mtrace/mtrace/symbolize"
)

// The allocators installed on this machine and the functions mtrace probes in them.
var libraries = map[string][]string{
	"/lib/x86_64-linux-gnu/libc.so.6":                    {"malloc", "free", "calloc", "realloc", "posix_memalign", "memalign", "valloc", "pvalloc"},
	"/usr/lib/x86_64-linux-gnu/libstdc++.so.6":           {"_Znwm", "_Znam", "_ZdlPv", "_ZdaPv", "_ZdlPvm"},
	"/usr/lib/x86_64-linux-gnu/libjemalloc.so.2":         {"malloc", "free", "calloc", "realloc", "_Znwm", "_ZdlPvm"},
	"/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4":         {"malloc", "free", "calloc", "realloc", "_Znwm", "_ZdlPv"},
	"/usr/lib/x86_64-linux-gnu/libmimalloc.so.2":         {"malloc", "free", "calloc", "realloc", "_Znwm"},
	"/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4": {"malloc", "free"},
}

// needs is what mtrace's programs read for each function.
func needs(fn string) Needs {
	switch fn {
	case "free", "_ZdlPv", "_ZdaPv", "_ZdlPvm":
		return Needs{Args: 1}
	case "calloc", "realloc", "memalign":
		return Needs{Args: 2, Stack: true}
	case "posix_memalign":
		return Needs{Args: 3, Stack: true}
	}
	return Needs{Args: 1, Stack: true}
}

// objdumpLine is an instruction line of objdump -d: address, mnemonic, operands.
var objdumpLine = regexp.MustCompile(`^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$`)

// TestPlanAgainstObjdump plans a site in every allocation function of the
// allocators on this machine and checks it with binutils: the site is an
// instruction boundary where objdump shows an instruction the kernel
// emulates, and every instruction before it is one that may run first.
func TestPlanAgainstObjdump(t *testing.T) {
	if _, err := exec.LookPath("objdump"); err != nil {
		t.Skip("needs objdump")
	}
	planned := 0
	for path, funcs := range libraries {
		f, err := os.Open(path)
		if err != nil {
			t.Logf("skip %s: %v", path, err)
			continue
		}
		defer f.Close()
		mod, err := symbolize.OpenModule(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, fn := range funcs {
			addr, ok := mod.Address(fn)
			if !ok {
				continue
			}
			code, err := mod.Code(f, fn, 1<<16)
			if err != nil {
				t.Fatalf("%s %s: %v", path, fn, err)
			}
			site, err := plan(code, needs(fn))
			if err != nil {
				t.Fatalf("%s %s: %v", path, fn, err)
			}
			t.Logf("%s %s: +%d (%s)", path, fn, site.Offset, site.Reason)
			if site.Offset == 0 {
				continue
			}
			planned++
			insts := objdump(t, path, addr, addr+site.Offset+16)
			checkSite(t, fmt.Sprintf("%s %s", path, fn), insts, addr, site.Offset, needs(fn))
		}
	}
	if planned == 0 {
		t.Fatal("no function got a site past its symbol")
	}
}

type instruction struct {
	addr     uint64
	mnemonic string
	operands string
}

func objdump(t *testing.T, path string, start, stop uint64) []instruction {
	out, err := exec.Command("objdump", "-d", "--no-show-raw-insn", "--wide",
		fmt.Sprintf("--start-address=%#x", start), fmt.Sprintf("--stop-address=%#x", stop), path).Output()
	if err != nil {
		t.Fatalf("objdump %s: %v", path, err)
	}
	var insts []instruction
	for _, line := range strings.Split(string(out), "\n") {
		m := objdumpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a, _ := strconv.ParseUint(m[1], 16, 64)
		insts = append(insts, instruction{a, m[2], m[3]})
	}
	return insts
}

var emulatedMnemonic = regexp.MustCompile(`^(push|jmp|call|j[a-z]+|nop)$`)
var harmless = regexp.MustCompile(`^(endbr64|test|cmp|cmpb|cmpl|cmpq|mov|movl|movq|movzbl|movzwl|movslq|lea|add|sub|and|or|xor|shl|shr|sar|inc|dec|neg|not|bt)$`)

func checkSite(t *testing.T, name string, insts []instruction, addr, site uint64, needs Needs) {
	t.Helper()
	protected := []string{"%rdi", "%rsi", "%rdx"}[:needs.Args]
	if needs.Stack {
		protected = append(protected, "%rsp")
	}
	for _, in := range insts {
		switch {
		case in.addr < addr+site:
			if !harmless.MatchString(in.mnemonic) {
				t.Errorf("%s: %s at +%d runs before the probe", name, in.mnemonic, in.addr-addr)
			}
			dst := in.operands[strings.LastIndex(in.operands, ",")+1:]
			for _, r := range protected {
				if in.mnemonic != "test" && !strings.HasPrefix(in.mnemonic, "cmp") && strings.Contains(dst, r[2:]) {
					t.Errorf("%s: %s %s at +%d writes %s before the probe", name, in.mnemonic, in.operands, in.addr-addr, r)
				}
			}
		case in.addr == addr+site:
			if !emulatedMnemonic.MatchString(in.mnemonic) {
				t.Errorf("%s: site +%d is on %s, which the kernel does not emulate", name, site, in.mnemonic)
			}
			return
		}
	}
	t.Errorf("%s: site +%d is not an instruction boundary", name, site)
}

// TestPlanNeedsDecodedCode gives no site to code that is not there or whose
// first instruction does not decode: no probe may go where no instruction
// of the function's own code was decoded.
func TestPlanNeedsDecodedCode(t *testing.T) {
	for name, code := range map[string][]byte{
		"no code":    nil,
		"cut short":  {0x48, 0x8b}, // mov with its operand missing
		"bad opcode": {0x06, 0x90}, // push es: invalid in 64-bit mode
	} {
		if site, err := plan(code, Needs{Args: 1}); err == nil {
			t.Errorf("%s (% x): site %+v, want an error", name, code, site)
		}
	}
	if site, err := plan([]byte{0x55, 0xc3}, Needs{Args: 1}); err != nil || site.Offset != 0 {
		t.Errorf("push rbp; ret: site %+v, %v, want +0", site, err)
	}
}
