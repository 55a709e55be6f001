// bench: the allocation-bound benchmark of mtrace's overhead table (make
// bench, mtrace check --overhead). One op is one malloc of 16 to 1039 bytes
// and one free. It says "ready", waits for a line on stdin (so that probes
// can be attached after it started and before it runs), runs OPS ops and
// prints the time per op as ns_per_op=N.
//
// Usage: bench OPS
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void *volatile bench_keep;

// bench_run does ops ops and returns the nanoseconds each took on average.
double bench_run(long ops)
{
	struct timespec start, end;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < ops; i++) {
		void *p = malloc(16 + (i & 1023));
		bench_keep = p;
		free(p);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	return ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / (ops > 0 ? ops : 1);
}

#ifndef BENCH_LIBRARY
int main(int argc, char **argv)
{
	long ops = argc > 1 ? atol(argv[1]) : 1000000;
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	printf("ns_per_op=%.1f\n", bench_run(ops));
	return 0;
}
#endif
