// mapper: maps the shared libraries it is given with dlopen, says "mapped"
// and waits for a line (or the end) on stdin before it exits: an attacker
// for mtrace's test of forged copies of a library.
//
// With --check LIB, it is that test's victim: it calls compute from LIB
// (testdata/compute.c) in a loop and checks every result. At the first
// wrong one it says "wrong" and exits 3; after a line on stdin, it checks
// one more round, says "ok CHECKS" and exits 0.
//
// Usage: mapper LIB.so... | mapper --check LIB.so
#include <dlfcn.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ROUND 100000

static int check(const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW);
	if (!h)
		return 1;
	int (*compute)(int) = (int (*)(int))dlsym(h, "compute");
	if (!compute)
		return 1;
	printf("ready\n");
	long checks = 0;
	for (int last = 0;;) {
		for (int i = 0; i < ROUND; i++, checks++) {
			int got = compute(i);
			if (got != i + 0x6688ab20) {
				printf("wrong compute(%d)=%#x after %ld checks\n", i, got, checks);
				return 3;
			}
		}
		if (last)
			break;
		struct pollfd in = {.fd = 0, .events = POLLIN};
		last = poll(&in, 1, 0) > 0;
		usleep(1000);
	}
	printf("ok %ld\n", checks);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 3 && strcmp(argv[1], "--check") == 0)
		return check(argv[2]);
	for (int i = 1; i < argc; i++)
		if (!dlopen(argv[i], RTLD_NOW))
			return 1;
	printf("mapped\n");
	for (int c = 0; c != '\n' && c != EOF;)
		c = getchar();
	return 0;
}
