# umn_trace_tests: the tracer's pure parts (tools/trace: range arithmetic, the kernel's rules for what a
# call takes away, the seccomp filter: which calls it stops), compiled into the test binary.
find_package(fmt REQUIRED)
target_sources(umn_trace_tests PRIVATE ${PROJECT_SOURCE_DIR}/tools/trace/ranges.cc
               ${PROJECT_SOURCE_DIR}/tools/trace/syscall_effect.cc ${PROJECT_SOURCE_DIR}/tools/trace/proc_maps.cc
               ${PROJECT_SOURCE_DIR}/tools/trace/seccomp_filter.cc)
target_include_directories(umn_trace_tests PRIVATE ${PROJECT_SOURCE_DIR}/tools)
target_link_libraries(umn_trace_tests PRIVATE fmt::fmt)
