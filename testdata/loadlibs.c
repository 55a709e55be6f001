// loadlibs: loads every library it is given, one after another, keeping
// them all loaded, and allocates from one function after each load: a
// target for mtrace's test that loading code (as Python imports extension
// modules) does not make the same stacks count as new ones.
//
// Usage: loadlibs LIB.so...
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile keep;

__attribute__((noinline)) void steady(void)
{
	keep = malloc(32);
	free(keep);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!dlopen(argv[i], RTLD_NOW))
			return 1;
		steady();
	}
	printf("tally pid=%d steady allocs=%d alloc_bytes=%d frees=%d free_bytes=%d\n",
	       (int)getpid(), argc - 1, 32 * (argc - 1), argc - 1, 32 * (argc - 1));
	return 0;
}
