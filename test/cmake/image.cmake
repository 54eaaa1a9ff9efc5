# Two images (src/CMakeLists.txt): aethelos.elf, which `make run` boots, is the Heartwood alone;
# aethelos-test.elf adds the diagnostics (ktests, stress, workloads, fault injection). Checked on
# the symbols of both, and on the run image's behaviour by qemu:shell-run-image.
add_test(NAME check:run-image-has-no-ktests
  COMMAND ${CMAKE_SOURCE_DIR}/scripts/check-run-image.sh ${CMAKE_BINARY_DIR}/kernel/aethelos.elf
          ${CMAKE_BINARY_DIR}/kernel/aethelos-test.elf)
set_tests_properties(check:run-image-has-no-ktests PROPERTIES LABELS check TIMEOUT 30)
