# Drives the packaging checks as CTest tests (cmake -P with -D arguments):
#   MODE=install     install auxl from BUILD_DIR to WORK/prefix; configure, build and run
#                    tests/consumer against it with find_package; then compile the same program
#                    with nothing but pkg-config's flags and run it
#   MODE=subdir      tests/consumer/subdir: add_subdirectory of the source tree
#   MODE=fetchcontent the same project taking auxl with FetchContent_MakeAvailable
#   MODE=missing     find_package(auxl) with Eigen3 hidden must fail in auxl's config, naming Eigen3
#   MODE=conan       conan create with the Debian 12 profile, offline (CONAN_HOME inside WORK)
# SOURCE_DIR, BUILD_DIR, WORK are required; CONAN (path or empty), REQUIRE_CONAN for MODE=conan;
# MPIEXEC (path or empty): MODE=install also builds tests/consumer/mpi and runs it on 2 processes.
cmake_minimum_required(VERSION 3.21)

include(${CMAKE_CURRENT_LIST_DIR}/../run_command.cmake)

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(consumer ${SOURCE_DIR}/tests/consumer)

if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK}/prefix)
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK}/prefix)
  run(${CMAKE_COMMAND} --build ${WORK}/build)
  run(${WORK}/build/train_one_step)
  message(STATUS "find_package consumer: ${last_output}")
  run(${WORK}/build/train_one_step_eigen)
  if(NOT last_output MATCHES "GEMM: Eigen")
    message(FATAL_ERROR "auxl::eigen_gemm did not select Eigen's GEMM:\n${last_output}")
  endif()
  message(STATUS "find_package consumer on auxl::eigen_gemm: ${last_output}")
  # pkg-config: the installed auxl.pc alone must give a working compile line.
  find_program(PKG_CONFIG pkg-config REQUIRED)
  find_program(CXX NAMES c++ g++ REQUIRED)
  set(ENV{PKG_CONFIG_PATH} ${WORK}/prefix/share/pkgconfig)
  run(${PKG_CONFIG} --cflags --libs auxl)
  string(STRIP "${last_output}" flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${CXX} -O1 ${consumer}/train_one_step.cpp ${flags} -o ${WORK}/train_one_step_pc)
  run(${WORK}/train_one_step_pc)
  message(STATUS "pkg-config consumer: ${last_output}")
  # The optional MPI component (when this build has it): find_package(auxl COMPONENTS mpi).
  if(MPIEXEC)
    run(${CMAKE_COMMAND} -S ${consumer}/mpi -B ${WORK}/build_mpi -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK}/prefix)
    run(${CMAKE_COMMAND} --build ${WORK}/build_mpi)
    run(${MPIEXEC} -np 2 --oversubscribe ${WORK}/build_mpi/train_two_ranks)
    message(STATUS "find_package(auxl COMPONENTS mpi) consumer: ${last_output}")
  endif()
elseif(MODE STREQUAL "subdir" OR MODE STREQUAL "fetchcontent")
  set(via OFF)
  if(MODE STREQUAL "fetchcontent")
    set(via ON)
  endif()
  run(${CMAKE_COMMAND} -S ${consumer}/subdir -B ${WORK}/build -DCMAKE_BUILD_TYPE=Release -DAUXL_SOURCE_DIR=${SOURCE_DIR}
      -DAUXL_VIA_FETCHCONTENT=${via})
  run(${CMAKE_COMMAND} --build ${WORK}/build --target train_one_step)
  run(${WORK}/build/train_one_step)
  message(STATUS "${MODE} consumer: ${last_output}")
elseif(MODE STREQUAL "missing")
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK}/prefix)
  # Eigen's package config is hidden (HIDE_DIR, the directory our own build found it in), as
  # for a user who never installed Eigen.
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build -DCMAKE_PREFIX_PATH=${WORK}/prefix
                          -DCMAKE_IGNORE_PATH=${HIDE_DIR}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc EQUAL 0)
    message(FATAL_ERROR "configuring with Eigen3 hidden succeeded; find_package(auxl) should have failed")
  endif()
  if(NOT "${out}${err}" MATCHES "package configuration file provided by\n? *\"Eigen3\"" OR NOT "${out}${err}" MATCHES "auxlConfig.cmake")
    message(FATAL_ERROR "the error does not name the missing dependency and auxl's config:\n${out}\n${err}")
  endif()
  message(STATUS "a missing dependency is named: OK")
elseif(MODE STREQUAL "conan")
  if(NOT CONAN)
    if(REQUIRE_CONAN)
      message(FATAL_ERROR "conan not found (scripts/setup.sh installs it into .tools/venv)")
    endif()
    message(STATUS "conan not found: skipped")
    file(WRITE ${WORK}/skipped "conan not found")
    return()
  endif()
  set(ENV{CONAN_HOME} ${WORK}/conan_home)
  run(${CONAN} profile detect --force)
  run(${CONAN} remote disable conancenter)
  run(${CONAN} create ${SOURCE_DIR} -pr:a ${SOURCE_DIR}/conan/profiles/debian12 --build=missing)
  if(NOT last_output MATCHES "primary loss")
    message(FATAL_ERROR "the test_package did not run:\n${last_output}")
  endif()
  string(REGEX MATCH "auxl [0-9.]+: [^\n]*primary loss[^\n]*" ran "${last_output}")
  message(STATUS "conan create: OK; test_package printed: ${ran}")
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
