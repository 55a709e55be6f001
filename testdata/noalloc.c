// noalloc: a static program with no C library and so no allocator, for the
// error path of mtrace record. It waits in pause(2) until it is killed.
void _start(void)
{
	for (;;)
		__asm__ volatile("mov $34, %%eax\n\tsyscall" ::: "rax", "rcx", "r11", "memory");
}
