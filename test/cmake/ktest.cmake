# Every KTEST in src/<subsystem>/ktests/<x>_ktest.cpp is in suite <x>, so `ktest=<x>.*` selects
# exactly that file's cases (scripts/check-ktest-suites.sh; no build or QEMU needed).
add_test(NAME check:ktest-suites
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-ktest-suites.sh ${CMAKE_SOURCE_DIR}/src)
set_tests_properties(check:ktest-suites PROPERTIES LABELS "host;check" TIMEOUT 30)
