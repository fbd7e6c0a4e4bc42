/*
 * fake_ucx_version.c - preloaded ahead of libumn-ucx.so, makes ucp_get_version() answer 2.0.0, a UCX the
 * bridge does not know: the bridge must say so and leave UCX alone (tests/ucx/CMakeLists.txt).
 */
#include <ucp/api/ucp.h>

void ucp_get_version(unsigned *major, unsigned *minor, unsigned *release)
{
	*major = 2;
	*minor = 0;
	*release = 0;
}
