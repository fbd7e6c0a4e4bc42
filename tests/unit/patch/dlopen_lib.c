/* dlopen_lib.c - a shared object loaded after the hooks are installed, with its own munmap site
 * (long umn_test_lib_munmap(void *addr, size_t len): mov $SYS_munmap,%eax; syscall). */
__asm__(".text\n"
	".globl umn_test_lib_munmap\n"
	".type umn_test_lib_munmap, @function\n"
	".p2align 4\n"
	"umn_test_lib_munmap:\n"
	".cfi_startproc\n"
	"mov $11, %eax\n"
	"syscall\n"
	"ret\n"
	".cfi_endproc\n"
	".size umn_test_lib_munmap, .-umn_test_lib_munmap\n");
