# probe.cmake: builds TARGET in BUILD_DIR; EXPECT=fail needs the build to fail because HEADER was not
# found, EXPECT=pass needs it to succeed.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(FIND "${out}" "${HEADER}: No such file" missing)
if(EXPECT STREQUAL "pass" AND NOT status EQUAL 0)
  message(FATAL_ERROR "${HEADER} should be visible to this layer:\n${out}")
elseif(EXPECT STREQUAL "fail" AND (status EQUAL 0 OR missing EQUAL -1))
  message(FATAL_ERROR "${HEADER} should not be visible to this layer (status ${status}):\n${out}")
endif()
message(STATUS "${TARGET}: ${EXPECT}s as expected")
