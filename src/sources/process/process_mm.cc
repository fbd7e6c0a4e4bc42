// process_mm.cc - umn_mm_process(): the core's process address space, with the process hooks that feed
// it installed on first use (install.cc). The core itself knows nothing of the hooks (core/query.hpp).
// Context: any thread; after the first call it costs one acquire load (umn_detail_process_autoinstall).
#include "core/query.hpp"
#include "sources/process/hooks.hpp"

extern "C" umn_mm* umn_mm_process(void) {
  umn_mm* mm = umn::detail::process_address_space();
  umn_detail_process_autoinstall(mm);
  return mm;
}
