// sandboxed: allocates and frees COUNT blocks of 64 bytes from one function,
// puts itself under a seccomp filter that kills it when it makes the
// uretprobe system call, as allowlists made before that call existed do,
// says "ready" and waits for a line on stdin, then allocates and frees COUNT
// blocks from another function, and says what each did: a target for
// mtrace's handling of processes under seccomp.
//
// Usage: sandboxed COUNT
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#define SYS_URETPROBE 335 /* x86-64 */

void *volatile keep;

/* Each function below calls malloc itself: mtrace's tests find it as the caller. */
#define CHURN(n)                         \
	for (long i = 0; i < (n); i++) { \
		keep = malloc(64);       \
		free(keep);              \
	}

__attribute__((noinline)) void before_sandbox(long n)
{
	CHURN(n);
}

__attribute__((noinline)) void sandboxed_alloc(long n)
{
	CHURN(n);
}

static void tally(const char *fn, long n)
{
	printf("tally pid=%d %s allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n", (int)getpid(), fn, n, n * 64, n, n * 64);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100;
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_URETPROBE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
	char line[16];

	setvbuf(stdout, NULL, _IONBF, 0);
	before_sandbox(n);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("seccomp");
		return 1;
	}
	printf("ready\n");
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	sandboxed_alloc(n);
	tally("before_sandbox", n);
	tally("sandboxed_alloc", n);
	return 0;
}
