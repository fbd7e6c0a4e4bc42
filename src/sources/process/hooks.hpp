// hooks.hpp - the process hooks' private interface inside libumn.
//
// Locking: none (see umn/process.h). Context: umn_detail_process_autoinstall is called by umn_mm_process()
// on every call; after the first installation it costs one acquire load.
#pragma once

#include "umn/umn.h"

extern "C" {
// Installs the hooks once, feeding mm (umn_mm_process()'s address space). Reentrant calls from the
// installing thread return at once; other threads wait for the installation to finish.
void umn_detail_process_autoinstall(struct umn_mm* mm);
}
