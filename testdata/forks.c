// forks: a program whose children and grandchildren allocate, for mtrace's
// deny-list tests.
//
// Usage: forks N [PROGRAM ARGS...]
//
// It prints "ready" and waits for a line on stdin. Then it forks N children;
// each forks a grandchild, and both allocate in child_work and exit. With
// PROGRAM, one more child prints "exec pid=PID" and execs PROGRAM ARGS,
// which shares stdin. The parent waits for them all, then allocates in
// parent_work. Every process that allocates prints one line, as allocs does:
//   tally pid=PID FUNCTION allocs=N alloc_bytes=N frees=N free_bytes=N
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile keep[16];

// work allocates and frees n blocks of size bytes and says so as fn.
static void work(const char *fn, int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		keep[i] = malloc(size);
		memset(keep[i], 'x', size);
	}
	for (int i = 0; i < n; i++)
		free(keep[i]);
	printf("tally pid=%d %s allocs=%d alloc_bytes=%zu frees=%d free_bytes=%zu\n",
	       (int)getpid(), fn, n, n * size, n, n * size);
	fflush(stdout);
}

__attribute__((noinline)) void child_work(void)
{
	work("child_work", 8, 48);
}

__attribute__((noinline)) void parent_work(void)
{
	work("parent_work", 4, 96);
}

// read_line reads stdin up to a newline a byte at a time, so that nothing
// past it is taken from a program exec'd later.
static int read_line(void)
{
	char c;

	while (read(0, &c, 1) == 1)
		if (c == '\n')
			return 0;
	return -1;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;

	printf("ready\n");
	fflush(stdout);
	if (read_line() != 0)
		return 1;
	for (int i = 0; i < n; i++) {
		if (fork() == 0) {
			pid_t grandchild = fork();

			child_work();
			if (grandchild > 0)
				waitpid(grandchild, NULL, 0);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	if (argc > 2 && fork() == 0) {
		printf("exec pid=%d\n", (int)getpid());
		fflush(stdout);
		execv(argv[2], argv + 2);
		_exit(127);
	}
	while (wait(NULL) > 0)
		;
	parent_work();
	return 0;
}
