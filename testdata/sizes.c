// sizes: allocates and frees blocks of three sizes, each from its own
// function, and says how many: a target for the byte-sampling test, whose
// estimates it checks against these exact counts. stdout is unbuffered, so
// the program makes no allocation but these.
//
// Usage: sizes
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile keep;

static void run(const char *name, long n, size_t size)
{
	for (long i = 0; i < n; i++) {
		keep = malloc(size);
		free(keep);
	}
	printf("tally pid=%d %s allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
	       (int)getpid(), name, n, n * (long)size, n, n * (long)size);
}

__attribute__((noinline)) void small(void) { run("small", 100000, 48); }
__attribute__((noinline)) void medium(void) { run("medium", 20000, 3000); }
__attribute__((noinline)) void large(void) { run("large", 200, 200000); }

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	small();
	medium();
	large();
	return 0;
}
