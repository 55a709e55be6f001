// storm: a fork storm for the tests of mtrace's own memory.
//
// storm N [live] forks N children one after another; child i allocates and
// frees a few blocks from a stack of its own (a recursion i % 64 deep, so
// the children share stacks but each one is a new process image), and
// exits. With "live", every child waits until all N are forked, so that N
// traced processes are alive at once; the parent then lets them go and
// reaps them all. The parent prints "storm N" when every child is reaped.
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
	int gate[2];
	if (pipe(gate) != 0) {
		perror("pipe");
		return 1;
	}
	int forked = 0;
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
				char c;
				read(gate[0], &c, 1); // returns 0 once the parent closes its end
			}
			_exit(0);
		}
		forked++;
		// Reap as it goes unless the children must stay alive together.
		if (!live)
			waitpid(pid, NULL, 0);
	}
	close(gate[0]);
	close(gate[1]);
	while (wait(NULL) > 0)
		;
	printf("storm %d\n", forked);
	return forked == n ? 0 : 1;
}
