// preload.cc - libumn-preload.so: LD_PRELOAD it to bring umn into a program that does not link it, and
// (through the inherited environment) into every program it executes.
//
// Policy: lazy. Loading the object patches nothing; the hooks are installed by the first user of the
// process address space in the process: umn_mm_process(), umn_process_hooks_install() or an observer
// registration (as the tracer below does) -- so a program nobody observes runs unhooked and pays only
// for loading the object (docs/process.md, "When the hooks are installed", has the reasons).
// When UMN_TRACE_FILE is set (by `umn trace`), the trace observer in trace.cc is started here, which installs
// the hooks before main().
//
// The object links libumn.so, so a program that also links libumn.so shares one umn_mm_process() with
// it. A program that links libumn statically is a second umn copy: whichever copy installs first owns
// the sites, the other joins its observer registry (patch/x86_64.hpp, "Two interposers").
//
// Context: the constructor runs inside the dynamic loader's initialisation, single-threaded in practice.
namespace umn::trace {
void start_from_environment() noexcept;  // trace.cc
}

namespace {

[[gnu::constructor(101)]] void umn_preload_init() { umn::trace::start_from_environment(); }

}  // namespace
