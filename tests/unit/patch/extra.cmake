# umn_patch_tests: syscall sites in the test executable itself (assembly, both encodings), a shared
# object to dlopen after installation, and exported symbols so that dladdr() names the frames of a
# backtrace taken inside a callback.
target_sources(umn_patch_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit/patch/inline_sites.cc)
add_library(umn_patch_test_lib SHARED ${CMAKE_CURRENT_SOURCE_DIR}/unit/patch/dlopen_lib.c)
add_dependencies(umn_patch_tests umn_patch_test_lib)
target_compile_definitions(umn_patch_tests PRIVATE UMN_PATCH_TEST_LIB="$<TARGET_FILE:umn_patch_test_lib>")
target_link_libraries(umn_patch_tests PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(umn_patch_tests PROPERTIES ENABLE_EXPORTS ON)
