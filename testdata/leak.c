// leak: allocates COUNT blocks of 16 bytes and exits without freeing them,
// a process that ends with allocations live: the target of mtrace's test
// that the live-allocation map is swept of processes that ended.
//
// Usage: leak COUNT
#include <stdlib.h>

void *volatile keep;

__attribute__((noinline)) void leak_blocks(long n)
{
	for (long i = 0; i < n; i++)
		keep = malloc(16);
}

int main(int argc, char **argv)
{
	leak_blocks(argc > 1 ? atol(argv[1]) : 0);
	return 0;
}
