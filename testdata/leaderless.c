// leaderless: a process whose main thread exits and leaves a worker thread
// that allocates. Without its leader, the process's /proc/PID/exe and
// /proc/PID/cmdline can no longer be read: a target that hides what it runs,
// for mtrace's policy tests.
//
// The worker prints "ready" once the main thread is gone, waits for a line
// on stdin, allocates in worker_work and prints, as allocs does:
//   tally pid=PID worker_work allocs=N alloc_bytes=N frees=N free_bytes=N
// Build with -pthread.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *volatile keep[8];

__attribute__((noinline)) void worker_work(void)
{
	const int n = 8;
	const size_t size = 40;

	for (int i = 0; i < n; i++) {
		keep[i] = malloc(size);
		memset(keep[i], 'x', size);
	}
	for (int i = 0; i < n; i++)
		free(keep[i]);
	printf("tally pid=%d worker_work allocs=%d alloc_bytes=%zu frees=%d free_bytes=%zu\n",
	       (int)getpid(), n, n * size, n, n * size);
	fflush(stdout);
}

static void *worker(void *arg)
{
	char path[64], c;

	(void)arg;
	// The leader's memory is gone once the kernel no longer names the executable.
	while (readlink("/proc/self/exe", path, sizeof(path)) > 0)
		usleep(1000);
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	worker_work();
	exit(0);
}

int main(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, worker, NULL) != 0)
		return 1;
	pthread_exit(NULL);
}
