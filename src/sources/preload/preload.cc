// preload.cc - libumn-preload.so: LD_PRELOAD it and the process hooks are installed before main(), in
// this process and (through the inherited environment) in every program it executes.
//
// The object links libumn.so, so a program that also links libumn.so shares one umn_mm_process() with
// it. A program that links libumn statically is a second umn copy: its installation finds the sites
// already patched by this one and joins its observer registry (patch/x86_64.hpp, "Two interposers").
// When UMN_TRACE_FILE is set (by `umn trace`), the tracer in trace.cc is started as well.
//
// Context: the constructor runs inside the dynamic loader's initialisation, single-threaded in practice.
#include <cstdlib>

#include "umn/process.h"

namespace umn::trace {
void start_from_environment() noexcept;  // trace.cc
}

namespace {

[[gnu::constructor(101)]] void umn_preload_init() {
  if (umn_process_hooks_install() != 0) return;  // disabled (UMN_PROCESS_HOOKS=0) or unsupported
  umn::trace::start_from_environment();
}

}  // namespace
