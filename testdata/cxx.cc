// cxx: C++ allocations through every form of operator new and delete, for
// mtrace's end-to-end tests. Like allocs.c it counts what each function did
// and prints "tally pid=PID FUNCTION allocs=N alloc_bytes=N frees=N free_bytes=N":
// an object made with new is one allocation of the size new was asked for,
// whatever the operator calls inside. Every throwing form of operator new
// is also made to throw std::bad_alloc, which the program catches: a return
// probe on operator new would end it instead.
#include <cstdint>
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

Tally objects{"make_objects"}, arrays{"make_arrays"}, nothrow{"make_nothrow"}, aligned{"make_aligned"},
	after_throw{"make_after_throw"};

// No allocator can give this many bytes.
volatile size_t huge = SIZE_MAX / 4;

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

// fail_all makes each throwing operator new throw, an invalid alignment
// makes libstdc++'s aligned one throw before it allocates, and the nothrow
// forms (libstdc++'s catch what the throwing ones throw) return null; it
// returns how many failed.
extern "C" __attribute__((noinline)) int fail_all()
{
	int failed = 0;
	void *(*const forms[])(size_t) = {
		[](size_t n) { return ::operator new(n); },
		[](size_t n) { return ::operator new[](n); },
		[](size_t n) { return ::operator new(n, std::align_val_t(64)); },
		[](size_t n) { return ::operator new[](n, std::align_val_t(64)); },
		[](size_t n) { return ::operator new(n + 1 - huge, std::align_val_t(3)); },
		[](size_t n) { return ::operator new(n, std::nothrow); },
		[](size_t n) { return ::operator new[](n, std::align_val_t(64), std::nothrow); },
	};
	for (auto form : forms) {
		try {
			keep[48] = form(huge);
			failed += keep[48] == nullptr;
		} catch (const std::bad_alloc &) {
			failed++;
		}
	}
	return failed;
}

// make_after_throw makes objects after the throws, from a deeper frame.
extern "C" __attribute__((noinline)) void make_after_throw(int n)
{
	for (int i = 0; i < n; i++) {
		Small *p = new Small;
		after_throw.alloced(p, sizeof(Small));
		keep[49] = p;
		delete p;
		after_throw.freed(sizeof(Small));
	}
}

__attribute__((noinline)) void descend(int depth, int n)
{
	char frame[256];
	keep[50] = frame;
	if (depth)
		descend(depth - 1, n);
	else
		make_after_throw(n);
}

int main()
{
	std::printf("%d of 7 forms of operator new failed\n", fail_all());
	descend(4, 6);
	make_objects(8, 2);
	make_arrays(4, 1);
	make_nothrow(3);
	make_aligned(5, 1);
	objects.print();
	arrays.print();
	nothrow.print();
	aligned.print();
	after_throw.print();
	return 0;
}
