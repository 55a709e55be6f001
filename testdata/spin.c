// spin: allocates and frees as fast as it can, from one function, a given
// number of times, and says how many: a target for mtrace's rate-limit and
// overhead tests.
//
// Usage: spin COUNT
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile keep;

__attribute__((noinline)) void churn(long n)
{
	for (long i = 0; i < n; i++) {
		void *p = malloc(64);
		keep = p;
		free(p);
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;

	churn(n);
	printf("tally pid=%d churn allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n", (int)getpid(), n, n * 64, n, n * 64);
	return 0;
}
