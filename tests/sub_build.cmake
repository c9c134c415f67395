# Builds auxl a second time in a sub-directory of the build tree with other tools, for CTest:
#   MODE=asan   g++ with AddressSanitizer (+ LeakSanitizer) and UndefinedBehaviorSanitizer: builds
#               the doctest suite and runs all of it; any sanitizer report fails the test
#   MODE=fuzz   clang with libFuzzer: builds the fuzz harnesses (tests/fuzz), for the fuzz_<reader>
#               tests that run them
# SOURCE_DIR, WORK required; CXX (the compiler), REQUIRE (fail instead of skip without the compiler).
cmake_minimum_required(VERSION 3.21)

include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

if(NOT CXX)
  if(REQUIRE)
    message(FATAL_ERROR "${MODE}: compiler not found (scripts/setup.sh installs clang and libclang-rt-14-dev)")
  endif()
  message(STATUS "${MODE}: compiler not found: skipped")
  return()
endif()

set(common -DCMAKE_CXX_COMPILER=${CXX} -DAUXL_BUILD_EXAMPLES=OFF -DAUXL_BUILD_BENCHMARKS=OFF -DAUXL_WITH_MPI=OFF
           -DAUXL_INSTALL=OFF -DAUXL_BUILD_TESTS=ON)
if(MODE STREQUAL "asan")
  set(flags "-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK} -DCMAKE_BUILD_TYPE=RelWithDebInfo ${common} "-DCMAKE_CXX_FLAGS=${flags}")
  run(${CMAKE_COMMAND} --build ${WORK} --target auxl_tests -j2)
  set(ENV{ASAN_OPTIONS} "detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1")
  set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
  set(ENV{OPENBLAS_NUM_THREADS} "1")
  run(${WORK}/tests/auxl_tests --no-intro --duration=false)
  string(REGEX MATCH "test cases: *[0-9]+ \\| *[0-9]+ passed" summary "${last_output}")
  message(STATUS "sanitized doctest suite: ${summary}")
elseif(MODE STREQUAL "fuzz")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK} -DCMAKE_BUILD_TYPE=RelWithDebInfo ${common} -DAUXL_FUZZERS=ON)
  run(${CMAKE_COMMAND} --build ${WORK} -j2)
  # Seed the checkpoint fuzzer with a checkpoint of this compiler's build (the committed seed has
  # the type hash of a g++ build, which a clang build refuses before parsing anything else).
  run(${WORK}/tests/fuzz_make_corpus ${WORK}/seed)
  file(GLOB seeds ${WORK}/seed/checkpoint/*)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus_checkpoint)
  message(STATUS "fuzz harnesses built in ${WORK}/tests")
else()
  message(FATAL_ERROR "unknown MODE ${MODE}")
endif()
