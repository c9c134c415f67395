# run(<command> [args...]): execute_process that stops the cmake -P script with the command's
# output when it fails, and leaves stdout+stderr in `last_output` when it succeeds.  Shared by
# the CTest driver scripts (tests/consumer/run_consumer.cmake, tests/sub_build.cmake).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()
