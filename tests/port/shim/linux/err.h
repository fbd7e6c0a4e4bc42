/* The port test's <linux/err.h>: the primitives shim. */
#include <umn/kcompat.h>
#include <umn/kernel_shim.h>
