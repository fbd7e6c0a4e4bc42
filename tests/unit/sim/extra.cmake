# umn_sim_tests: the simulated devices, the userptr driver and the `umn sim` command line.
target_link_libraries(umn_sim_tests PRIVATE umn_sim)
if(TARGET umn_cli)
  target_compile_definitions(umn_sim_tests PRIVATE UMN_CLI_PATH="$<TARGET_FILE:umn_cli>")
  add_dependencies(umn_sim_tests umn_cli)
endif()
