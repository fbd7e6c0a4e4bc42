# The layers of src/ (CONTRIBUTING.md): base < itree < core < sources < users and bridges < tools. Each layer compiles
# against an include root of its own, built here as a folder of symbolic links that holds only the
# layers below it, so an upward include (core including sources, itree including core or umn.h) fails to
# compile. tests/layering checks that it does. Tests and benchmarks are white-box and see all of src/.
set(UMN_LAYER_ROOTS ${PROJECT_BINARY_DIR}/layers)

# umn_layer_root(NAME ENTRY...): the include root NAME, holding a link to each src/ENTRY (a folder or one
# file), and the interface target umn_layer_NAME that puts it on the include path.
function(umn_layer_root name)
  foreach(entry IN LISTS ARGN)
    set(link ${UMN_LAYER_ROOTS}/${name}/${entry})
    get_filename_component(parent ${link} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${entry} ${link} SYMBOLIC)
  endforeach()
  add_library(umn_layer_${name} INTERFACE)
  target_include_directories(umn_layer_${name} INTERFACE $<BUILD_INTERFACE:${UMN_LAYER_ROOTS}/${name}>)
endfunction()

# umn_public_headers: include/ (umn/umn.h and the C++ headers), for every layer above itree.
add_library(umn_public_headers INTERFACE)
target_include_directories(umn_public_headers INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>)

umn_layer_root(base base)
umn_layer_root(itree itree)
umn_layer_root(core core)
umn_layer_root(core_query core/query.hpp)  # the one core header the event sources may use
umn_layer_root(core_rcu core/rcu.hpp)      # the core's door to RCU, for users that defer frees too
umn_layer_root(sources sources)
umn_layer_root(users users)
umn_layer_root(bridges bridges)
# What each layer sees: its own root and those of the layers it may use.
target_link_libraries(umn_layer_itree INTERFACE umn_layer_base)
target_link_libraries(umn_layer_core INTERFACE umn_layer_itree umn_public_headers)
target_link_libraries(umn_layer_sources INTERFACE umn_layer_core_query umn_layer_base umn_public_headers)
target_link_libraries(umn_layer_users INTERFACE umn_layer_base umn_public_headers)
target_link_libraries(umn_layer_bridges INTERFACE umn_layer_base umn_public_headers)

# umn_layer_objects(TARGET LAYER SOURCES...): an object library of libumn, compiled once for both the
# shared and the static library, seeing only LAYER's include root.
function(umn_layer_objects target layer)
  add_library(${target} OBJECT ${ARGN})
  target_link_libraries(${target} PRIVATE umn_layer_${layer})
  umn_library_settings(${target})
endfunction()

# umn_library_settings(TARGET): what every part of libumn compiles with.
function(umn_library_settings target)
  set_target_properties(${target} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_compile_definitions(${target} PRIVATE UMN_DEBUG_LEVEL=${UMN_DEBUG_LEVEL})
  umn_set_warnings(${target})
endfunction()
