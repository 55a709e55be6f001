// dlopen: loads a plugin, allocates through it, unloads it, and does it
// again, for mtrace's tests of libraries that come and go. It tallies the
// plugin's allocations under the name of the function it called.
//
// With REPLACEMENT.so, the plugin's file is replaced while the plugin is
// loaded: halfway through the first round, after PAUSE_MS milliseconds (an
// upgrade comes long after a library was loaded, and a tracer has read the
// old file by then; 0: at once), REPLACEMENT.so is renamed over PLUGIN.so
// (the old file stays mapped, deleted), the old plugin allocates again, and
// the second round loads the new file. The replacement is
// plugin.c built with -Dplugin_alloc=plugin_alloc_v2, so each file's
// allocations have their own name.
//
// Usage: dlopen PLUGIN.so [REPLACEMENT.so PAUSE_MS]
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *names[] = {"plugin_alloc", "plugin_alloc_v2"};
static long allocs[2], bytes[2];

// call allocates 20 blocks through whichever function the plugin defines.
static void call(void *h)
{
	for (int i = 0; i < 2; i++) {
		long (*f)(int) = (long (*)(int))dlsym(h, names[i]);
		if (f) {
			bytes[i] += f(20);
			allocs[i] += 20;
			return;
		}
	}
	exit(1);
}

int main(int argc, char **argv)
{
	for (int round = 0; round < 2; round++) {
		void *h = dlopen(argv[1], RTLD_NOW);
		if (!h)
			return 1;
		call(h);
		if (round == 0 && argc > 3) {
			usleep(atoi(argv[3]) * 1000);
			if (rename(argv[2], argv[1]))
				return 1;
			call(h);
		}
		dlclose(h);
	}
	for (int i = 0; i < 2; i++)
		if (allocs[i])
			printf("tally pid=%d %s allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
			       (int)getpid(), names[i], allocs[i], bytes[i], allocs[i], bytes[i]);
	return 0;
}
