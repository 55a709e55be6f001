// sizes: allocates and frees blocks of three sizes with malloc, and one size
// with operator new (which calls malloc inside), each from its own function,
// and says how many: a target for the byte-sampling test, whose estimates it
// checks against these exact counts. An object made with new is one
// allocation, whatever the operator calls inside. stdout is unbuffered, so
// the program makes no allocation but these.
//
// Usage: sizes
#include <cstdio>
#include <cstdlib>
#include <new>
#include <unistd.h>

void *volatile keep;

static void tally(const char *name, long n, size_t size)
{
	std::printf("tally pid=%d %s allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
		    (int)getpid(), name, n, n * (long)size, n, n * (long)size);
}

static void run(const char *name, long n, size_t size)
{
	for (long i = 0; i < n; i++) {
		keep = std::malloc(size);
		std::free(keep);
	}
	tally(name, n, size);
}

extern "C" {
__attribute__((noinline)) void small(void) { run("small", 100000, 48); }
__attribute__((noinline)) void medium(void) { run("medium", 20000, 3000); }
__attribute__((noinline)) void large(void) { run("large", 200, 200000); }

__attribute__((noinline)) void objects(void)
{
	const long n = 50000;
	const size_t size = 1000;

	for (long i = 0; i < n; i++) {
		keep = ::operator new(size);
		::operator delete(keep);
	}
	tally("objects", n, size);
}
}

int main()
{
	std::setvbuf(stdout, NULL, _IONBF, 0);
	small();
	medium();
	large();
	objects();
	return 0;
}
