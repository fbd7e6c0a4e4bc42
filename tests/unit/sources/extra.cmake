# umn_sources_tests: a small library to dlopen/dlclose (the loader's private munmap), and the process
# hooks need -ldl for dlopen in the tests.
add_library(umn_sources_test_lib SHARED ${CMAKE_CURRENT_SOURCE_DIR}/unit/sources/test_lib.c)
add_dependencies(umn_sources_tests umn_sources_test_lib)
target_compile_definitions(umn_sources_tests PRIVATE
  UMN_TEST_LIB_PATH="$<TARGET_FILE:umn_sources_test_lib>")
target_link_libraries(umn_sources_tests PRIVATE ${CMAKE_DL_LIBS})
# Lifecycle.ExitBoundHoldsWhenTheRealtimeClockSteps preloads a CLOCK_REALTIME one hour ahead.
add_library(umn_realtime_ahead SHARED ${CMAKE_CURRENT_SOURCE_DIR}/unit/sources/realtime_ahead.c)
add_dependencies(umn_sources_tests umn_realtime_ahead)
target_compile_definitions(umn_sources_tests PRIVATE UMN_REALTIME_AHEAD_PATH="$<TARGET_FILE:umn_realtime_ahead>")
# ThreadState.LibumnCanBeDlopened dlopens the shared library (its initial-exec TLS must fit the surplus).
add_dependencies(umn_sources_tests umn)
target_compile_definitions(umn_sources_tests PRIVATE UMN_SHARED_LIB_PATH="$<TARGET_FILE:umn>")
