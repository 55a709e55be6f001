// inline: allocations behind inlined functions and templates, for mtrace's
// symbolization tests, which compare every frame with addr2line -f -i -C.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

struct Widget {
	long a[4];
};

namespace shop {

template <typename T>
__attribute__((always_inline)) inline T *make(std::size_t n)
{
	return static_cast<T *>(std::malloc(n * sizeof(T)));
}

template <typename T>
__attribute__((always_inline)) inline T *make_twice(std::size_t n)
{
	std::free(make<T>(n));
	return make<T>(n + 1);
}

} // namespace shop

void *volatile keep;

__attribute__((noinline)) void build_widgets(int n)
{
	for (int i = 0; i < n; i++)
		keep = shop::make<Widget>(i + 1);
}

__attribute__((noinline)) void rebuild_widgets(int n)
{
	for (int i = 0; i < n; i++)
		keep = shop::make_twice<Widget>(i + 1);
}

int main()
{
	build_widgets(3);
	rebuild_widgets(2);
	std::printf("tally pid=%d build_widgets allocs=3 alloc_bytes=192 frees=0 free_bytes=0\n", (int)getpid());
	return 0;
}
