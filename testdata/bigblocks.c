// bigblocks: allocates and frees COUNT blocks of 1 GiB each, never touched
// (so they cost no memory): a target whose allocations no other test
// program's add up to, for mtrace's test that a denied image's
// allocations never reach a report.
//
// Usage: bigblocks COUNT
#include <stdlib.h>

void *volatile keep;

__attribute__((noinline)) void big_work(int n)
{
	for (int i = 0; i < n; i++) {
		keep = malloc((size_t)1 << 30);
		free(keep);
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;

	big_work(n);
	return 0;
}
