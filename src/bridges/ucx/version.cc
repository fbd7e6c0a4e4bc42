// version.cc - which UCX this process runs, and whether the bridge can drive it.
#include <ucp/api/ucp.h>

#include <cstdlib>
#include <cstring>

#include "bridges/ucx/bridge.hpp"

namespace umn::ucx {

Version ucx_version() noexcept {
  Version v;
  ucp_get_version(&v.major, &v.minor, &v.release);
  return v;
}

bool supported(Version v) noexcept { return v.major == 1 && v.minor >= 8; }

bool will_feed(const ucm_global_config_t& opts) noexcept {
  const char* hooks = std::getenv("UMN_PROCESS_HOOKS");
  return supported(ucx_version()) && opts.enable_events != 0 && (hooks == nullptr || std::strcmp(hooks, "0") != 0);
}

}  // namespace umn::ucx
