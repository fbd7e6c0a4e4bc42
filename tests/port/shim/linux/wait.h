/* The port test's <linux/wait.h>: the primitives shim. */
#include <umn/kcompat.h>
#include <umn/kernel_shim.h>
