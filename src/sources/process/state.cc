// state.cc - the definitions of the process hooks' process-wide state (contract in state.hpp).
#include "sources/process/state.hpp"

namespace umn::detail {

std::atomic<int> g_install_state{0};
int g_status = 1;
std::atomic<umn_mm*> g_mm{nullptr};
Registry g_registry;
std::atomic<Registry*> g_active{&g_registry};
std::atomic<unsigned long> g_events{0};
std::atomic<unsigned long> g_nested{0};

[[gnu::tls_model("initial-exec")]] thread_local bool t_installing = false;

}  // namespace umn::detail
