// allocs: a known allocation pattern for mtrace's end-to-end tests.
//
// Three named functions allocate through malloc, calloc and realloc, free
// most of it and leak the rest. The program counts what it did itself and
// prints one line per function:
//   tally FUNCTION allocs=N alloc_bytes=N frees=N free_bytes=N
// counted by mtrace's rules: realloc(p, n) is one allocation of n and one
// free of p, realloc(NULL, n) only an allocation, realloc(p, 0) only a free;
// free(NULL) and failed allocations count nothing.
//
// With --wait it prints "ready" and waits for a line on stdin before it
// allocates, so a test can attach to it with --pid first. With --fork-exec
// the work is done three times: by a forked child, by a forked child that
// execs this program again, and by the parent. With --mmap it also maps
// anonymous memory (map_pages), unmaps most of it and keeps the rest.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct tally {
	const char *fn;
	long allocs, alloc_bytes, frees, free_bytes;
};

static struct tally small = {"make_small"}, zeroed = {"make_zeroed"}, grown = {"grow"}, mapped = {"map_pages"};

// Pointers are stored here so the compiler cannot drop the allocations.
void *volatile keep[64];
volatile size_t huge = SIZE_MAX / 2;
// Kept opaque so the compiler cannot turn realloc(NULL, n) into malloc(n).
void *volatile null;

static void alloced(struct tally *t, void *p, size_t n)
{
	if (!p)
		return;
	t->allocs++;
	t->alloc_bytes += n;
}

static void freed(struct tally *t, size_t n)
{
	t->frees++;
	t->free_bytes += n;
}

__attribute__((noinline)) void make_small(int n, int leak)
{
	void *p[32];
	const size_t size = 24;

	for (int i = 0; i < n; i++) {
		p[i] = malloc(size);
		alloced(&small, p[i], size);
		memset(p[i], 'x', size);
		keep[i] = p[i];
	}
	alloced(&small, malloc(huge), huge); // fails: counts nothing
	for (int i = 0; i < n - leak; i++) {
		free(p[i]);
		freed(&small, size);
	}
	free(null); // free(NULL) counts nothing
}

__attribute__((noinline)) void make_zeroed(int n, int leak)
{
	void *p[32];
	const size_t count = 4, size = 32;

	for (int i = 0; i < n; i++) {
		p[i] = calloc(count, size);
		alloced(&zeroed, p[i], count * size);
		keep[32 + i] = p[i];
	}
	for (int i = 0; i < n - leak; i++) {
		free(p[i]);
		freed(&zeroed, count * size);
	}
}

__attribute__((noinline)) void grow(int steps)
{
	size_t size = 64;
	char *p = realloc(null, size);

	alloced(&grown, p, size);
	for (int i = 0; i < steps; i++) {
		size_t next = size * 2;
		char *q = realloc(p, next);

		alloced(&grown, q, next);
		freed(&grown, size);
		q[next - 1] = 'y';
		p = q;
		size = next;
	}
	keep[60] = p;
	p = realloc(p, 0); // frees; glibc returns NULL, some allocators a new block of 0 bytes
	freed(&grown, size);
	alloced(&grown, p, 0);
	keep[59] = p;
	keep[61] = realloc(null, 300); // leaked
	alloced(&grown, keep[61], 300);
}

__attribute__((noinline)) void map_pages(int n, int leak)
{
	const size_t size = 16 * 4096;
	void *p[8];

	for (int i = 0; i < n; i++) {
		p[i] = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p[i] == MAP_FAILED)
			abort();
		alloced(&mapped, p[i], size);
	}
	for (int i = 0; i < n - leak; i++) {
		munmap(p[i], size);
		freed(&mapped, size);
	}
}

static void print(const struct tally *t)
{
	printf("tally pid=%d %s allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
	       (int)getpid(), t->fn, t->allocs, t->alloc_bytes, t->frees, t->free_bytes);
}

static void work(void)
{
	make_small(10, 3);
	make_zeroed(5, 1);
	grow(4);
	print(&small);
	print(&zeroed);
	print(&grown);
	fflush(stdout);
}

static void run_child(char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		if (argv)
			execv("/proc/self/exe", argv);
		else
			work();
		_exit(argv ? 127 : 0);
	}
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--wait") == 0) {
		char line[16];

		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	if (argc > 1 && strcmp(argv[1], "--mmap") == 0) {
		map_pages(4, 1);
		print(&mapped);
	}
	if (argc > 1 && strcmp(argv[1], "--fork-exec") == 0) {
		char *again[] = {argv[0], NULL};

		fflush(stdout);
		run_child(NULL);
		run_child(again);
	}
	work();
	return 0;
}
