# The Loom of Fate's trace (sched/trace.*; host tests in test/unit/test_sched_trace.cpp, globbed).
# sched/trace.cpp is generic and already globbed with src/sched.

# scripts/trace-extract and scripts/plot-trace on synthetic serial logs (CRLF, several dumps, a
# cut-off dump, none at all) and a synthetic trace: no QEMU needed.
add_test(NAME tools:trace-scripts
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/tools/trace_tools_test.py ${CMAKE_SOURCE_DIR}/scripts)
set_tests_properties(tools:trace-scripts PROPERTIES LABELS host TIMEOUT 60)

# Eldarin's `trace start/stop/dump` and `preempt` driven over the serial line; the dumps are pulled
# out with scripts/trace-extract and checked (< 60 s).
add_test(NAME qemu:trace-bios
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/qemu-trace-test.sh --iso ${CMAKE_BINARY_DIR}/aethelos-test-shell.iso
          --log ${CMAKE_BINARY_DIR}/logs/trace-bios.log --timeout 150)
set_tests_properties(qemu:trace-bios PROPERTIES LABELS qemu TIMEOUT 165)
