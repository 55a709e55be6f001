// storm: a fork storm for the tests of mtrace's own memory.
//
// storm N [live] forks N children one after another; child i allocates and
// frees five blocks (four with malloc, one with calloc) from a recursion
// i % 64 deep, so the children share stacks but each one is a new process
// image, and exits; the parent allocates nothing. With "live", every child waits until all N are forked,
// so that N traced processes are alive at once: once every child has
// allocated, the parent prints "forked N" and lets them go when a line (or
// the end) arrives on its stdin. The
// parent prints "storm N" when every child is reaped.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile keep;

// __attribute__((noinline)) keeps one frame per level of recursion.
__attribute__((noinline)) static void nest(int depth, int i)
{
	if (depth > 0) {
		nest(depth - 1, i);
		__asm__ volatile("" ::: "memory"); // no tail call
		return;
	}
	for (int k = 0; k < 4; k++) {
		keep = malloc(16 + 16 * k + i % 7);
		free(keep);
	}
	keep = calloc(1, 64);
	free(keep);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5000;
	int live = argc > 2;
	int gate[2], done[2];
	if (pipe(gate) != 0 || pipe(done) != 0) {
		perror("pipe");
		return 1;
	}
	int forked = 0;
	setvbuf(stdout, NULL, _IONBF, 0); // the parent allocates nothing
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			break;
		}
		if (pid == 0) {
			close(gate[1]);
			nest(i % 64, i);
			if (live) {
				char c = 1;
				if (write(done[1], &c, 1) != 1)
					_exit(1);
				read(gate[0], &c, 1); // returns 0 once the parent closes its end
			}
			_exit(0);
		}
		forked++;
		// Reap as it goes unless the children must stay alive together.
		if (!live)
			waitpid(pid, NULL, 0);
	}
	if (live) {
		char c;
		for (int i = 0; i < forked; i++)
			if (read(done[0], &c, 1) != 1)
				break;
		printf("forked %d\n", forked);
		read(0, &c, 1); // stdio would allocate a buffer
	}
	close(gate[0]);
	close(gate[1]);
	while (wait(NULL) > 0)
		;
	printf("storm %d\n", forked);
	return forked == n ? 0 : 1;
}
