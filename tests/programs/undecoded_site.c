/* undecoded_site.c - a munmap site ("mov $SYS_munmap,%eax; syscall") outside every known function: a
 * label without a symbol type or size and without unwind information, as hand-written assembly may be.
 * The patcher must not patch it (no decoded instruction boundary proves it is one) and must not skip it
 * silently: it is counted (umn_process_hooks_info.sites_undecoded) and `umn trace` reports it. The
 * code is never run. */
__asm__(".text\n"
	".globl umn_test_undecoded_site\n"
	"umn_test_undecoded_site:\n"
	"mov $11, %eax\n"
	"syscall\n"
	"ret\n");

int main(void) { return 0; }
