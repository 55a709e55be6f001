// plugin: a shared library that allocates, for dlopen.c.
#include <stdlib.h>

void *volatile plugin_keep;

__attribute__((noinline)) long plugin_alloc(int n)
{
	long bytes = 0;

	for (int i = 0; i < n; i++) {
		void *p = malloc(48);
		plugin_keep = p;
		free(p);
		bytes += 48;
	}
	return bytes;
}
