# umn_set_warnings(target): the project's warning set, errors included. With clang it adds the
# thread-safety analysis of the UMN_GUARDED_BY / UMN_REQUIRES annotations (src/base/lock.hpp); scripts/test.sh
# builds every target that way (build/clang). Every target of the project gets it -- library, tools, tests,
# benchmarks, examples -- but the port test's kernel-style drivers, GNU C with a set of their own (tests/port).
function(umn_set_warnings target)
  get_target_property(done ${target} UMN_WARNINGS_SET)
  if(done)
    return()  # set already (umn_set_warnings_in_directory after a target's own call)
  endif()
  set_target_properties(${target} PROPERTIES UMN_WARNINGS_SET ON)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror>
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic -Werror>
    $<$<CXX_COMPILER_ID:Clang>:$<$<COMPILE_LANGUAGE:CXX>:-Wthread-safety>>)
endfunction()

# umn_set_warnings_in_directory(): umn_set_warnings on every compiled target defined so far in the calling
# CMakeLists.txt's folder (not its subfolders), so that a test program added there later gets them too.
function(umn_set_warnings_in_directory)
  get_property(targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    get_target_property(type ${target} TYPE)
    if(type MATCHES "^(EXECUTABLE|SHARED_LIBRARY|STATIC_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY)$")
      umn_set_warnings(${target})
    endif()
  endforeach()
endfunction()
