# umn_set_warnings(target): the project's warning set, errors included. With clang it adds the
# thread-safety analysis of the UMN_GUARDED_BY / UMN_REQUIRES annotations (src/base/lock.hpp); scripts/test.sh
# builds every target that way (build/clang). Every target of the project calls it: library, tools, tests,
# benchmarks, examples.
function(umn_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror>
    $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic -Werror>
    $<$<CXX_COMPILER_ID:Clang>:$<$<COMPILE_LANGUAGE:CXX>:-Wthread-safety>>)
endfunction()
