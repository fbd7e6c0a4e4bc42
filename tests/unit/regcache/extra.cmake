# umn_regcache_tests: the io_uring end-to-end test needs umn_uring (and liburing, required).
target_link_libraries(umn_regcache_tests PRIVATE umn_uring)
# The io_uring example copies a file through cached fixed buffers; it must run and succeed.
if(TARGET example_uring_copy)
  add_test(NAME example_uring_copy COMMAND example_uring_copy)
  set_tests_properties(example_uring_copy PROPERTIES LABELS unit)
endif()
