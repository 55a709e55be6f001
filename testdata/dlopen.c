// dlopen: loads a plugin, allocates through it, unloads it, and does it
// again, for mtrace's test of libraries that come and go. It tallies the
// plugin's allocations as "plugin_alloc".
//
// Usage: dlopen PLUGIN.so
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long allocs = 0, bytes = 0;

	for (int round = 0; round < 2; round++) {
		void *h = dlopen(argv[1], RTLD_NOW);
		if (!h)
			return 1;
		long (*plugin_alloc)(int) = (long (*)(int))dlsym(h, "plugin_alloc");
		bytes += plugin_alloc(20);
		allocs += 20;
		dlclose(h);
	}
	printf("tally pid=%d plugin_alloc allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
	       (int)getpid(), allocs, bytes, allocs, bytes);
	return 0;
}
