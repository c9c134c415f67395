# cmake -DSCRIPT=<cmake/write_build_id.cmake> -DWORK=<scratch dir> -P test_build_id.cmake
#
# The demo's build id (cmake/write_build_id.cmake) on a small generated tree: it names the version,
# compiler and build type; it changes when a header or the program's source changes and not
# otherwise; and an unchanged id leaves the generated file untouched (so a build does not
# recompile it).
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE "${WORK}")
file(WRITE "${WORK}/tree/include/auxl/a.hpp" "int a();\n")
file(WRITE "${WORK}/tree/include/auxl/sub/b.hpp" "int b();\n")
file(WRITE "${WORK}/tree/program.cpp" "int main() {}\n")
file(WRITE "${WORK}/tree/README.md" "docs\n")
set(out "${WORK}/id.cpp")

function(build_id result)
  execute_process(COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${WORK}/tree -DPROGRAM_SOURCE=${WORK}/tree/program.cpp
                          -DVERSION=9.8.7 "-DCOMPILER=GNU 12.2.0" -DBUILD_TYPE=Release -DOUTPUT=${out} -P ${SCRIPT}
                  RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "write_build_id.cmake failed")
  endif()
  file(READ "${out}" text)
  if(NOT text MATCHES "return \"(auxl 9\\.8\\.7, sources [0-9a-f]+, GNU 12\\.2\\.0, Release)\";")
    message(FATAL_ERROR "no build id of the expected form in:\n${text}")
  endif()
  set(${result} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

build_id(first)
file(TIMESTAMP "${out}" written "%s")
execute_process(COMMAND ${CMAKE_COMMAND} -E sleep 1.1)
file(WRITE "${WORK}/tree/README.md" "other docs\n")
build_id(again)
file(TIMESTAMP "${out}" rewritten "%s")
if(NOT again STREQUAL first)
  message(FATAL_ERROR "a documentation change changed the id: ${first} -> ${again}")
endif()
if(NOT written STREQUAL rewritten)
  message(FATAL_ERROR "an unchanged id rewrote ${out}")
endif()

file(WRITE "${WORK}/tree/include/auxl/sub/b.hpp" "int b(int);\n")
build_id(header)
if(header STREQUAL first)
  message(FATAL_ERROR "a header change left the id as it was: ${first}")
endif()
file(WRITE "${WORK}/tree/program.cpp" "int main() { return 0; }\n")
build_id(program)
if(program STREQUAL header)
  message(FATAL_ERROR "a change of the program's source left the id as it was: ${header}")
endif()
message(STATUS "build ids: ${first}; after a header edit ${header}; after a program edit ${program}")
