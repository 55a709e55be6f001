package bpf

import (
	"testing"

	"github.com/cilium/ebpf/asm"
)

// allowedHelpers lists every helper the programs may call, and why it reads
// nothing that could be payload.
var allowedHelpers = map[asm.BuiltinFunc]string{
	asm.FnMapLookupElem:              "mtrace's own maps",
	asm.FnMapUpdateElem:              "mtrace's own maps",
	asm.FnMapDeleteElem:              "mtrace's own maps",
	asm.FnRingbufReserve:             "the event ring buffer",
	asm.FnRingbufSubmit:              "the event ring buffer",
	asm.FnRingbufOutput:              "the event ring buffer, from mtrace's own scratch map",
	asm.FnRingbufQuery:               "the event ring buffer's fill level",
	asm.FnKtimeGetNs:                 "timestamps",
	asm.FnGetCurrentPidTgid:          "the calling process's ids",
	asm.FnGetCurrentCgroupId:         "the calling process's cgroup id",
	asm.FnGetCurrentAncestorCgroupId: "cgroup filtering",
	asm.FnGetAttachCookie:            "which function a probe is on",
	asm.FnGetCurrentTaskBtf:          "the task, for bpf_find_vma",
	asm.FnGetStack:                   "user stacks: return addresses from the kernel's frame-pointer walk",
	asm.FnFindVma:                    "which file and offset a return address is in (kernel VMA metadata)",
	asm.FnLoop:                       "bounded loops",
	asm.FnGetPrandomU32:              "sampling draws",
	asm.FnTaskStorageGet:             "mtrace's own per-thread state",
	asm.FnProbeReadKernel:            "kernel structures (CO-RE): inodes, dentries, mounts",
	asm.FnProbeReadKernelStr:         "file names of executables, from dentries (kernel memory)",
	asm.FnProbeReadUser:              "see userMemory: pointers only, posix_memalign's result and return addresses",
}

// allowedKfuncs lists every kernel function the programs may call, and why.
var allowedKfuncs = map[string]string{
	"bpf_session_is_return": "whether a session program runs at entry or at return",
}

// userMemory lists the programs that may read user memory at all: the
// allocation probes. At a return, they read the pointer posix_memalign
// writes to its out-parameter; at the entry of operator new, the return
// address at the stack pointer.
var userMemory = map[string]bool{AllocProgAllocEnter: true, AllocProgAllocExit: true, AllocProgAllocSession: true}

// TestProgramsReadNoPayload inspects the compiled programs: every helper and
// kfunc they call must be allowed above, and only the allocation probes may read user
// memory, 8 bytes at a time: a pointer.
func TestProgramsReadNoPayload(t *testing.T) {
	spec, err := LoadAlloc()
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Programs) == 0 {
		t.Fatal("no programs")
	}
	for name, prog := range spec.Programs {
		calls := 0
		for i, ins := range prog.Instructions {
			if ins.IsKfuncCall() {
				if _, ok := allowedKfuncs[ins.Reference()]; !ok {
					t.Errorf("%s: instruction %d calls kfunc %q, which is not allowed", name, i, ins.Reference())
				}
				continue
			}
			if !ins.IsBuiltinCall() {
				continue
			}
			calls++
			fn := asm.BuiltinFunc(ins.Constant)
			if _, ok := allowedHelpers[fn]; !ok {
				t.Errorf("%s: instruction %d calls %v, which is not allowed", name, i, fn)
			}
			if fn == asm.FnProbeReadUser {
				if !userMemory[name] {
					t.Errorf("%s: reads user memory", name)
				}
				// The size argument (r2) must be the 8 bytes of a pointer.
				if size, ok := lastConstant(prog.Instructions[:i], asm.R2); !ok || size != 8 {
					t.Errorf("%s: bpf_probe_read_user of %d bytes (known %v), want 8", name, size, ok)
				}
			}
		}
		if calls == 0 {
			t.Errorf("%s calls no helper: the inspection saw nothing", name)
		}
	}
}

// lastConstant returns the constant last loaded into reg before a call.
func lastConstant(insns asm.Instructions, reg asm.Register) (int64, bool) {
	for i := len(insns) - 1; i >= 0; i-- {
		ins := insns[i]
		if ins.Dst != reg {
			continue
		}
		if ins.OpCode.ALUOp() == asm.Mov && ins.OpCode.Source() == asm.ImmSource {
			return ins.Constant, true
		}
		return 0, false
	}
	return 0, false
}
