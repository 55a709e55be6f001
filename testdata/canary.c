// canary: writes a secret into every allocation it makes, and is started
// with the secret in its environment and in its arguments after argv[0].
// mtrace's tests check that no output of mtrace holds the secret, and that
// no output holds an address inside this program's heap, whose range it
// writes to the file named by its first argument.
//
// Usage: canary HEAP-RANGE-FILE SECRET
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile keep[256];

__attribute__((noinline)) void fill_secrets(const char *secret, int n)
{
	size_t len = strlen(secret);

	for (int i = 0; i < n; i++) {
		char *p = malloc(len + 1 + i);
		memcpy(p, secret, len + 1);
		keep[i] = p;
		if (i % 2)
			free(p);
	}
}

static void write_heap_range(const char *path)
{
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r"), *out = fopen(path, "w");

	if (!maps || !out)
		exit(1);
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "[heap]"))
			fputs(line, out);
	fclose(maps);
	fclose(out);
}

int main(int argc, char **argv)
{
	if (argc != 3 || !getenv("CANARY_SECRET"))
		return 2;
	fill_secrets(argv[2], 200);
	fill_secrets(getenv("CANARY_SECRET"), 50);
	write_heap_range(argv[1]);
	return 0;
}
