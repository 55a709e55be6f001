// mtrace_on: preloaded with libc_malloc_debug.so.0, it turns on glibc's own
// allocation trace (mtrace(3), to the file MALLOC_TRACE names) before the
// program's main runs. mtrace's tests compare that trace, an independent
// count of the same run, with what mtrace reports.
#include <mcheck.h>

__attribute__((constructor)) static void trace_on(void)
{
	mtrace();
}
