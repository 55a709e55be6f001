// forkfirst: a program that forks before it does anything else, for
// mtrace's test of exclusions passed on at fork.
//
// Usage: forkfirst [N]
//
// It forks at once and prints "fork pid=PID" with the child's pid. The
// child waits for a line on stdin, then allocates and frees N blocks
// (default 40000) in child_work and prints, as allocs does:
//   tally pid=PID child_work allocs=N alloc_bytes=N frees=N free_bytes=N
// The parent waits for the child and exits with its status.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile keep;

__attribute__((noinline)) void child_work(int n, size_t size)
{
	for (int i = 0; i < n; i++) {
		keep = malloc(size);
		memset(keep, 'x', size);
		free(keep);
	}
	printf("tally pid=%d child_work allocs=%d alloc_bytes=%zu frees=%d free_bytes=%zu\n",
	       (int)getpid(), n, n * size, n, n * size);
	fflush(stdout);
}

// read_line reads stdin up to a newline a byte at a time, leaving the rest to others.
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
	int n = argc > 1 ? atoi(argv[1]) : 40000;
	pid_t child = fork();
	int status;

	if (child < 0)
		return 1;
	if (child == 0) {
		if (read_line() != 0)
			_exit(1);
		child_work(n, 64);
		_exit(0);
	}
	printf("fork pid=%d\n", (int)child);
	fflush(stdout);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status);
}
