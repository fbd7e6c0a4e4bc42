/*
 * drop_vm_munmap.c - preloaded ahead of libumn-ucx.so, makes ucm_vm_munmap() drop every range: the chain
 * from umn to UCX's handlers is broken although everything installs. The bridge's end-to-end check must
 * see that, say so and withdraw: UCX, its own hooks off, then refuses the event (tests/ucx/CMakeLists.txt).
 */
#include <stddef.h>

#include <ucm/api/ucm.h>

void ucm_vm_munmap(void *addr, size_t length)
{
	(void)addr;
	(void)length;
}
