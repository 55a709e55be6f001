// compute: a shared library whose one function, compute, holds the byte
// 0x90 (a nop, decoded from there) inside two of its instructions: a target
// for mtrace's test that the symbols a forged copy of the file adds (malloc
// and free pointing into the middle of compute's instructions) never place
// probes in the real file. compute(x) is x + 0x6688ab20; a breakpoint
// written over either 0x90 changes the result.
//
// Build: gcc -shared -fPIC -Wl,--build-id compute.c -o libcompute.so
__asm__(".text\n"
	".globl compute\n"
	".type compute, @function\n"
	"compute:\n"
	"	movl $0x11223390, %eax\n"
	"	movl $0x55667790, %ecx\n"
	"	addl %ecx, %eax\n"
	"	addl %edi, %eax\n"
	"	ret\n"
	".size compute, .-compute\n");
