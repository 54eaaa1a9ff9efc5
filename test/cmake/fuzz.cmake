# libFuzzer harnesses (test/fuzz): built with clang as their own project, because the host tests
# use the default compiler. Not part of `all`: `make test-full` and `make fuzz` build the target
# `fuzzers`; ctest runs each harness for 30 s under the label `full`.
find_program(AETHELOS_FUZZ_CXX NAMES clang++-14 clang++ DOC "clang++ with libFuzzer, for test/fuzz")
set(AETHELOS_FUZZERS buddy slab heap multiboot2 cmdline shell_parser eldarin)
set(AETHELOS_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzzer runs in the ctest `full` entries")

if(NOT AETHELOS_FUZZ_CXX)
  message(WARNING "clang++ not found: fuzzers skipped (scripts/install-deps.sh installs clang-14)")
  return()
endif()

ExternalProject_Add(fuzzers
  SOURCE_DIR ${CMAKE_SOURCE_DIR}/test/fuzz
  BINARY_DIR ${CMAKE_BINARY_DIR}/fuzz
  CMAKE_ARGS
    -G ${CMAKE_GENERATOR}
    -DCMAKE_CXX_COMPILER=${AETHELOS_FUZZ_CXX}
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
  BUILD_ALWAYS ON
  INSTALL_COMMAND ""
  EXCLUDE_FROM_ALL ON
  USES_TERMINAL_BUILD ON)

foreach(name ${AETHELOS_FUZZERS})
  add_test(NAME fuzz:${name}
    COMMAND ${CMAKE_SOURCE_DIR}/test/fuzz/run-fuzzer.sh --fuzzer ${CMAKE_BINARY_DIR}/fuzz/fuzz_${name}
            --seeds ${CMAKE_SOURCE_DIR}/test/fuzz/corpus/${name} --work ${CMAKE_BINARY_DIR}/fuzz/run/${name}
            --seconds ${AETHELOS_FUZZ_SECONDS})
  math(EXPR _fuzz_timeout "${AETHELOS_FUZZ_SECONDS} + 90")
  set_tests_properties(fuzz:${name} PROPERTIES LABELS full TIMEOUT ${_fuzz_timeout})
endforeach()
