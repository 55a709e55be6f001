// cxx: C++ allocations through every form of operator new and delete, for
// mtrace's end-to-end tests. Like allocs.c it counts what each function did
// and prints "tally pid=PID FUNCTION allocs=N alloc_bytes=N frees=N free_bytes=N":
// an object made with new is one allocation of the size new was asked for,
// whatever the operator calls inside.
#include <cstdio>
#include <new>
#include <unistd.h>

namespace {

struct Small {
	long a, b, c;
};

struct alignas(64) Aligned {
	char c[64];
};

struct Tally {
	const char *fn;
	long allocs, alloc_bytes, frees, free_bytes;

	void alloced(void *p, size_t n)
	{
		if (p) {
			allocs++;
			alloc_bytes += n;
		}
	}
	void freed(size_t n)
	{
		frees++;
		free_bytes += n;
	}
	void print() const
	{
		std::printf("tally pid=%d %s allocs=%ld alloc_bytes=%ld frees=%ld free_bytes=%ld\n",
			    (int)getpid(), fn, allocs, alloc_bytes, frees, free_bytes);
	}
};

Tally objects{"make_objects"}, arrays{"make_arrays"}, nothrow{"make_nothrow"}, aligned{"make_aligned"};

} // namespace

// Pointers are stored here so the compiler cannot drop the allocations.
void *volatile keep[64];

extern "C" __attribute__((noinline)) void make_objects(int n, int leak)
{
	Small *p[16];
	for (int i = 0; i < n; i++) {
		p[i] = new Small{1, 2, 3};
		objects.alloced(p[i], sizeof(Small));
		keep[i] = p[i];
	}
	for (int i = 0; i < n - leak; i++) {
		delete p[i];
		objects.freed(sizeof(Small));
	}
}

extern "C" __attribute__((noinline)) void make_arrays(int n, int leak)
{
	Small *p[16];
	for (int i = 0; i < n; i++) {
		p[i] = new Small[4];
		arrays.alloced(p[i], 4 * sizeof(Small));
		keep[16 + i] = p[i];
	}
	for (int i = 0; i < n - leak; i++) {
		delete[] p[i];
		arrays.freed(4 * sizeof(Small));
	}
}

extern "C" __attribute__((noinline)) void make_nothrow(int n)
{
	for (int i = 0; i < n; i++) {
		Small *p = new (std::nothrow) Small;
		nothrow.alloced(p, sizeof(Small));
		keep[32] = p;
		delete p;
		nothrow.freed(sizeof(Small));
	}
}

extern "C" __attribute__((noinline)) void make_aligned(int n, int leak)
{
	Aligned *p[16];
	for (int i = 0; i < n; i++) {
		p[i] = new Aligned;
		aligned.alloced(p[i], sizeof(Aligned));
		keep[40 + i] = p[i];
	}
	for (int i = 0; i < n - leak; i++) {
		delete p[i];
		aligned.freed(sizeof(Aligned));
	}
	Aligned *a = new Aligned[2];
	aligned.alloced(a, 2 * sizeof(Aligned));
	keep[60] = a;
	delete[] a;
	aligned.freed(2 * sizeof(Aligned));
}

int main()
{
	make_objects(8, 2);
	make_arrays(4, 1);
	make_nothrow(3);
	make_aligned(5, 1);
	objects.print();
	arrays.print();
	nothrow.print();
	aligned.print();
	return 0;
}
