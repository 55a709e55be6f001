// dropeuid: a set-user-ID program that sets its effective uid back to its
// caller's, as privileged programs do around untrusted work, and keeps its
// owner's uid as its saved uid, for mtrace's user-policy tests.
//
// Usage: dropeuid
//
// It prints "ready euid=N suid=N" and waits for a line on stdin, then exits.
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	uid_t ruid, euid, suid;
	char c;

	if (seteuid(getuid()) != 0 || getresuid(&ruid, &euid, &suid) != 0)
		return 1;
	printf("ready euid=%d suid=%d\n", (int)euid, (int)suid);
	fflush(stdout);
	while (read(0, &c, 1) == 1 && c != '\n')
		;
	return 0;
}
