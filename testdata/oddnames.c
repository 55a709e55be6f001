// oddnames: a target whose names carry what a terminal acts on, as any
// user can give them: it runs again as itself with the argv[0] it is given,
// and allocates through odd_sym, a function without debug information whose
// symbol the test renames (objcopy --redefine-sym); the test builds it, from
// a copy of this file, in a directory named with escape sequences, line
// breaks and ";", so that its path and its DWARF file names carry them too.
// x86-64 only.
//
// Usage: oddnames ARGV0 SECONDS
// Runs itself again as ARGV0, which then allocates and frees for SECONDS
// seconds and prints "done".
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

void *volatile keep;

// odd_sym(n) is malloc(n) in a frame of its own, known by its symbol only.
void *odd_sym(size_t n);
__asm__(".text\n"
	".globl odd_sym\n"
	".type odd_sym, @function\n"
	"odd_sym:\n"
	"	push %rbp\n"
	"	mov %rsp, %rbp\n"
	"	call malloc@PLT\n"
	"	pop %rbp\n"
	"	ret\n"
	".size odd_sym, .-odd_sym\n");

__attribute__((noinline)) void odd_alloc(int n)
{
	for (int i = 0; i < n; i++) {
		keep = odd_sym(32);
		free(keep);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3) {
		execl("/proc/self/exe", argv[1], argv[2], (char *)NULL);
		perror("exec");
		return 1;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: oddnames ARGV0 SECONDS\n");
		return 2;
	}
	time_t end = time(NULL) + atoi(argv[1]);
	while (time(NULL) < end) {
		odd_alloc(100);
		usleep(10000);
	}
	printf("done\n");
	return 0;
}
