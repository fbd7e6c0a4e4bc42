/* The port test's <linux/mutex.h>: the primitives shim. */
#include <umn/kcompat.h>
#include <umn/kernel_shim.h>
