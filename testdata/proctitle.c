// proctitle: rewrites its title over its arguments and environment, as
// setproctitle does, but leaves no NUL between them: /proc/PID/cmdline then
// reads argv[0], the arguments and the environment as one string. Then it
// says "ready", waits for a line on stdin, allocates and exits: a target
// whose arguments and environment must never show as its argv[0].
//
// Usage: env -i SECRET=... proctitle ARGS...
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv)
{
	char *end = argv[argc - 1] + strlen(argv[argc - 1]);
	// The environment strings follow the arguments: take the ones that do.
	for (char **e = environ; *e && *e == end + 1; e++)
		end = *e + strlen(*e);
	for (char *p = argv[0]; p < end; p++)
		if (*p == 0)
			*p = ' ';
	printf("ready\n");
	fflush(stdout);
	char line[16];
	if (!fgets(line, sizeof line, stdin))
		return 1;
	for (int i = 0; i < 100; i++) {
		char *volatile p = malloc(64 + i);
		free(p);
	}
	return 0;
}
