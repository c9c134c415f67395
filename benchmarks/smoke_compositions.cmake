# CTest bench_compositions_smoke: bench_compositions runs a step and an epoch of three MLP
# compositions (STL; module-aware, which reads a dev set; DTG, which has a third head) and prints
# each one's row in both tables, with a time and a ratio to STL.  No time is asserted.
#   cmake -DPROGRAM=<bench_compositions> -DSOURCE_DIR=<repo> -P smoke_compositions.cmake
include(${SOURCE_DIR}/tests/run_command.cmake)
run(${PROGRAM} "--benchmark_filter=/mlp/(stl|human\\+module_aware|dtg)/threads:1")
foreach(name "stl" "human\\+module_aware" "dtg")
  string(REGEX MATCHALL "\n${name} +[0-9.]+ +[0-9.]+x" rows "${last_output}")
  list(LENGTH rows count)
  if(NOT count EQUAL 2)
    message(FATAL_ERROR "bench_compositions: expected a timed '${name}' row in the step and the epoch table, found ${count}:\n${last_output}")
  endif()
endforeach()
if(NOT last_output MATCHES "GEMM backend: ")
  message(FATAL_ERROR "bench_compositions: no GEMM backend line:\n${last_output}")
endif()
