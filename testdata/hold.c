// hold: allocates COUNT blocks of 32 bytes from two functions, keeps them
// all live for SECONDS, then frees them and says how many: a target for
// mtrace's memory use while a million allocations are live.
//
// Usage: hold COUNT SECONDS
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void **blocks;

__attribute__((noinline)) void fill_even(long n)
{
	for (long i = 0; i < n; i += 2)
		blocks[i] = malloc(32);
}

__attribute__((noinline)) void fill_odd(long n)
{
	for (long i = 1; i < n; i += 2)
		blocks[i] = malloc(32);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int seconds = argc > 2 ? atoi(argv[2]) : 1;

	setvbuf(stdout, NULL, _IONBF, 0);
	blocks = calloc(n, sizeof(*blocks));
	fill_even(n);
	fill_odd(n);
	sleep(seconds);
	for (long i = 0; i < n; i++)
		free(blocks[i]);
	printf("tally pid=%d fill_even allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
	       (int)getpid(), (n + 1) / 2, (n + 1) / 2 * 32, (n + 1) / 2, (n + 1) / 2 * 32);
	printf("tally pid=%d fill_odd allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
	       (int)getpid(), n / 2, n / 2 * 32, n / 2, n / 2 * 32);
	free(blocks);
	return 0;
}
