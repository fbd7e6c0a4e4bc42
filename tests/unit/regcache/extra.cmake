# umn_regcache_tests: the io_uring end-to-end test needs umn_uring (and liburing, required).
target_link_libraries(umn_regcache_tests PRIVATE umn_uring)
# The io_uring example copies a file through cached fixed buffers; it must run and succeed.
if(TARGET example_uring_copy)
  add_test(NAME example_uring_copy COMMAND example_uring_copy)
  set_tests_properties(example_uring_copy PROPERTIES LABELS unit)
endif()
# The hit/reclaimer and notifier/miss handshakes on a model with store buffers (no test run can fail
# without them, see src/users/regcache/hold_protocol.pml); its seeded bugs must be caught.
if(UMN_SANITIZE STREQUAL "")
  set(regcache_pml ${PROJECT_SOURCE_DIR}/src/users/regcache/hold_protocol.pml)
  set(run_spin ${PROJECT_SOURCE_DIR}/tests/model/run_spin.sh)
  add_test(NAME spin_regcache_hold COMMAND sh ${run_spin} ${regcache_pml} ${CMAKE_CURRENT_BINARY_DIR}/spin-regcache check)
  add_test(NAME spin_regcache_hold_catches_bugs
           COMMAND sh ${run_spin} ${regcache_pml} ${CMAKE_CURRENT_BINARY_DIR}/spin-regcache-bugs bugs)
  set_tests_properties(spin_regcache_hold spin_regcache_hold_catches_bugs
                       PROPERTIES LABELS model TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
